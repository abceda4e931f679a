"""Draw: sketch a digit; on every stroke it is preprocessed like an upload, reconstructed, placed
on the latent map with its posterior, and compared with the test set."""

import streamlit as st

from explorer.data.specs import spec
from explorer.data.uploads import preprocess_image
from explorer.errors import ImageError
from explorer.explore.strangers import verdict_measured
from explorer.pictures.reading import canvas_image
from explorer.ui.image_report import image_report
from explorer.ui.models import dataset_of, label_names, map_points_words, model_key, model_or_stop
from explorer.ui.scatter import base_scatter, draw_posterior, star_caption
from explorer.ui.widgets import chart

st.set_page_config(page_title="Draw - VAE Explorer", layout="wide")
choice, model, config = model_or_stop()
dataset = dataset_of(config)
key = model_key(choice)
described = spec(dataset)
st.title("Draw")
if described.convention.kind == "photo":
    st.info(
        f"{choice} is a model of {described.item}s ({dataset}), not of drawings of ink on paper, so a "
        "sketch cannot be prepared like its images. Pick a model of MNIST or Fashion-MNIST in the "
        "sidebar, or upload a picture on the Reconstruct page."
    )
    st.stop()
# In the sidebar: above the canvas, the canvas's own toolbar covered it.
width = st.sidebar.slider(
    "Pen width", 8, 40, 22, help="strokes of about a tenth of the drawing's height look like MNIST's"
)
st.caption(
    f"Draw {described.a_item} with the mouse (or a finger). Each stroke is prepared the way "
    f"{dataset}'s images were ({described.convention.summary}), reconstructed, and placed on the "
    f"map{' with its posterior ellipses' if model.config.variational else ''}. Undo, redo and clear: the "
    "toolbar over the canvas."
    + (
        f" A drawing is flat where {dataset}'s images are photographs, with texture and shading: the "
        "stranger check flags most drawings for that alone, and says so."
        if described.convention.kind != "ink" and verdict_measured(dataset)
        else ""
    )
)

left, right = st.columns([2, 3], gap="large")
with left:
    try:
        from streamlit_drawable_canvas import st_canvas
    except Exception as exc:  # the component is an optional install; say so instead of failing
        st.error(
            f"The drawing canvas is not available ({type(exc).__name__}: {exc}). Install it with "
            "`pip install streamlit-drawable-canvas`, or upload a picture on the Reconstruct page."
        )
        st.stop()
    st.space(40)  # room for the canvas's toolbar (undo, redo, clear), shown above it on hover
    result = st_canvas(
        stroke_width=width,
        stroke_color="#FFFFFF",
        background_color="#000000",
        height=280,
        width=280,
        drawing_mode="freedraw",
        return_image_data=True,
        key="canvas",
    )
    image = canvas_image(result.image_data)

x = None
if image is not None:
    try:
        x = preprocess_image(image, dataset)
    except ImageError as exc:
        with right:
            st.warning(f"Nothing to read yet: {exc}. Draw a bigger or brighter stroke.")
if x is None:
    st.session_state.pop("drawing", None)
    with right:
        st.info("Draw on the black square: what the model makes of it appears here, stroke by stroke.")
        fig, _ = base_scatter(*key, dataset, label_names(config))
        chart(st, fig, key="draw-map")
    st.stop()

st.session_state["drawing"] = x  # for the Interpolate page
with right:
    mu, sigma = image_report(model, x, key, dataset, "your drawing")
    fig, projection = base_scatter(*key, dataset, label_names(config))
    off = draw_posterior(fig, projection, mu, sigma, "your drawing", "black")
    chart(st, fig, key="draw-map")
    st.caption(
        f"{star_caption(model, projection, 'of your drawing')}, among {map_points_words(dataset)}"
        + (f"; it lies {off} (the triangle at the edge points to it). " if off else ". ")
        + "Open Interpolate to morph your drawing into another image."
    )
