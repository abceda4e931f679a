"""The Manifold page's live decoder: latent sliders whose point is decoded in the browser.

The decoder's weights (a few MB of float32) go to the page once; every slider movement then runs
the decoder in JavaScript (a few hundred thousand multiply-adds) and redraws the image and the
star on the map without a round trip to the server. The JavaScript mirrors ``VAE.decode(z).mean``:
Linear layers with the model's activation between them, then the sigmoid of the first D outputs.
The browser test checks its pixels against PyTorch's.
"""

from __future__ import annotations

import base64
import json
import struct
from importlib import resources

import numpy as np
import streamlit as st
import torch

from explorer.model import VAE
from explorer.pictures.images import png_bytes, to_uint8

STATIC = resources.files("explorer.ui") / "static"  # package files, shipped with the wheel
_component = st.components.v2.component(
    "vae_explorer.live_decoder",
    css=(STATIC / "live_decoder.css").read_text(encoding="utf-8"),
    js=(STATIC / "live_decoder.js").read_text(encoding="utf-8"),
    isolate_styles=False,
)


def runs_in_browser(model: VAE) -> bool:
    """Whether the browser can run the model's decoder: an MLP's, not a convolutional one."""
    return model.config.arch == "mlp"


def decoder_payload(model: VAE) -> tuple[dict, list[np.ndarray]]:
    """The decoder as the browser runs it (an MLP's): each Linear layer's shape, the activation
    and how many outputs are pixels in how many channels (the header), and the layers' weights
    (out x in, row-major) and biases."""
    linears = [m for m in model.decoder if isinstance(m, torch.nn.Linear)] + [model.dec_head]
    header = {
        "layers": [{"n": m.in_features, "m": m.out_features} for m in linears],
        "act": model.config.activation,
        "pixels": model.config.pixels,
        "channels": model.config.image_shape[0],
        "shape": list(model.config.image_shape[1:]),
        "dims": model.config.latent_dim,
    }
    arrays = [a.detach().cpu().float().numpy() for m in linears for a in (m.weight, m.bias)]
    return header, arrays


def pack(header: dict, arrays: bytes) -> bytes:
    """[4-byte little-endian length][JSON header][the arrays, already little-endian float32 bytes]:
    raw bytes reach the page without JSON or base64, which would cost a rerun many times more."""
    head = json.dumps(header).encode()
    return struct.pack("<I", len(head)) + head + arrays


def unpack(payload: bytes) -> tuple[dict, list[np.ndarray]]:
    """The inverse of ``pack`` for the arrays of ``header["layers"]`` (weight, bias of each)."""
    (size,) = struct.unpack_from("<I", payload)
    header = json.loads(payload[4 : 4 + size])
    offset, arrays = 4 + size, []
    for layer in header["layers"]:
        for count in (layer["m"] * layer["n"], layer["m"]):
            arrays.append(np.frombuffer(payload, "<f4", count, offset))
            offset += 4 * count
    return header, arrays


@st.cache_resource(max_entries=8)
def _payload(path: str, mtime_ns: int, dataset: str, key: str) -> tuple[dict, bytes]:
    """One model's live decoder, made once (weights, the map as a PNG): its header and its packed
    arrays. Reruns of the page only add the settings of the moment to the header. Shared and
    read-only."""
    from explorer.ui.models import cached_model, latent_activity, latent_map, scatter_picture, slider_reach

    model = cached_model(path, mtime_ns)
    projection = latent_map(path, mtime_ns, dataset)[1]
    picture = scatter_picture(path, mtime_ns, dataset)
    header, arrays = decoder_payload(model)
    header.update(
        start=[0.0] * model.config.latent_dim,
        scale=6,
        mean=projection.mean.tolist(),
        components=projection.components.flatten().tolist(),  # (z, 2) row-major
        lim=picture.lim,
        reach=slider_reach(path, mtime_ns, dataset),  # as far as the server's sliders reach
        map_size=picture.size,
        map_png="data:image/png;base64," + base64.b64encode(png_bytes(np.asarray(picture.base))).decode(),
        inactive=[not a for a in latent_activity(path, mtime_ns, dataset)[2]],
        signature=f"{key}@{mtime_ns}",
    )
    return header, b"".join(np.asarray(a, dtype="<f4").tobytes() for a in arrays)


def live_decoder(
    model_key: tuple[str, int], dataset: str, key: str, caption: str, grid: list[list[float]] | None = None
) -> None:
    """Mount the sliders, the decoded image and the map for the model at ``model_key`` (folder,
    mtime); ``grid``: the corners (4, z) of the Manifold grid, outlined on the map. Nothing comes
    back to the server: a slider move costs no rerun."""
    header, arrays = _payload(*model_key, dataset, key)
    _component(data=pack({**header, "caption": caption, "grid": grid}, arrays), key=key)


def server_decoder(
    model: VAE, dims_order: list[int], key: str, caption: str, reach: float = 4.0, on_map=None
) -> torch.Tensor:
    """Latent sliders whose point is decoded on the server, for a decoder the browser cannot run
    (a convolutional one): one slider per dimension in ``dims_order`` (the most active first),
    the decoded image beside them, each from -``reach`` to ``reach``; with ``on_map``
    ((``ScatterPicture``, projection, words for its axes)), the small map of the test set under
    the image with a star where z lies, as the browser's decoder shows it. Returns the point z
    (z_dim,). Each move reruns the page."""
    from explorer.explore.latent import decode_mean

    z = torch.zeros(model.config.latent_dim)
    sliders, picture = st.columns([3, 2], gap="medium")
    with sliders:
        for j in dims_order:
            z[j] = st.slider(f"z{j + 1}", -reach, reach, 0.0, reach / 80, key=f"{key}-z{j}")
    image = decode_mean(model, z[None])
    scale = max(1, 224 // max(model.config.image_shape[1:]))
    picture.image(png_bytes(to_uint8(image[0]), scale=scale), caption=caption)
    if on_map is not None:
        scatter, projection, axes = on_map
        where = projection(z[None].float())[0].tolist()
        picture.image(
            scatter.with_star(where, radius=24),  # the map is shown at half its size or less
            caption=f"The star: where z lies among {len(scatter.labels):,} encoded test "
            f"image{'' if len(scatter.labels) == 1 else 's'}, coloured by label ({axes}, -{scatter.lim:g} "
            f"to {scatter.lim:g})",
        )
    return z
