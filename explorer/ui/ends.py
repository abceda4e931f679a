"""The Interpolate page's two ends: each a test image, an upload or the drawing."""

from __future__ import annotations

import streamlit as st

from explorer.data.cache import binarize_picture
from explorer.pictures.images import make_grid, png_bytes
from explorer.theory.evidence import data_space_binarized
from explorer.ui.image_report import verdict_line
from explorer.ui.models import data_space_test_set, test_images
from explorer.ui.widgets import data_number_input, uploaded_image

SOURCES = ["test image", "upload", "drawing"]


def interpolation_end(column, label: str, default_index: int, model, key, dataset: str, names, config: dict):
    """One end of an interpolation, chosen in ``column``: a test image, an upload or the drawing
    from the Draw page, shown with its ELBO and stranger verdict, the ELBO scored in the model's
    data space (``config``: its config.json) as the Theory page scores it. Returns (image
    (C, H, W), caption), or None with a message shown."""
    images, labels = test_images(dataset)
    binarized = data_space_binarized(config)
    index = None
    with column:
        st.subheader(label)
        available = SOURCES if "drawing" in st.session_state else SOURCES[:2]
        source = st.radio(f"{label} from", available, horizontal=True, key=f"src-{label}")
        chosen = None
        if source == "test image":
            index = data_number_input(
                st,
                "Test index",
                0,
                len(images) - 1,
                default_index,
                key=f"idx-{label}",
                help="Any image of the test set, e.g. one you clicked on the Latent space page",
            )
            k = int(labels[index])
            chosen = images[index], f"test #{index} ({names[k] if names else k})"
        elif source == "drawing":
            chosen = st.session_state["drawing"], "your drawing"
        else:
            chosen = uploaded_image(st, dataset, f"up-{label}", "Upload an image for this end.")
            if chosen is None:
                return None
        st.image(png_bytes(make_grid(chosen[0][None], 1), scale=3), caption=chosen[1], output_format="PNG")
        if not binarized:
            scored = chosen[0], "the image as shown"
        elif index is not None:  # the test set as evaluation binarises it: the Theory page's image too
            scored = (
                data_space_test_set(dataset, True)[index],
                "the image binarised as evaluation binarises it",
            )
        else:
            scored = binarize_picture(chosen[0]), "the image binarised once (fixed seed), as evaluation does"
        verdict_line(model, chosen[0], key, dataset, scored)
        return chosen
