"""The paper's Figure 2: AEVB against the wake-sleep algorithm, on the paper's settings.

Kingma & Welling 2013, Section 5 and Appendix C, as followed here (the text quoted where a choice
was made):
- "We trained generative models of images from the MNIST and Frey Face datasets": a Bernoulli
  MLP decoder for MNIST, a Gaussian one with its means through a sigmoid for Frey Face (App. C).
- "the encoder and decoder have an equal number of hidden units": one hidden layer of tanh units
  (App. C: "an MLP with a single hidden layer"), 500 for MNIST, "200 in case of Frey Face
  (to prevent overfitting, since it is a considerably smaller dataset)".
- "Parameters are initialized by random sampling from N(0, 0.01)" (``explorer.model.init_paper``).
- "a MAP estimate ... the prior p(theta) = N(0, I)": a weight decay of 1/N per datapoint (the
  minibatch estimate N/M sum_i L_i + log p(theta), divided by N), 2e-5 for MNIST's 50,000.
- "Stepsizes were adapted with Adagrad ... the Adagrad global stepsize parameters were chosen from
  {0.01, 0.02, 0.1} based on performance on the training set in the first few iterations":
  each is tried for ``TRIAL_SAMPLES`` samples and the best training bound continues.
- "Minibatches of size M = 100 were used, with L = 1 samples per datapoint."
- Figure 2's axes: the estimated lower bound per datapoint (training and test set) against the
  number of training samples evaluated, 10^5 to 10^8, for Nz = 3, 5, 10, 20, 200 (MNIST) and
  2, 5, 10, 20 (Frey Face). Wake-sleep uses "the same encoder (also called recognition model)".

Each (panel, algorithm) is a run folder under ``runs/paper/figure2/``; every stage (the trial of
each step size, the choice, the long run) is a file, so a stopped reproduction continues where
it stopped when the same command runs again.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from explorer.config import ModelConfig, TrainConfig
from explorer.errors import ExplorerError
from explorer.paper.curves import read_bound_points

DATASETS = {"mnist": (3, 5, 10, 20, 200), "frey-face": (2, 5, 10, 20)}  # the paper's Nz per panel
HIDDEN = {"mnist": 500, "frey-face": 200}  # tanh units of the one hidden layer
# Training images: MNIST's classic 50,000 (the first 50,000 of the 60,000; the other 10,000 were
# its validation set), Frey Face's 1,765 (our split holds the last 200 frames out as a test set).
TRAIN_SIZE = {"mnist": 50_000, "frey-face": 1_765}
ALGORITHMS = ("aevb", "wake-sleep")
STEP_SIZES = (0.01, 0.02, 0.1)  # Adagrad's global step sizes the paper chose from
TRIAL_SAMPLES = 50_000  # "the first few iterations": 500 minibatches of 100
BATCH = 100  # M
POINTS_PER_DECADE = 8
BOUND_TRAIN_IMAGES = 10_000  # the fixed training subset each point scores (all of Frey Face's)
PAPER_MINUTES_PER_MILLION = (20, 40)  # the paper's cost: "20-40 minutes per million training samples"


@dataclass(frozen=True)
class Panel:
    """One curve pair of the figure: a dataset and a latent size, trained by one algorithm."""

    dataset: str
    nz: int
    algorithm: str

    @property
    def name(self) -> str:
        return f"{self.dataset}-nz{self.nz}-{self.algorithm}"

    @classmethod
    def from_name(cls, name: str) -> Panel:
        """The panel of a run name ("mnist-nz3-aevb"); ValueError for any other name."""
        dataset, rest = name.split("-nz", 1)
        nz, algorithm = rest.split("-", 1)
        return cls(dataset, int(nz), algorithm)

    def configs(self, lr: float, samples: int, device: str = "auto") -> tuple[ModelConfig, TrainConfig]:
        return configs(self, lr, samples, device)

    def command(self, samples: int) -> str:
        return f"vae-explorer paper figure2 --dataset {self.dataset} --nz {self.nz} --samples {samples}"

    def describe(self) -> dict:
        """The keys of its curve in ``--json``."""
        return {"dataset": self.dataset, "nz": self.nz, "algorithm": self.algorithm}


def configs(panel: Panel, lr: float, samples: int, device: str = "auto") -> tuple[ModelConfig, TrainConfig]:
    """The paper's model and training settings for ``panel`` (see the module's docstring), to
    ``samples`` training samples (whole epochs: the last one may pass it)."""
    n_train = TRAIN_SIZE[panel.dataset]
    likelihood = "bernoulli" if panel.dataset == "mnist" else "gaussian"
    model = ModelConfig(latent_dim=panel.nz, hidden=(HIDDEN[panel.dataset],), activation="tanh",
                        likelihood=likelihood)  # fmt: skip
    train = TrainConfig(
        dataset=panel.dataset, limit=n_train, epochs=max(1, math.ceil(samples / n_train)), batch_size=BATCH,
        samples=1,
        algorithm=panel.algorithm, init="paper", optimizer="adagrad", lr=lr, weight_decay=1.0 / n_train,
        bound_points=POINTS_PER_DECADE, bound_train_images=BOUND_TRAIN_IMAGES, log_every=500,
        device=device, seed=0,
    )  # fmt: skip
    return model, train


def panels(dataset: str, nz: tuple[int, ...] | None = None) -> list[Panel]:
    """The panels of ``dataset`` (its paper latent sizes, or ``nz``), AEVB then wake-sleep each.

    Raises:
        ExplorerError: an unknown dataset or a latent size below 2.
    """
    if dataset not in DATASETS:
        raise ExplorerError(f"Figure 2 has panels for {' and '.join(DATASETS)}, not {dataset!r}")
    sizes = nz or DATASETS[dataset]
    if min(sizes) < 2:
        raise ExplorerError(f"latent sizes must be at least 2, not {min(sizes)}")
    return [Panel(dataset, n, a) for n in sizes for a in ALGORITHMS]


class Reproduction:
    """Runs Figure 2's panels in turn under ``root``, resumably (see the module's docstring).

    ``say`` receives one line per stage (progress for a person); ``progress`` is passed to the
    trainer (None: a bar on a terminal).
    """

    def __init__(self, root: Path, samples: int, device: str = "auto", say: Callable[[str], None] = print,
                 progress: bool | None = None, panel_type: type = Panel) -> None:  # fmt: skip
        self.root, self.samples, self.device = Path(root), samples, device
        self.say, self.progress = say, progress
        self.panel_type = panel_type  # Panel (Figure 2) or explorer.paper.figure3.Panel
        self.trial_samples = getattr(panel_type, "TRIAL_SAMPLES", TRIAL_SAMPLES)

    def folder(self, panel: Panel, lr: float) -> Path:
        return self.root / f"{panel.name}-lr{lr:g}"

    def choice_file(self, panel: Panel) -> Path:
        return self.root / f"{panel.name}.json"

    def run(self, panel: Panel) -> bool:
        """Train ``panel`` to the target samples; False when stopped (Ctrl-C) before the end."""
        lr = self.step_size(panel)
        if lr is None:
            return False
        folder = self.folder(panel, lr)
        points = read_bound_points(folder / "metrics.jsonl")
        if points and points[-1][0] >= self.samples:
            self.say(f"{panel.name}: done ({points[-1][0]:,} samples)")
            return True
        self.say(f"{panel.name}: training to {self.samples:,} samples (Adagrad step size {lr:g})")
        return self._train(panel, lr, self.samples)

    def step_size(self, panel: Panel) -> float | None:
        """The paper's choice of Adagrad's step size for ``panel``: each of ``STEP_SIZES`` trained
        for ``self.trial_samples``, the best mean ELBO on the training subset at the last point wins
        (stored in the panel's JSON file). None when stopped during a trial."""
        chosen = self.choice_file(panel)
        if chosen.exists():
            return float(json.loads(chosen.read_text())["lr"])
        scores = {}
        for lr in STEP_SIZES:
            self.say(f"{panel.name}: trying Adagrad step size {lr:g} for {self.trial_samples:,} samples")
            try:
                if not self._train(panel, lr, self.trial_samples):
                    return None
            except ExplorerError as exc:  # a step size that diverges loses the trial
                why = str(exc).split(". Lower the learning rate")[0]  # (advice for a run of one's own)
                self.say(f"{panel.name}: step size {lr:g} failed, and loses the trial: {why}")
                scores[lr] = -math.inf
                continue
            points = [p for p in read_bound_points(self.folder(panel, lr) / "metrics.jsonl")
                      if p[0] <= self.trial_samples]  # fmt: skip
            scores[lr] = points[-1][1] if points and math.isfinite(points[-1][1]) else -math.inf
        best = max(scores, key=scores.get)
        if scores[best] == -math.inf:
            raise ExplorerError(f"{panel.name}: every Adagrad step size failed; see the runs in {self.root}")
        by_lr = {str(k): v for k, v in scores.items()}
        chosen.write_text(
            json.dumps({"lr": best, "trial_samples": self.trial_samples, "train_bound_by_lr": by_lr})
        )
        self.say(f"{panel.name}: step size {best:g} (training bounds {_scores(scores)})")
        return best

    def _train(self, panel: Panel, lr: float, samples: int) -> bool:
        """Train (or resume) the run of ``panel`` at step size ``lr`` to ``samples``; False when
        stopped by a signal."""
        from explorer.train.run import resume_run, start_run
        from explorer.train.runfolder import RunFolder

        folder = self.folder(panel, lr)
        model_config, cfg = panel.configs(lr, samples, self.device)
        run = RunFolder(folder)
        if run.has_checkpoint():
            saved = json.loads((folder / "config.json").read_text())
            if saved.get("epoch", 0) >= cfg.epochs:
                return True
            resume_run(folder, epochs=cfg.epochs, progress=self.progress, command=panel.command(samples))
        else:
            folder.parent.mkdir(parents=True, exist_ok=True)
            start_run(folder, model_config, cfg, progress=self.progress, command=panel.command(samples))
        return (run.read_status() or {}).get("state") == "finished"

    def chosen(self) -> list[tuple[Panel, float, Path]]:
        """(panel, step size, run folder) of the chosen step size's run of each panel under
        ``root`` whose trials have ended, by panel name."""
        out = []
        for chosen in sorted(self.root.glob("*.json")):
            try:
                lr = float(json.loads(chosen.read_text())["lr"])
                panel = self.panel_type.from_name(chosen.stem)
            except (ValueError, KeyError, OSError):
                continue
            out.append((panel, lr, self.folder(panel, lr)))
        return out

    def curves(self) -> list[dict]:
        """Every curve under ``root`` that has points: the chosen step size's run of each panel."""
        out = []
        for panel, lr, folder in self.chosen():
            points = read_bound_points(folder / "metrics.jsonl")
            if points:
                seconds, bounds = _seconds(folder)
                out.append({**curve(panel, points, lr, str(folder), seconds), "bound_seconds": bounds})
        return out


def curve(panel, points: list[list[float]], lr: float, source: str, seconds: float | None) -> dict:
    """One curve as ``--json`` prints it (see ``explorer.paper.curves``)."""
    return {**panel.describe(), "points": points, "lr": lr, "source": source, "seconds": seconds}


def _seconds(folder: Path) -> tuple[float | None, float | None]:
    """(the run's wall time at its last metrics line, the part of it its bound points took), in
    seconds; None for what its metrics do not say."""
    try:
        rows = [json.loads(line) for line in folder.joinpath("metrics.jsonl").read_text().splitlines()]
        bounds = sum(float(r.get("bound_seconds", 0.0)) for r in rows if r.get("type") == "bound")
        return float(rows[-1]["seconds"]), bounds
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None, None


def _scores(scores: dict[float, float]) -> str:
    return ", ".join(f"{lr:g}: {s:.1f}" for lr, s in scores.items())
