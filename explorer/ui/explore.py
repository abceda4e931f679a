"""What the Latent space page offers beyond the map: the nearest neighbours of an image in latent
and in pixel space, a box or lasso selection as a gallery with its figures and downloads, and
the whole encoded test set as CSV or NPY."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import streamlit as st
import torch

from explorer.evaluate import score_name
from explorer.explore.neighbours import Neighbours, nearest
from explorer.model import VAE
from explorer.pictures.images import make_grid, png_bytes
from explorer.ui.models import encoded_test_set, test_elbo, test_images

NEIGHBOURS = 8
GALLERY_MOST = 48  # selected images drawn; the figures and downloads cover the whole selection


def neighbours_panel(
    model: VAE,
    key: tuple[str, int],
    dataset: str,
    x: torch.Tensor,
    code: torch.Tensor,
    exclude: int | None = None,
    names=None,
) -> None:
    """The ``NEIGHBOURS`` test images nearest to one image: by code (posterior means, Euclidean in
    z) and by pixels (Euclidean over the image's values in [0, 1]), each with its distance. A test
    image's own (``exclude``: its index) are kept per model and index: every rerun of the page
    shows them again (a slider, a download), and the pixel search reads the whole test set."""
    images, labels = test_images(dataset)
    if exclude is not None:
        by_code, by_pixels = _test_image_neighbours(*key, dataset, exclude)
    else:
        by_code = nearest(code, encoded_test_set(*key, dataset), NEIGHBOURS)
        by_pixels = nearest(x, images, NEIGHBOURS)
    found = len(by_code.indices)  # fewer than NEIGHBOURS in a folder of a dozen images
    if found == 0:
        st.markdown("**Nearest test images**")
        other = "no other image" if exclude is not None else "no image"
        st.caption(
            f"None to show: {dataset}'s test set holds {other} to compare with (a folder's test split "
            "takes one image in ten)."
        )
        return
    shared = len(set(by_code.indices) & set(by_pixels.indices))
    what = "posterior means" if model.config.variational else "codes"
    st.markdown(f"**Nearest test images** ({shared} of {found} in both rows)")
    for title, found, unit in (
        (f"in latent space ({what})", by_code, "z units"),
        ("in pixel space", by_pixels, "over pixel values 0-1"),
    ):
        st.caption(title)
        row = images[found.indices]
        st.image(png_bytes(make_grid(row, len(row)), scale=2), output_format="PNG")
        tags = [
            f"#{i} {names[int(labels[i])] if names else int(labels[i])} ({d:.2f})"
            for i, d in zip(found.indices, found.distances)
        ]
        st.caption(" · ".join(tags) + f" (Euclidean distance, {unit})")
    st.caption(
        "What the encoder calls similar (top) against what looks similar pixel by pixel (bottom): "
        "where the rows differ, the model groups by something other than ink on the same pixels."
    )


@st.cache_data(show_spinner=False, max_entries=512)
def _test_image_neighbours(
    path: str, mtime_ns: int, dataset: str, index: int
) -> tuple[Neighbours, Neighbours]:
    """(by code, by pixels): the nearest test images to test image ``index`` (itself left out)."""
    images = test_images(dataset)[0]
    codes = encoded_test_set(path, mtime_ns, dataset)
    return (
        nearest(codes[index], codes, NEIGHBOURS, index),
        nearest(images[index], images, NEIGHBOURS, index),
    )


def selected_indices(event_selection: dict) -> list[int] | None:
    """Test-set indices of a box or lasso selection on the scatter (from the points' customdata),
    or None when the event is a click."""
    if not (event_selection.get("box") or event_selection.get("lasso")):
        return None
    out = []
    for point in event_selection.get("points", []):
        custom = point.get("customdata")
        if custom is not None:
            out.append(int(custom[0] if isinstance(custom, list) else custom))
    return sorted(set(out))


def codes_table(codes: torch.Tensor, labels: torch.Tensor, indices, names=None) -> bytes:
    """CSV bytes: index, label (and its name, where names say more than the numbers), z1..zd,
    one row per test image of ``indices``."""
    if names and all(str(n) == str(k) for k, n in enumerate(names)):
        names = None  # MNIST's names are its labels: no column that repeats them
    header = ["index", "label", *(["name"] if names else []), *(f"z{j + 1}" for j in range(codes.shape[1]))]
    out = io.StringIO()
    out.write(",".join(header) + "\n")
    for i in indices:
        label = int(labels[i])
        row = [
            str(i),
            str(label),
            *([names[label]] if names else []),
            *(f"{v:.6g}" for v in codes[i].tolist()),
        ]
        out.write(",".join(row) + "\n")
    return out.getvalue().encode()


def _model_name(key: tuple[str, int]) -> str:
    """The model's name for a download's file name (its folder's: mnist-z20's codes are not
    mnist-z2's)."""
    return Path(key[0]).name


def codes_npy(codes: torch.Tensor, labels: torch.Tensor, indices) -> bytes:
    """NPY bytes of a structured array: index, label and the code (z,) of each test image."""
    index = np.asarray(list(indices), dtype=np.int64)
    table = np.zeros(len(index), dtype=[("index", "i8"), ("label", "i8"), ("z", "f4", (codes.shape[1],))])
    table["index"], table["label"], table["z"] = index, labels[index].numpy(), codes[index].numpy()
    buffer = io.BytesIO()
    np.save(buffer, table, allow_pickle=False)
    return buffer.getvalue()


def selection_panel(model: VAE, key: tuple[str, int], dataset: str, indices: list[int], names=None) -> None:
    """A box or lasso selection: how many, by label, their mean ELBO (an autoencoder: log p(x|z)),
    the first ``GALLERY_MOST`` images, and downloads of the selection's codes and indices."""
    images, labels = test_images(dataset)
    codes = encoded_test_set(*key, dataset)
    score = test_elbo(*key, dataset)[indices].double()
    counts = torch.bincount(labels[indices]).tolist()
    by_label = ", ".join(f"{names[k] if names else k}: {c}" for k, c in enumerate(counts) if c)
    st.subheader(f"Selection: {len(indices):,} test images")
    st.markdown(
        f"Mean {score_name(model.config.variational)} **{score.mean().item():.2f}** nats "
        f"(lowest {score.min().item():.1f}, highest {score.max().item():.1f}).  \nBy label: {by_label}"
    )
    shown = indices[:GALLERY_MOST]
    st.image(
        png_bytes(make_grid(images[shown], 12), scale=2),
        output_format="PNG",
        caption=f"the first {len(shown)} of the selection" if len(indices) > len(shown) else None,
    )
    a, b = st.columns(2)
    a.download_button(
        "Codes of the selection (CSV)",
        codes_table(codes, labels, indices, names),
        file_name=f"{_model_name(key)}-selection-codes.csv",
        mime="text/csv",
        key="download-selection-csv",
    )
    b.download_button(
        "Indices of the selection (text)",
        "\n".join(map(str, indices)) + "\n",
        file_name=f"{_model_name(key)}-selection-indices.txt",
        mime="text/plain",
        key="download-selection-indices",
    )


@st.cache_resource(show_spinner=False, max_entries=8)
def _test_set_files(path: str, mtime_ns: int, dataset: str, names: tuple | None) -> tuple[bytes, bytes]:
    """(CSV, NPY) of every test image's code with its label: written once per model, when first
    asked for (10,000 rows took 0.4 s of a first view when every view wrote them)."""
    labels = test_images(dataset)[1]
    codes = encoded_test_set(path, mtime_ns, dataset)
    everything = range(len(labels))
    return codes_table(codes, labels, everything, list(names) if names else None), codes_npy(
        codes, labels, everything
    )


def test_set_downloads(key: tuple[str, int], dataset: str, names=None) -> None:
    """Downloads of every test image's code with its label: CSV, and NPY (a structured array),
    each written when its button is pressed (Streamlit's deferred ``data``)."""
    names = tuple(names) if names else None
    a, b = st.columns(2)
    a.download_button(
        "Codes of the test set (CSV)",
        lambda: _test_set_files(*key, dataset, names)[0],
        file_name=f"{_model_name(key)}-{dataset}-test-codes.csv",
        mime="text/csv",
        key="download-codes-csv",
    )
    b.download_button(
        "Codes of the test set (NPY)",
        lambda: _test_set_files(*key, dataset, names)[1],
        file_name=f"{_model_name(key)}-{dataset}-test-codes.npy",
        mime="application/octet-stream",
        key="download-codes-npy",
    )
