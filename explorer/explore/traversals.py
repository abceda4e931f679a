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
WEAK = 0.3  # below this R, a dimension is said to follow no single factor
DOMINANT = 2.0  # the followed factor explains at least this many times the runner-up's variance


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


def _factor_features(column: torch.Tensor, name: str) -> torch.Tensor:
    """The features (N, p) through which a dimension may follow factor ``name``: the value itself;
    a circular factor's cosine and sine over each of its periods; a categorical factor's classes
    as indicators (all but one)."""
    column = column.double()
    if name in CATEGORICAL:
        classes = column.round().long()
        kinds = classes.unique()
        return (
            torch.stack([(classes == k).double() for k in kinds[1:]], 1)
            if len(kinds) > 1
            else column[:, None] * 0
        )
    if name in CIRCULAR:
        angles = [2 * math.pi * column / period for period in CIRCULAR[name]]
        return torch.stack([f(a) for a in angles for f in (torch.cos, torch.sin)], 1)
    return column[:, None]


def factor_correlations(means: torch.Tensor, factors: torch.Tensor, names: tuple[str, ...]) -> torch.Tensor:
    """How closely each latent dimension's posterior means (N, z) follow each true factor (N, F),
    in [0, 1] (z, F), by one measure for every factor: the multiple correlation R of the best
    least-squares fit of the dimension from the factor's features (``_factor_features``), its R^2
    adjusted for the number of features (so that a factor with more features, a rotation's six,
    gains nothing by chance), square-rooted. For a plain quantity R is Pearson's |r|; for a
    categorical one, the correlation ratio eta; a circular one counts through its wrap-around (a
    square's rotation repeats every 90 degrees)."""
    z = means.double()
    z = (z - z.mean(0)) / z.std(0).clamp_min(1e-12)
    n = len(z)
    out = torch.zeros(z.shape[1], factors.shape[1], dtype=torch.float64)
    for f, name in enumerate(names):
        x = _factor_features(factors[:, f], name)
        x = torch.cat([torch.ones(n, 1, dtype=torch.float64), x - x.mean(0)], 1)
        fit = torch.linalg.lstsq(x, z).solution  # (1 + p, z)
        residual = (z - x @ fit).pow(2).sum(0) / z.pow(2).sum(0).clamp_min(1e-12)  # 1 - R^2
        p = x.shape[1] - 1
        adjusted = 1 - residual * (n - 1) / max(n - p - 1, 1)
        out[:, f] = adjusted.clamp(0, 1).sqrt()
    return out


def followed_factor(row: torch.Tensor, names: tuple[str, ...]) -> tuple[str | None, str, float, str, float]:
    """The factor a dimension follows from its row (F,) of ``factor_correlations``: (that factor's
    name, or None when no single factor stands out; the best factor and its R; the runner-up and
    its R). A factor is claimed when its R is at least WEAK and it explains at least DOMINANT
    times the variance the runner-up does (a unit that follows x and scale alike follows
    neither alone)."""
    order = torch.argsort(row, descending=True).tolist()
    best, second = order[0], order[1] if len(order) > 1 else order[0]
    r1, r2 = float(row[best]), float(row[second]) if len(order) > 1 else 0.0
    claimed = r1 >= WEAK and r1**2 >= DOMINANT * r2**2
    return (names[best] if claimed else None), names[best], r1, names[second], r2


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
