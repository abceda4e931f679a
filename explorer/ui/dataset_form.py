"""The Train page's "Add a folder of images" form: a user's own images become a dataset the form
can train on (``explorer.data.folders``, the same as ``vae-explorer data add``)."""

from __future__ import annotations

import streamlit as st

from explorer.data.folders import add_folder
from explorer.data.specs import SIZE_HELP
from explorer.errors import ExplorerError

FIT_HELP = "crop: centre-crop to the shape; pad: fit inside, black borders"


def dataset_form() -> None:
    """An expander with the folder, name, size and colour of a new dataset, and its import."""
    with st.expander("Add a folder of your own images as a dataset"):
        st.caption(
            "PNG, JPEG, WebP, BMP or GIF files in a folder on this machine; images in subfolders "
            "take the subfolder's name as their label. Each is centre-cropped (or padded) to the "
            "size and resized; one in ten goes to the test split, chosen by its file name. Files "
            "that cannot be read are listed and skipped. The dataset then appears in the form's "
            "Dataset list."
        )
        with st.form("add_dataset", border=False):
            a, b = st.columns(2)
            path = a.text_input("Folder", placeholder="/home/me/pictures/cats", key="dataset-path")
            name = b.text_input("Dataset name", placeholder="cats", key="dataset-name")
            c, d, e = st.columns(3)
            size = c.text_input("Size", "32", key="dataset-size", help=SIZE_HELP)
            fit = d.radio("Fit", ("crop", "pad"), horizontal=True, key="dataset-fit", help=FIT_HELP)
            grey = e.checkbox("Greyscale", key="dataset-grey", help="colour unless ticked")
            replace = e.checkbox("Replace a dataset of that name", key="dataset-replace")
            added = st.form_submit_button("Add the folder", key="dataset-add")
        if not added:
            return
        bar = st.progress(0.0, text="reading the images...")
        seen = [0]

        def tick(n: int) -> None:
            seen[0] += n
            if seen[0] % 50 == 0:
                bar.progress(min(0.99, seen[0] / (seen[0] + 200)), text=f"{seen[0]:,} files read")

        try:
            done = add_folder(name.strip(), path.strip(), size, grey, fit, replace=replace, progress=tick)
        except ExplorerError as exc:
            bar.empty()
            st.error(f"The folder was not added: {exc}")
            return
        bar.empty()
        st.success(
            f"Added **{name.strip()}**: {done.train:,} training and {done.test:,} test images, "
            f"classes {', '.join(done.classes)}. Choose it as the form's Dataset (a convolutional "
            "architecture suits photographs)."
        )
        if done.skipped:
            listed = "\n".join(f"- `{file}`: {why}" for file, why in done.skipped[:20])
            more = f"\n- ... and {len(done.skipped) - 20} more" if len(done.skipped) > 20 else ""
            st.warning(f"{len(done.skipped)} file(s) skipped:\n{listed}{more}")
