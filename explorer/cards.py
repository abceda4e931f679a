"""Model cards: ``card.json``, the one owner of that file, and the figures it carries.

A shipped folder (``pretrained/NAME``) holds ``model.safetensors`` (weights only, no optimiser
state), ``config.json`` and ``card.json``: dataset and its checksums, the commands that trained
it, seed, epochs, hardware, wall time, the ``vae-explorer evaluate`` figures and, once measured,
the FID (``sample_quality``). ``Card`` reads it (a partial or hand-written card reads as far as
it goes), writes it atomically (as checkpoints are written) and updates it; ``export`` makes one
for a run, ``evaluate_checkpoint`` measures the figures it carries.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from explorer.checkpoints import (
    atomic_write,
    dataset_of,
    load_checkpoint,
    read_config,
    resolve,
    save_checkpoint,
)
from explorer.config import TrainConfig
from explorer.data.cache import cache_dir, dataset_files, eval_images
from explorer.data.record import RECORD_FILE, check_trained_data
from explorer.data.specs import binarized as dataset_binarizes
from explorer.data.specs import spec
from explorer.devices import pick_device
from explorer.errors import CheckpointError, ExplorerError
from explorer.evaluate import Evaluation, evaluate
from explorer.model import VAE
from explorer.version import __version__

CARD_FILE = "card.json"
SAMPLE_QUALITY = "sample_quality"  # where a card keeps its FID figures (``evaluate --fid --save-card``)
EVIDENCE = "evidence"  # where a card keeps the identity's figures (``bench/theory.py --card``)


def _number(value) -> float | None:
    """A figure from a card: an int or float, else None (a card may be partial or hand-written)."""
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class Measured:
    """A card's ``evaluation``: what ``vae-explorer evaluate`` measured (nats per image)."""

    n: int | None = None  # test images measured
    k: int | None = None  # importance samples of L_K
    elbo: float | None = None  # None for an autoencoder
    nll: float | None = None
    recon: float | None = None  # the reconstruction term log p(x|z)
    binarized: bool | None = None  # None: not recorded
    likelihood: str = "bernoulli"

    @classmethod
    def of(cls, fields: dict) -> Measured:
        n, k = _number(fields.get("n")), _number(fields.get("k"))
        binarized = fields.get("binarized")
        return cls(
            n=int(n) if n is not None else None,
            k=int(k) if k is not None else None,
            elbo=_number(fields.get("elbo")),
            nll=_number(fields.get("nll")),
            recon=_number(fields.get("recon")),
            binarized=binarized if isinstance(binarized, bool) else None,
            likelihood=str(fields.get("likelihood") or "bernoulli"),
        )


@dataclass(frozen=True)
class SampleQuality:
    """A card's FID: the model's samples against the test set, and the test set against the
    training set (the floor), in the features named."""

    value: float
    features: str  # "classifier" or "inception"
    feature_source: str
    generated: str  # the compared images, in words
    real: str  # the reference images, in words
    floor: float | None  # test against train

    @classmethod
    def of(cls, fields: dict) -> SampleQuality | None:
        measured, floor = fields.get("model") or {}, fields.get("test_vs_train") or {}
        if _number(measured.get("value")) is None:
            return None
        return cls(
            value=measured["value"],
            features=str(measured.get("features", "?")),
            feature_source=str(measured.get("feature_source", "?")),
            generated=str(measured.get("generated", "samples")),
            real=str(measured.get("real", "the test set")),
            floor=_number(floor.get("value")),
        )


@dataclass(frozen=True)
class EvidenceFigures:
    """A card's ``evidence``: on the first ``n`` test images (of a 2-D latent model), how far
    L_5000 falls below log p(x) by quadrature, and KL(q(z|x) || p(z|x)), the ELBO's gap (nats,
    means over the images; ``explorer.theory.evidence``)."""

    n: int
    mean_gap: float  # mean |log p(x) - L_5000|
    median_gap: float | None
    mean_kl: float  # mean KL(q(z|x) || p(z|x))
    residual: float | None  # mean |log p(x) - (ELBO + KL)|: the two quadratures' agreement

    @classmethod
    def of(cls, fields: dict) -> EvidenceFigures | None:
        n = _number(fields.get("n"))
        gap, kl = (
            _number(fields.get("mean_abs_log_px_minus_l5000")),
            _number(fields.get("mean_kl_to_posterior")),
        )
        if n is None or gap is None or kl is None:
            return None
        median, residual = (
            fields.get("median_abs_log_px_minus_l5000"),
            fields.get("mean_abs_identity_residual"),
        )
        return cls(int(n), gap, _number(median), kl, _number(residual))


