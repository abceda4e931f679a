"""The Manifold page's grid (the paper's Figure 4) as PNG pictures, drawn once per model and
setting and shared by the sessions."""

from __future__ import annotations

import streamlit as st

from explorer.explore.latent import manifold, manifold_at
from explorer.pictures.images import make_grid, png_bytes
from explorer.ui.models import cached_model

GRID_PIXELS = 560  # the Manifold grid picture's side


@st.cache_data(show_spinner="Decoding the grid...", max_entries=32)
def manifold_png(path: str, mtime_ns: int, n: int, lo: float, hi: float, axis_a: int, axis_b: int) -> bytes:
    """The decoded n x n grid of the paper's Figure 4 as a PNG: drawn once per model and setting,
    so that a rerun of the page (a slider outside it, a model switch back) costs nothing."""
    picture = make_grid(manifold(cached_model(path, mtime_ns), n, lo, hi, (axis_a, axis_b)), n, pad=0)
    return png_bytes(picture, scale=max(1, GRID_PIXELS // picture.shape[1]))


@st.cache_data(show_spinner="Decoding the grid...", max_entries=32)
def manifold_png_at(path: str, mtime_ns: int, xs: tuple, ys: tuple, axis_a: int, axis_b: int) -> bytes:
    """The decoded grid over given z values (``explorer.explore.latent.manifold_at``) as a PNG."""
    picture = make_grid(manifold_at(cached_model(path, mtime_ns), xs, ys, (axis_a, axis_b)), len(xs), pad=0)
    return png_bytes(picture, scale=max(1, GRID_PIXELS // picture.shape[1]))
