"""Why the stranger detector (``explorer.explore.strangers``) calls an image a stranger: the terms
of its logistic regression (Hendrycks et al. 2019's outlier exposure on the features of
``StrangerDetector.features``), each feature's coefficient times the image's standardised value,
read as the log-odds that feature adds over an image at the mean of the images the regression was
fitted on (mostly the model's own test images), and the largest said in words."""

from __future__ import annotations

import numpy as np

# What each feature says when it pushes an image towards "stranger", by the sign of the image's
# departure from the fitted images' mean: (below it, above it); "" where that side says nothing.
REASONS = {
    "ELBO": ("the model explains it poorly (a low ELBO)",
             "the model explains it unusually well (a high ELBO)"),
    "rate": ("its code lies unusually near the prior's centre (a low rate)",
             "its code lies far from the prior's centre (a high rate)"),
    "complexity": ("it is plainer than the training images (a small PNG: little texture or detail)",
                   "it is busier than the training images (a large PNG: much texture or noise)"),
    "added ink": ("the reconstruction draws little where the image has nothing",
                  "the reconstruction draws strokes where the image has none"),
    "density": ("", "its ELBO and its PNG size together are unlike any test image's (input complexity)"),
    "full ink": ("little of its ink is at full strength (grey, like a photo)",
                 "more of its ink is at full strength than the training images'"),
    "ink width": ("its strokes are thinner than the training images'",
                  "its strokes or shapes are wider than strokes"),
}  # fmt: skip


def strongest(names: list[str], coef: np.ndarray, z: np.ndarray, top: int = 2) -> tuple[str, ...]:
    """The ``top`` features (of ``names``, keys of ``REASONS``) whose terms coef * z (each (F,):
    the regression's coefficients and one image's standardised features) add most to the
    log-odds of "stranger", in words, most first; only terms that add (> 0) and at least a
    quarter of the largest one. Empty when no term adds.

    Raises:
        ValueError: names, coef and z of different lengths, or a name not in ``REASONS``.
    """
    coef, z = np.asarray(coef, dtype=float), np.asarray(z, dtype=float)
    if not len(names) == len(coef) == len(z):
        raise ValueError(f"{len(names)} names for {len(coef)} coefficients and {len(z)} features")
    unknown = [n for n in names if n not in REASONS]
    if unknown:
        raise ValueError(f"no words for {unknown}: use {', '.join(REASONS)}")
    terms = coef * z
    if not (terms > 0).any():
        return ()
    order = [j for j in np.argsort(-terms) if terms[j] > 0 and terms[j] >= terms.max() / 4][:top]
    said = [REASONS[names[j]][int(z[j] > 0)] for j in order]
    return tuple(words for words in said if words)
