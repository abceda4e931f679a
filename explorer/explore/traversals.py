"""Walking latent space: traversals of one dimension at a time, which true factor a dimension
follows (for generated data such as the shapes), attribute vectors between label means and
analogies (White 2016, "Sampling Generative Networks", sections 3 and 4). Pure PyTorch/NumPy."""

from __future__ import annotations

import math

import torch

from explorer.explore.latent import decode_mean
from explorer.model import VAE

# Factors that wrap around, with the periods to try: a shape's rotation repeats every 360 degrees
# for a heart, 180 for an ellipse and 90 for a square.
CIRCULAR = {"rotation": (360.0, 180.0, 90.0), "hue": (1.0,)}
CATEGORICAL = {"shape"}  # factors that are class indices, not quantities
WEAK = 0.3  # below this |r| (or eta), a dimension is said to follow no single factor


def informative_order(kl: list[float], code_variance: list[float]) -> list[int]:
    """The latent dimensions, most informative first: by mean KL(q(z_j|x) || N(0, 1)) (nats),
    the information a VAE's code carries in that dimension; where the KL is zero throughout (an
    autoencoder, which has no posterior, or a VAE whose every unit collapsed) by the variance of
    the code over the data instead. Ties keep index order. The one rule for the Manifold page's
    axes, its server-side sliders and the Traversals page's rows."""
    activity = kl if any(k > 0 for k in kl) else code_variance
    return sorted(range(len(activity)), key=lambda j: -activity[j])


def traversal_dims(
    kl: list[float], code_variance: list[float], active: list[bool]
) -> tuple[list[int], list[int]]:
    """(the active dimensions, most informative first (``informative_order``); the inactive ones
    in index order)."""
    ordered = [j for j in informative_order(kl, code_variance) if active[j]]
    return ordered, [j for j, a in enumerate(active) if not a]


@torch.no_grad()
def traversal(model: VAE, base: torch.Tensor, dims: list[int], values: list[float]) -> torch.Tensor:
    """Decoder means (len(dims) * len(values), C, H, W), one row per dimension of ``dims``: that
    dimension set to each of ``values`` in turn, the others kept at ``base`` (z,)."""
    z = base.reshape(1, -1).repeat(len(dims) * len(values), 1)
    for row, j in enumerate(dims):
        z[row * len(values) : (row + 1) * len(values), j] = torch.as_tensor(values, dtype=z.dtype)
    return decode_mean(model, z)


def factor_correlations(means: torch.Tensor, factors: torch.Tensor, names: tuple[str, ...]) -> torch.Tensor:
    """|Pearson correlation| (z, F) between each latent dimension's posterior means (N, z) and
    each true factor (N, F), in [0, 1]. A circular factor (rotation in degrees, hue) counts by the
    largest of its cosine's and sine's correlations over its periods (a square's rotation repeats
    every 90 degrees), so that its wrap-around does not hide a match;
    a categorical one (the shape's kind) by the correlation ratio eta, the share of the
    dimension's spread that the classes explain (square-rooted), since its index has no order."""
    z = means.double()
    z = (z - z.mean(0)) / z.std(0).clamp_min(1e-12)
    out = torch.zeros(z.shape[1], factors.shape[1], dtype=torch.float64)
    for f, name in enumerate(names):
        column = factors[:, f].double()
        if name in CATEGORICAL:
            classes = column.round().long()
            between = sum((classes == k).sum() * z[classes == k].mean(0).pow(2) for k in classes.unique())
            out[:, f] = (between / len(z)).clamp(0, 1).sqrt()  # z is standardised: total variance 1
            continue
        views = [column]
        if name in CIRCULAR:
            angles = [2 * math.pi * column / period for period in CIRCULAR[name]]
            views = [f(a) for a in angles for f in (torch.cos, torch.sin)]
        for view in views:
            v = (view - view.mean()) / view.std().clamp_min(1e-12)
            out[:, f] = torch.maximum(out[:, f], ((z * v[:, None]).mean(0) * len(v) / (len(v) - 1)).abs())
    return out


def label_mean(means: torch.Tensor, labels: torch.Tensor, label: int) -> torch.Tensor:
    """The mean code (z,) of the images with ``label``.

    Raises:
        ValueError: no image has that label.
    """
    picked = means[labels == label]
    if not len(picked):
        raise ValueError(f"no test image has label {label}")
    return picked.double().mean(0).to(means.dtype)


def attribute_vector(means: torch.Tensor, labels: torch.Tensor, source: int, target: int) -> torch.Tensor:
    """The attribute vector (z,) from one label's mean code to another's (White 2016, section
    4.1): mean(z | target) - mean(z | source). A crude attribute: it carries everything in which
    the two classes differ on average, not one property."""
    return label_mean(means, labels, target) - label_mean(means, labels, source)


def walk(start: torch.Tensor, vector: torch.Tensor, steps: int, reach: float = 1.0) -> torch.Tensor:
    """``steps`` points (steps, z) from ``start`` along ``vector``: start + t vector for t evenly
    from 0 to ``reach``."""
    t = torch.linspace(0, reach, steps, dtype=start.dtype)[:, None]
    return start[None] + t * vector[None]


def analogy(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """a : b :: c : ?, by vector arithmetic on codes (White 2016, section 4.2): c + (b - a)."""
    return c + (b - a)