@dataclass(frozen=True)
class Card:
    """One ``card.json``: its fields as written (``fields``, kept whole when it is rewritten) and
    the parts the app and the CLI use, read once here."""

    fields: dict = field(default_factory=dict)

    @classmethod
    def read(cls, folder: str | os.PathLike) -> Card:
        """The card of a checkpoint folder or shipped name.

        Raises:
            CheckpointError: no card.json there (export the run first), or not a JSON object.
        """
        path = resolve(folder) / CARD_FILE
        try:
            fields = json.loads(path.read_text())
        except FileNotFoundError:
            raise CheckpointError(
                f"{path.parent} has no {CARD_FILE}: export the run first (vae-explorer export)"
            ) from None
        except (OSError, ValueError) as exc:
            raise CheckpointError(f"{path} cannot be read: {exc}") from None
        if not isinstance(fields, dict):
            raise CheckpointError(f"{path} is not a card (a JSON object): export the run again")
        return cls(fields)

    @classmethod
    def find(cls, folder: str | os.PathLike) -> Card | None:
        """The card of ``folder``, or None when it has none or it cannot be read (a run)."""
        try:
            return cls.read(folder)
        except ExplorerError:
            return None

    def write(self, folder: str | os.PathLike) -> Path:
        """Write card.json into ``folder`` atomically (temporary file, fsync, rename); its path."""
        path = Path(folder) / CARD_FILE
        # a figure that is not finite (the standard error of one test image) is written as null:
        # json.dumps wrote a bare NaN, which strict JSON readers refuse
        atomic_write(path, (json.dumps(_finite(self.fields), indent=2, allow_nan=False) + "\n").encode())
        return path

    def updated(self, **fields) -> Card:
        """This card with ``fields`` set (the others kept)."""
        return replace(self, fields={**self.fields, **fields})

    @property
    def commands(self) -> list[str]:
        commands = self.fields.get("commands")
        return [str(c) for c in commands] if isinstance(commands, list) else []

    @property
    def epochs(self) -> int | None:
        epochs = _number(self.fields.get("epochs"))
        return int(epochs) if epochs is not None else None

    @property
    def machine(self) -> str | None:
        """The machine part of the hardware line (before the first ';'); the details of threads
        per leg and the like stay in the card."""
        return str(self.fields.get("hardware") or "").split(";")[0].strip() or None

    @property
    def evaluation(self) -> Measured | None:
        fields = self.fields.get("evaluation")
        return Measured.of(fields) if isinstance(fields, dict) else None

    @property
    def target_nll(self) -> float | None:
        """The NLL the model was trained to reach (nats), where the card names one."""
        return _number((self.fields.get("target") or {}).get("nll"))

    @property
    def sample_quality(self) -> SampleQuality | None:
        fields = self.fields.get(SAMPLE_QUALITY)
        return SampleQuality.of(fields) if isinstance(fields, dict) else None

    @property
    def evidence(self) -> EvidenceFigures | None:
        fields = self.fields.get(EVIDENCE)
        return EvidenceFigures.of(fields) if isinstance(fields, dict) else None


def save_sample_quality(checkpoint: str | os.PathLike, figures: dict, command: str) -> Path:
    """Write FID ``figures`` (``model`` and ``test_vs_train``) and the command that measured them
    under ``sample_quality`` in the checkpoint's card; the card's path.

    Raises:
        CheckpointError: the checkpoint has no card.json (export the run first).
    """
    card = Card.read(checkpoint)
    return card.updated(**{SAMPLE_QUALITY: {**figures, "command": command}}).write(resolve(checkpoint))


def save_evidence(checkpoint: str | os.PathLike, figures: dict, command: str) -> Path:
    """Write the identity's ``figures`` over test images (``EvidenceFigures``' fields and more)
    and the command that measured them under ``evidence`` in the checkpoint's card; its path.

    Raises:
        CheckpointError: the checkpoint has no card.json (export the run first).
    """
    card = Card.read(checkpoint)
    return card.updated(**{EVIDENCE: {**figures, "command": command}}).write(resolve(checkpoint))


def hardware() -> str:
    """A short description of this machine: CPU model and threads, or the GPU."""
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    threads = torch.get_num_threads()
    return f"{cpu}, {os.cpu_count()} cores, {threads} torch thread{'s' if threads != 1 else ''}"


