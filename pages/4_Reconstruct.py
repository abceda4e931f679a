"""Reconstruct: test images beside their reconstructions, and your own uploads."""

import html

import streamlit as st
import torch

from explorer.data.specs import spec
from explorer.data.uploads import preprocess_image
from explorer.errors import ImageError
from explorer.evaluate import score_name
from explorer.explore.latent import PICK_MODES, Reconstruction, decode_mean, pick_images, reconstruct
from explorer.pictures.images import make_grid, png_bytes
from explorer.pictures.overlays import upload_colour, upload_symbol
from explorer.pictures.reading import MAX_UPLOADS, UPLOAD_TYPES
from explorer.ui.image_report import image_report, reconstruction_gallery
from explorer.ui.models import (
    dataset_of,
    encoded_test_set,
    label_names,
    map_points_words,
    model_key,
    model_or_stop,
    test_elbo,
    test_images,
)
from explorer.ui.scatter import base_scatter, draw_uploads, star_caption
from explorer.ui.widgets import chart, distinct_uploads

st.set_page_config(page_title="Reconstruct - VAE Explorer", layout="wide")
choice, model, config = model_or_stop()
dataset, names = dataset_of(config), label_names(config)
mode = st.sidebar.radio(
    "Which test images",
    PICK_MODES,
    format_func=lambda m: m.replace("ELBO", score_name(model.config.variational)),
)
images, labels = test_images(dataset)
# as many as the test set has at most (a folder of a dozen images has two or three)
most = min(16, len(labels))
count = st.sidebar.slider("How many", min(4, most - 1), most, min(8, most)) if most > 1 else most
st.title("Reconstruct")
st.caption(
    "Each test image above the decoder's mean at "
    + ("the encoder's mean" if model.config.variational else "the image's code z = f(x)")
    + f", with its {score_name(model.config.variational)} in nats (higher is better)."
)

key = model_key(choice)
seed = st.sidebar.number_input("Seed", 0, 10_000, 0) if mode == "random" else 0
label = None
if mode == "by label":
    label = st.sidebar.selectbox(
        "Label", sorted(set(labels.tolist())), format_func=lambda k: names[k] if names else str(k)
    )
elbo, codes = test_elbo(*key, dataset), encoded_test_set(*key, dataset)  # stored beside the model
picked = pick_images(elbo, labels, mode, count, seed, label)
rec = Reconstruction(images[picked], decode_mean(model, codes[picked]), codes[picked], elbo[picked],
                     model.config.variational)  # fmt: skip
pair = torch.cat([rec.inputs, rec.outputs])
reconstruction_gallery(rec, picked, labels, names)
st.download_button(
    "Download these pictures (PNG)",
    png_bytes(make_grid(pair, len(picked)), scale=2),
    file_name=f"reconstructions-{mode.replace(' ', '-')}.png",
    mime="image/png",
)

st.header("Your images")
described = spec(dataset)
uploads = st.file_uploader(
    # a folder's images are "image"s: "pictures of an image" said nothing
    f"Upload pictures like {dataset}'s images (one or more)"
    if described.item == "image"
    else f"Upload pictures of {described.a_item} (one or more)",
    type=UPLOAD_TYPES,
    accept_multiple_files=True,
    help=f"Each is prepared the way {dataset}'s own images were: {described.convention.summary}.",
)
uploads, repeats = distinct_uploads(uploads or [])
for name, first in repeats:
    st.info(f"{name} is the same file as {first}: shown once.")
if len(uploads) > MAX_UPLOADS:
    left_out = ", ".join(u.name for u in uploads[MAX_UPLOADS:])
    st.warning(
        f"{len(uploads)} files uploaded: only the first {MAX_UPLOADS} are shown. Not shown: {left_out}. "
        "Remove some to see the rest."
    )
placed = []  # (name, mu, sigma) of each readable upload, for the map below
for upload in uploads[:MAX_UPLOADS]:
    try:
        x = preprocess_image(upload.getvalue(), dataset)
    except ImageError as exc:
        st.error(f"{upload.name}: {exc}")
        continue
    # its number and mark as the map below draws them (the name was only in a grey caption)
    n = len(placed)
    glyph = "&#9733;" if upload_symbol(n) == "star" else "&#9670;"
    st.html(
        f'<p style="margin: 0; font-weight: 600"><span style="color: {upload_colour(n)}">{glyph}</span> '
        f"{n + 1}. {html.escape(upload.name)}</p>"
    )
    a, b = st.columns([3, 2])
    with a:
        mu, sigma = image_report(model, x, key, dataset, upload.name, explain=not placed)
    result = reconstruct(model, x[None])
    picture = png_bytes(make_grid(torch.cat([result.inputs, result.outputs]), 2), scale=5)
    b.download_button(
        "Download (PNG)",  # in a column of 2/5 of the page: a longer label was cut at 1000 px
        picture,
        help="The prepared input beside its reconstruction, five times their size",
        file_name=f"{upload.name.rsplit('.', 1)[0]}-reconstruction.png",
        mime="image/png",
        key=f"dl-{upload.file_id}",
    )
    placed.append((upload.name, mu, sigma))
if placed:
    st.subheader("Where your images lie")
    fig, projection = base_scatter(*key, dataset, names)
    numbers = draw_uploads(fig, projection, placed)
    # a column, not the page's width: a map twice as wide as tall showed z1 from -10 to 10 with
    # every dot within +-4 (one scale on both axes)
    on_map, key_to_it = st.columns([3, 2], gap="medium")
    chart(on_map, fig, key="uploads-map")
    key_to_it.caption(
        f"{star_caption(model, projection, 'of one of your images')}, among "
        f"{map_points_words(dataset)}; its number says which: {numbers}."
    )
