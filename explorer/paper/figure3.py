"""The paper's Figure 3: AEVB, wake-sleep and Monte Carlo EM compared by the marginal likelihood.

Kingma & Welling 2013, Section 5 ("Marginal likelihood"), Figure 3 and Appendices D and E, as
followed here:
- "For very low-dimensional latent space it is possible to estimate the marginal likelihood of
  the learned generative models using an MCMC estimator": MNIST, N_z = 3, "the encoder and
  decoder had 100 hidden units", for a small (N_train = 1,000) and a large (50,000) training set.
- The three algorithms: AEVB, wake-sleep (the same encoder) and Monte Carlo EM "using a Hybrid
  Monte Carlo sampler ... 10 HMC leapfrog steps with an automatically tuned stepsize such that the
  acceptance rate was 90%, followed by 5 weight updates steps using the acquired sample"
  (``explorer.train.mcem``); Adagrad ("with annealing schedule": plain Adagrad's own 1/sqrt decay).
- The y-axis: the marginal log-likelihood on the training and the test set by the estimator of
  Appendix D (``explorer.likelihood.marginal``: HMC posterior samples, a density fitted to half of
  them, the reciprocal importance estimate on the other half). The paper scores the first 1,000
  points of each set with 50 samples (4 leapfrog steps); we score ``ESTIMATE_IMAGES`` of each
  set (fewer: the estimator costs ~750 decoder passes per image and point on this CPU) at
  ``POINTS_PER_DECADE`` counts per decade.
- Initialisation, weight decay, M = 100 and the step-size trial as in Figure 2 (``figure2``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from explorer.config import ModelConfig, TrainConfig
from explorer.errors import ExplorerError
from explorer.paper.figure2 import BATCH

TRAIN_SIZES = (1_000, 50_000)
ALGORITHMS = ("aevb", "wake-sleep", "mcem")
NZ, HIDDEN = 3, 100
POINTS_PER_DECADE = 4
ESTIMATE_IMAGES = 200  # training and test images each point scores (the paper: 1,000)


@dataclass(frozen=True)
class Panel:
    """One curve of Figure 3: a training-set size trained by one algorithm."""

    n_train: int
    algorithm: str

    TRIAL_SAMPLES = 10_000  # the step-size trial (Figure 2's 50,000 would cost MCEM minutes per step size)

    @property
    def name(self) -> str:
        return f"mnist-ntrain{self.n_train}-{self.algorithm}"

    @classmethod
    def from_name(cls, name: str) -> Panel:
        """The panel of a run name ("mnist-ntrain1000-mcem"); ValueError for any other name."""
        head, rest = name.split("-ntrain", 1)
        n, algorithm = rest.split("-", 1)
        if head != "mnist":
            raise ValueError(name)
        return cls(int(n), algorithm)

    def configs(self, lr: float, samples: int, device: str = "auto") -> tuple[ModelConfig, TrainConfig]:
        """The paper's Figure 3 settings for this panel, to ``samples`` training samples."""
        model = ModelConfig(latent_dim=NZ, hidden=(HIDDEN,), activation="tanh", likelihood="bernoulli")
        train = TrainConfig(
            dataset="mnist", limit=self.n_train, epochs=max(1, math.ceil(samples / self.n_train)),
            batch_size=BATCH, samples=1, algorithm=self.algorithm, init="paper", optimizer="adagrad",
            lr=lr, weight_decay=1.0 / self.n_train, bound_points=POINTS_PER_DECADE,
            bound_estimator="paper-hmc", bound_train_images=ESTIMATE_IMAGES, test_limit=ESTIMATE_IMAGES,
            log_every=500, device=device, seed=0,
        )  # fmt: skip
        return model, train

    def command(self, samples: int) -> str:
        return f"vae-explorer paper figure3 --n-train {self.n_train} --samples {samples}"

    def describe(self) -> dict:
        """The keys of its curve in ``--json``."""
        return {"dataset": "mnist", "nz": NZ, "n_train": self.n_train, "algorithm": self.algorithm}


def panels(n_train: tuple[int, ...] | None = None, algorithms: tuple[str, ...] = ALGORITHMS) -> list[Panel]:
    """Figure 3's curves: each training-set size by each algorithm.

    Raises:
        ExplorerError: a training-set size outside 100 .. 50,000 (MNIST's classic training split).
    """
    sizes = n_train or TRAIN_SIZES
    if min(sizes) < 100 or max(sizes) > 50_000:
        raise ExplorerError(f"training-set sizes must lie in 100 .. 50,000, not {sizes}")
    return [Panel(n, a) for n in sizes for a in algorithms]