def export(
    run: str | os.PathLike,
    dest: str | os.PathLike,
    measure: Callable[[Path], Evaluation],
    eval_command: str,
    commands: list[str],
    epochs: list[dict],
    half: bool = False,
) -> Path:
    """Copy the run's model into ``dest`` with config.json and a card; return ``dest``.

    ``measure``: measures the card's figures on the checkpoint folder as written (so that a
    ``half`` copy, its weights stored as float16, is measured as shipped); ``commands``: how the
    run was made (its commands.txt); ``epochs``: its epoch lines of metrics.jsonl (the last gives
    the training time and the final test figure). The record of the data the run was trained
    on (``explorer.data.record``) goes with it.

    Raises:
        DataChanged: the run's dataset changed since it was trained (nothing is written).
    """
    run, dest = Path(run), Path(dest)
    model = load_checkpoint(run)
    config = read_config(run)
    check_trained_data(resolve(run), dataset_of(config))  # (a run's name: its folder under runs/)
    train_cfg = config.get("train") or {}
    fresh = not dest.exists()
    save_checkpoint(dest, model, epoch=config["epoch"], step=config["step"], train_config=train_cfg,
                    best_test_elbo=config.get("best_test_elbo"), half=half)  # fmt: skip
    try:
        if (resolve(run) / RECORD_FILE).is_file():
            shutil.copyfile(resolve(run) / RECORD_FILE, dest / RECORD_FILE)
        evaluation = measure(dest)
    except BaseException:  # stopped or failed: no model without its card is left behind
        if fresh:
            shutil.rmtree(dest, ignore_errors=True)
        raise
    dataset = dataset_of(config)
    card = {
        "name": dest.name,
        "dataset": dataset,
        "dataset_md5": {k: v for k, v in dataset_files(dataset).items() if v},
        **_generated_checksums(dataset),
        "commands": commands,
        "seed": train_cfg.get("seed"),
        "epochs": config["epoch"],
        "steps": config["step"],
        "hardware": hardware(),
        "train_seconds": round(epochs[-1]["seconds"], 1) if epochs else None,
        **_final_test_figure(epochs),
        "evaluation": {**evaluation.to_dict(), "command": eval_command},
        **({"weights": "float16"} if half else {}),
        "library_version": __version__,
        "exported": time.strftime("%Y-%m-%d"),
    }
    Card(card).write(dest)
    return dest


def _final_test_figure(epochs: list[dict]) -> dict:
    """The last epoch's test figure under its own name: the ELBO of a VAE, or the reconstruction
    term of an autoencoder (which has no ELBO)."""
    key = "test_elbo" if not epochs or "test_elbo" in epochs[-1] else "test_recon"
    return {f"final_{key}_during_training": epochs[-1][key] if epochs else None}


def _generated_checksums(dataset: str) -> dict:
    """For a dataset stored as arrays (generated here or imported from a folder): the SHA-256 of
    its files as its dataset.json records them; nothing for the others."""
    from explorer.data.arrays import record

    if spec(dataset).form != "arrays":
        return {}
    return {"dataset_sha256": record(cache_dir(dataset)).get("files", {})}


@dataclass
class Scored:
    """A checkpoint measured on its dataset (``evaluate_checkpoint``)."""

    model: VAE
    dataset: str
    binarized: bool  # the images were binarised once with a fixed seed (the likelihood protocol)
    evaluation: Evaluation


def evaluate_checkpoint(
    checkpoint: str | os.PathLike,
    k: int,
    limit: int | None = None,
    split: str = "test",
    device: str = "auto",
    progress: Callable[[int, int], object] | None = None,
) -> Scored:
    """Load a checkpoint and measure it on ``split`` of the dataset it was trained on, scored as
    the run trained (its own ``--binarize``): the ELBO and, for ``k`` > 0, L_K (``evaluate``).
    ``progress`` is called with (images an L_K block finished, images in all).

    Raises:
        ExplorerError: ``k`` < 0, a missing or damaged checkpoint or dataset, a diverged model.
        DataChanged: the dataset is not the one the model was trained on any more.
    """
    if k < 0:
        raise ExplorerError(f"--k must be >= 0 (0: ELBO only), got {k}")
    model = load_checkpoint(checkpoint, pick_device(device))
    config = read_config(checkpoint)
    dataset = dataset_of(config)
    check_trained_data(resolve(checkpoint), dataset)
    binarized = run_binarizes(config, dataset, model.config.likelihood)
    x, _ = eval_images(dataset, split, binarized, limit)
    tick = None if progress is None else (lambda done: progress(done, len(x)))
    return Scored(model, dataset, binarized, evaluate(model, x, k=k, progress=tick))


def run_binarizes(config: dict, dataset: str, likelihood: str) -> bool:
    """Whether the run binarised its images (its own --binarize), so that evaluation scores the
    test set it trained against; the dataset's rule for a checkpoint without a training record."""
    try:
        return TrainConfig(**config["train"]).binarized(likelihood)
    except (KeyError, TypeError, ValueError):
        return dataset_binarizes(dataset, likelihood)


def _finite(value):
    """``value`` (a card's fields) with every float that is not finite made None (null in JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
