"""Ink statistics: what an image's ink looks like, apart from any model.

A model of strokes (MNIST) explains a photographed object shrunk into a digit's box (a T-shirt,
a shoe) about as well as its worst digits, so its ELBO, rate and PNG size say too little. The
ink itself differs: a digit is drawn in strokes of full ink, a few pixels wide, with anti-aliased
edges, while a photo prepared the same way keeps its spread of tones (shading, folds, print), so
little of it is at full strength, and it is inked over a wider area. Two numbers say so, and
enter the stranger detector of a dataset of drawings (``explorer.explore.strangers``,
``reads_ink``) beside the model's statistics:

- the **full ink share**: the share of the inked pixels (above ``INKED`` of full strength) that
  are at ``FULL`` of it or more (MNIST's test digits: median 0.50, 1st percentile 0.22;
  Fashion-MNIST training items uploaded to an MNIST model: median 0.17);
- the **ink width**, in pixels: twice the 95th percentile of the distance from an inked pixel to
  the nearest pixel of the image that is not inked (the Euclidean distance transform of
  ``scipy.ndimage.distance_transform_edt``; the surround does not count, so that an item
  touching the frame, as Fashion-MNIST's do, is measured across its inside): the width of the
  widest strokes, or of a filled area (MNIST's test digits: median 4.3, 99th percentile 7.2,
  bold 0s and 8s included; the Fashion-MNIST items uploaded: median 6.2, 99th percentile 12).

Both were chosen by measurement among sixteen candidates (ink mass, coverage, mean level,
stroke width at half strength, texture, entropy, ...; ``bench/README.md``, Strangers): more
of them served the MNIST models little better and the Fashion-MNIST model worse; and even these
two cost Fashion-MNIST's verdict on uploaded digits, so its detector does not read them.
"""

from __future__ import annotations

import numpy as np
import torch

INK_STATISTICS = ("full ink", "ink width")
INK_UNITS = ("share", "pixels")
INKED, FULL = 0.1, 0.9  # grey levels (of 1) above which a pixel is inked, and at full strength


def ink_statistics(x: torch.Tensor) -> np.ndarray:
    """The ink statistics of images x (N, C, H, W) in [0, 1] (colour: the mean over channels):
    (N, 2) float64, columns ``INK_STATISTICS``: the full ink share (in [0, 1]) and the ink width
    (pixels), see the module's docstring. An image with no inked pixel has 0 for both."""
    from scipy import ndimage

    grey = x.detach().cpu().double().mean(1).numpy()  # (N, H, W)
    out = np.zeros((len(grey), len(INK_STATISTICS)))
    for i, a in enumerate(grey):
        inked = a > INKED
        if not inked.any():
            continue
        distance = ndimage.distance_transform_edt(inked)[inked]
        out[i] = (a[inked] >= FULL).mean(), 2.0 * np.percentile(distance, 95)
    return out
