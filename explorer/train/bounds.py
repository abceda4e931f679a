"""The bound against training samples evaluated: the x-axis of the paper's Figure 2.

Kingma & Welling 2013 (Section 5, Figure 2) plot the estimated lower bound per datapoint, on the
training set and on the test set, against the number of training samples evaluated, from 10^5 to
10^8 on a log scale. ``BoundCurve`` gives a run those points: after the step whose samples reach
the next of ``points_per_decade`` log-spaced counts (and at the run's end), the mean ELBO (SGVB
estimator B, one draw per image, fixed draws per point) of a fixed training subset and of the
test set; or, for the paper's Figure 3, the marginal likelihood log p(x) by its Appendix D
estimator (``explorer.likelihood.marginal``: HMC posterior samples, chains started from the
encoder's best draw; for Monte Carlo EM, which has no encoder, the training images' chains start
at MCEM's own chain states and the test images' at the best of many prior draws).
"""

from __future__ import annotations

import math
import time

import torch

from explorer.evaluate import test_figures
from explorer.model import VAE

FIRST_COUNT = 10_000  # the first point's training samples; the paper's axis starts at 10^5


def log_spaced_count(index: int, points_per_decade: int) -> int:
    """The ``index``-th count of training samples: round(10^(index / points_per_decade)).

    >>> [log_spaced_count(k, 8) for k in (24, 25, 32)]
    [1000, 1334, 10000]
    """
    return round(10 ** (index / points_per_decade))


def next_index(samples: int, points_per_decade: int) -> int:
    """The index of the first log-spaced count above ``samples`` and at least ``FIRST_COUNT``."""
    k = math.ceil(math.log10(FIRST_COUNT) * points_per_decade)
    while log_spaced_count(k, points_per_decade) <= samples:
        k += 1
    return k


class BoundCurve:
    """Evaluates the bound when a run's training samples pass the next log-spaced count.

    ``train_x`` (N, C, H, W) and ``test_x`` (T, C, H, W) are fixed (binarised once where the model
    is binary), so every point of a run, and of runs that share the data, scores the same images.
    """

    def __init__(self, train_x: torch.Tensor, test_x: torch.Tensor, points_per_decade: int, seed: int,
                 samples: int, estimator: str = "elbo", start: str = "auto") -> None:  # fmt: skip
        self.train_x, self.test_x, self.per_decade, self.seed = train_x, test_x, points_per_decade, seed
        self.estimator, self.start = estimator, start
        self.index = next_index(samples, points_per_decade)
        self.last = samples  # the training samples of the latest point (a run resumed: where it was)

    def due(self, samples: int) -> bool:
        """Whether ``samples`` (training samples evaluated so far) has reached the next count."""
        return samples >= log_spaced_count(self.index, self.per_decade)

    def due_at_end(self, samples: int) -> bool:
        """Whether a run ending at ``samples`` needs a point there: its last log-spaced count lies
        before its end (``paper figure2 --samples 200000`` stopped its curve at 177,900)."""
        return samples > self.last

    def evaluate(self, model: VAE, samples: int, train_start: torch.Tensor | None = None) -> dict[str, float]:
        """The point for ``samples``: {"samples", "train_bound", "test_bound", "bound_seconds"}
        (bounds in nats per image); moves on to the first count above ``samples``.
        ``train_start`` (N, Nz): where the estimator's chains on the training subset start (Monte
        Carlo EM's own chains for those images), instead of ``start``."""
        start = time.perf_counter()
        seed = self.seed * 1_000_003 + self.index  # the same draws for the same point
        if self.estimator == "paper-hmc":
            train = self._marginal(model, self.train_x, seed, train_start)
            test = self._marginal(model, self.test_x, seed + 1)
        else:
            train = test_figures(model, self.train_x, "elbo", 1, seed)["test_elbo"]
            test = test_figures(model, self.test_x, "elbo", 1, seed + 1)["test_elbo"]
        self.index, self.last = next_index(samples, self.per_decade), samples
        return {"samples": samples, "train_bound": train, "test_bound": test,
                "bound_seconds": time.perf_counter() - start}  # fmt: skip

    def _marginal(self, model: VAE, x: torch.Tensor, seed: int, states: torch.Tensor | None = None) -> float:
        """Mean log p(x) of ``x`` by the paper's Appendix D estimator, nats per image; the caller's
        random stream is left as it was (the chains draw from a forked, seeded one)."""
        from explorer.likelihood.marginal import paper_log_likelihood

        devices = [x.device] if x.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            was_training = model.training
            model.eval()
            try:
                starts = states.split(500) if states is not None else [self.start] * len(x.split(500))
                values = torch.cat(
                    [paper_log_likelihood(model, xb, start=s) for xb, s in zip(x.split(500), starts)]
                )
            finally:
                model.train(was_training)
        return float(values.double().mean())
