"""The AEVB trainer (Kingma & Welling 2013, Algorithm 1).

Each step: a random minibatch of M datapoints, L samples of eps per datapoint, the gradient of the
minibatch SGVB estimate, one optimiser update. The dataset is moved to the device once; the
permutation and the dynamic binarisation happen on the device; losses are accumulated on the
device and read once per logging step, so nothing waits on the host inside an epoch.

A run folder holds ``metrics.jsonl`` (one JSON line per logging step and per epoch) and the
checkpoint (see ``checkpoints``), saved after every epoch and when the run is stopped (SIGINT or
SIGTERM): ``--resume`` continues exactly where it stopped.
"""

from __future__ import annotations

import json
import math
import os
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from explorer.checkpoints import (
    MODEL_FILE,
    dataset_of,
    load_checkpoint,
    load_training_state,
    read_config,
    resolve,
    save_checkpoint,
)
from explorer.data import DATASETS, load_dataset
from explorer.distributed import World, join
from explorer.errors import ExplorerError
from explorer.evaluate import DIVERGED_NATS_PER_DIM, bound_per_image, elbo_per_image, eval_images
from explorer.graphs import WARMUP_STEPS, capture, eager_reason, quiet_uncaptured_steps, side_stream
from explorer.latent import fit_projection
from explorer.model import VAE, ModelConfig
from explorer.objectives import ESTIMATORS, OBJECTIVES, elbo_terms, iwae_bound
from explorer.runs import (
    COMMANDS_FILE,
    LATENTS_DIR,
    METRICS_FILE,
    SNAPSHOT_SIZE,
    append_metrics,
    truncate_metrics,
    write_latent_snapshot,
    write_status,
)

OPTIMIZERS = ("adam", "adagrad", "rmsprop", "sgd")


@dataclass
class TrainConfig:
    dataset: str = "mnist"  # mnist, fashion-mnist or frey-face
    epochs: int = 50  # passes over the (limited) training set
    batch_size: int = 100  # M, datapoints per minibatch (paper: 100)
    samples: int = 1  # L, samples of eps per datapoint (paper: 1); K of the "iwae" objective
    objective: str = "elbo"  # "elbo" (the SGVB bound) or "iwae" (importance-weighted L_K, K = samples)
    estimator: str = "analytic"  # "analytic" (B: analytic KL) or "mc" (A: generic Monte Carlo)
    beta: float = 1.0  # weight on the KL term of the loss (1 = the ELBO)
    optimizer: str = "adam"  # adam, adagrad, rmsprop or sgd
    lr: float = 1e-3  # learning rate per step (not scaled by M)
    weight_decay: float = 0.0  # L2 on all weights: the paper's prior on theta
    binarize: str = "auto"  # "dynamic" (resample each minibatch), "none" (grey), "auto"
    limit: int | None = None  # train on the first N images only
    test_limit: int | None = None  # evaluate on the first N test images only
    seed: int = 0  # seeds init, permutations, eps and binarisation
    device: str = "auto"  # "auto": cuda, then mps, then cpu
    log_every: int = 100  # steps between metric lines
    eval_seed: int = 0  # seed of the fixed binarisation of the test set

    def __post_init__(self) -> None:
        checks = [
            (self.dataset in DATASETS, f"dataset must be one of {DATASETS}"),
            (self.epochs >= 1, "epochs must be >= 1"),
            (self.batch_size >= 1, "batch size must be >= 1"),
            (self.samples >= 1, "samples (L) must be >= 1"),
            (self.estimator in ESTIMATORS, f"estimator must be one of {ESTIMATORS}"),
            (self.beta >= 0, "beta must be >= 0"),
            (self.objective in OBJECTIVES, f"objective must be one of {OBJECTIVES}"),
            (
                self.objective == "elbo" or self.beta == 1.0,
                "the iwae objective has no KL weight: use beta 1 with it",
            ),
            (self.optimizer in OPTIMIZERS, f"optimizer must be one of {OPTIMIZERS}"),
            (self.lr > 0, "learning rate must be > 0"),
            (self.weight_decay >= 0, "weight decay must be >= 0"),
            (self.binarize in ("auto", "dynamic", "none"), "binarize: auto, dynamic or none"),
            (self.limit is None or self.limit >= 1, "limit must be >= 1"),
            (self.log_every >= 1, "log_every must be >= 1"),
            (_known_device(self.device), f"device must be one of: {DEVICES}"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    def binarized(self, likelihood: str) -> bool:
        if self.binarize == "auto":
            return likelihood == "bernoulli" and self.dataset != "frey-face"
        return self.binarize == "dynamic"


DEVICES = "auto, cpu, cuda, cuda:N (a GPU by number) or mps"


def check_device_name(name: str) -> str:
    """``name`` if it names a device VAE Explorer can train on, else ValueError saying what is
    accepted (the CLI's --device and the API share it)."""
    kind, _, index = str(name).partition(":")
    if kind in ("auto", "cpu", "mps") and not index:
        return name
    if kind == "cuda" and (not index or index.isdigit()):
        return name
    raise ValueError(f"unknown device {name!r}: use {DEVICES}")


def _known_device(name: str) -> bool:
    try:
        check_device_name(name)
    except ValueError:
        return False
    return True


def pick_device(name: str = "auto") -> torch.device:
    """ "auto": cuda, then mps, then cpu; otherwise the named device, checked to exist.

    Raises:
        ExplorerError: an unknown name, or a device this machine does not have.
    """
    try:
        check_device_name(name)
    except ValueError as exc:
        raise ExplorerError(str(exc)) from None
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ExplorerError(f"--device {name} was asked for but no CUDA GPU is available; use cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ExplorerError(
            f"--device {name}: this machine has {torch.cuda.device_count()} CUDA GPU(s), numbered from 0"
        )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ExplorerError("--device mps was asked for but MPS is not available; use cpu")
    return device


def available_memory(device: torch.device) -> int | None:
    """Bytes free for tensors on ``device``: the GPU's free memory, or the machine's available
    memory (Linux's MemAvailable); None where it cannot be told."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def step_memory(model_config: ModelConfig, cfg: TrainConfig) -> int:
    """Rough bytes one training step needs: the activations of L (or K) decoder passes over a
    minibatch of M images and their gradients, float32 (a third again for the backward pass's
    temporaries). An estimate to refuse what cannot fit, not an exact figure."""
    out = model_config.pixels * (1 if model_config.likelihood == "bernoulli" else 2)
    per_draw = sum(model_config.hidden) + model_config.latent_dim + 3 * out  # decoder layers, logits, loss
    return 4 * 3 * cfg.samples * cfg.batch_size * per_draw


def check_step_fits(model_config: ModelConfig, cfg: TrainConfig, device: torch.device) -> None:
    """Raise ExplorerError, before anything is written, when one step would need more than 60%
    of the memory free on ``device``; say how many samples would fit."""
    free = available_memory(device)
    need = step_memory(model_config, cfg)
    if free is None or need <= 0.6 * free:
        return
    most = max(1, int(0.6 * free * cfg.samples / need))
    raise ExplorerError(
        f"--samples {cfg.samples} with --batch-size {cfg.batch_size} needs about {need / 2**30:.1f} GB for "
        f"one step (the decoder's activations for every draw of every image), and {device} has "
        f"{free / 2**30:.1f} GB free: use --samples {most} or fewer, or a smaller --batch-size."
    )


def make_optimizer(model: VAE, cfg: TrainConfig, capturable: bool = False) -> torch.optim.Optimizer:
    """The configured optimiser; ``capturable`` (Adam, RMSprop on CUDA) keeps its step count on the
    device so that its update can be recorded in a CUDA graph."""
    cls = {
        "adam": torch.optim.Adam,
        "adagrad": torch.optim.Adagrad,
        "rmsprop": torch.optim.RMSprop,
        "sgd": torch.optim.SGD,
    }[cfg.optimizer]
    kwargs = {"lr": cfg.lr, "weight_decay": cfg.weight_decay}
    if capturable:
        kwargs["capturable"] = True
    if cfg.optimizer in ("adam", "adagrad", "sgd"):
        # One fused kernel for the whole update where the device has one (Adam on CPU: 23% off
        # a 784-400-20 step); the same mathematics as the per-parameter loop.
        try:
            return cls(model.parameters(), fused=True, **kwargs)
        except (RuntimeError, ValueError, TypeError):
            pass
    return cls(model.parameters(), **kwargs)


class _StopRequest:
    """Turns SIGINT/SIGTERM into a flag checked between steps, so a stop saves a checkpoint."""

    def __init__(self) -> None:
        self.requested = False
        self._old = {}

    def __enter__(self) -> _StopRequest:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: cannot install handlers
                pass
        return self

    def _handle(self, signum, frame) -> None:
        self.requested = True

    def __exit__(self, *exc) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)


def train(
    out: str | os.PathLike,
    model_config: ModelConfig | None = None,
    config: TrainConfig | None = None,
    resume: bool = False,
    progress: bool | None = None,
    command: str | None = None,
    lr: float | None = None,
    objective: tuple[str | None, int | None] | None = None,
    init_from: str | os.PathLike | None = None,
) -> Path:
    """Train a VAE into the run folder ``out``; return the folder.

    With ``resume=True`` the model and training configs come from ``out``'s checkpoint; a
    ``config`` given alongside may only change ``epochs`` (to train for longer), ``lr`` sets a
    new learning rate from here on (a lower one to finish a run, say; the optimiser's moments are
    kept), and ``objective`` = (name, samples) switches the loss from here on (an ELBO-trained model
    finished on the IWAE bound, say; None in either place keeps the saved setting). ``command``
    (the CLI's command line) is appended to ``out/commands.txt`` for the model card.

    ``init_from`` (a checkpoint folder or shipped name, new runs only) starts the model from that
    checkpoint's weights, with its architecture, instead of a random initialisation: fine-tuning
    a shipped model, say, with a fresh optimiser.
    """
    out = Path(out)
    world = join(_saved_device(out) if resume else _device_type((config or TrainConfig()).device))
    try:
        # Gradients on whatever the caller's mode (a notebook cell under no_grad, an app thread
        # that turned them off for inference): without them the first backward() would fail.
        with torch.enable_grad():
            changes = {"lr": lr, "objective": objective, "init_from": init_from}
            return _train(out, model_config, config, resume, progress, command, world, **changes)
    finally:
        world.close()


def _device_type(name: str) -> str:
    """The device type ``name`` resolves to, to pick the process group's backend; "cpu" when it
    cannot be had (the trainer then reports that, as a failed run)."""
    try:
        return pick_device(name).type
    except ExplorerError:
        return "cpu"


def lineage(init_from: str | os.PathLike) -> list[str]:
    """How the checkpoint a run starts from was made, as comment lines for the new run's
    commands.txt (and so its model card): the commands in its card.json (a shipped model) or
    commands.txt (a run)."""
    folder = resolve(init_from)
    try:
        commands = json.loads((folder / "card.json").read_text())["commands"]
    except (OSError, ValueError, KeyError, TypeError):
        try:
            commands = (folder / COMMANDS_FILE).read_text().splitlines()
        except OSError:
            commands = []
    made = [c if c.startswith("#") else f"# {c}" for c in commands if c.strip()]
    return [f"# started from the weights of {init_from}" + (", made by:" if made else ""), *made]


def _saved_device(out: Path) -> str:
    """The device type a run to be resumed asks for."""
    try:
        return _device_type(read_config(out)["train"].get("device", "auto"))
    except (ExplorerError, KeyError):
        return "cpu"


def _train(
    out, model_config, config, resume, progress, command, world, lr=None, objective=None, init_from=None
) -> Path:
    init = None
    if init_from is not None:
        if resume:
            raise ExplorerError("--init-from starts a new run; a resumed run has its own weights")
        init = load_checkpoint(init_from)
        trained_on = dataset_of(read_config(init_from))
        dataset = (config or TrainConfig()).dataset
        if trained_on != dataset:
            raise ExplorerError(
                f"{init_from} was trained on {trained_on}, not {dataset}: fine-tune it with "
                f"--dataset {trained_on}"
            )
        model_config = init.config
    if resume:
        if not (out / MODEL_FILE).is_file():
            raise ExplorerError(f"cannot resume: {out} holds no checkpoint; train without --resume")
        saved = read_config(out)
        cfg = TrainConfig(**saved["train"])
        if config is not None:
            cfg.epochs = config.epochs
        if lr is not None:
            if not lr > 0:
                raise ExplorerError(f"the learning rate must be > 0, not {lr}")
            cfg.lr = lr  # saved with the next checkpoint: a later resume keeps it
        name, samples = objective or (None, None)
        if name is not None or samples is not None:
            change = {"objective": name or cfg.objective, "samples": samples or cfg.samples}
            try:  # checked as a whole: the iwae objective wants beta 1
                cfg = TrainConfig(**{**asdict(cfg), **change})
            except ValueError as exc:
                raise ExplorerError(f"cannot switch the objective of {out}: {exc}") from None
        model_config = ModelConfig.from_dict(saved["model"])
    else:
        if (out / MODEL_FILE).exists() or (out / METRICS_FILE).exists():
            raise ExplorerError(
                f"{out} already holds a run; pass --resume to continue it or choose another --out"
            )
        cfg = config or TrainConfig()
        model_config = model_config or ModelConfig()
    # A device this machine lacks, or a step too big for it, is refused before anything is written.
    check_step_fits(model_config, cfg, pick_device(cfg.device))
    if world.distributed and cfg.batch_size % world.size:
        raise ExplorerError(
            f"the batch of {cfg.batch_size} does not split evenly over {world.size} processes; "
            f"choose a --batch-size that is a multiple of {world.size}"
        )
    world.barrier()  # every process has checked the folder before rank 0 writes into it
    status = write_status if world.main else (lambda *a, **k: None)
    if world.main:
        out.mkdir(parents=True, exist_ok=True)
        if command:  # the record of how this run was made, for its model card
            with open(out / COMMANDS_FILE, "a") as f:
                if init_from is not None:
                    f.writelines(line + "\n" for line in lineage(init_from))
                f.write(command + "\n")
    status(out, "starting", epochs=cfg.epochs)
    try:
        trainer = _Trainer(out, model_config, cfg, resume, progress, world, init)
        trainer.report("running")
        stopped = trainer.run()
    except ExplorerError as exc:
        status(out, "failed", message=str(exc))
        raise
    except BaseException as exc:
        status(out, "failed", message=f"{type(exc).__name__}: {exc}")
        raise
    trainer.report("stopped" if stopped else "finished")
    return out


class _Step(nn.Module):
    """One minibatch's loss and its (loss, recon, kl) means: the module that DistributedDataParallel
    wraps when several processes train, called directly when one does."""

    def __init__(self, model: VAE, cfg: TrainConfig) -> None:
        super().__init__()
        self.model, self.cfg = model, cfg

    def forward(self, x: torch.Tensor, eps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.cfg.objective == "iwae":  # the loss is -L_K; recon and KL are the ELBO's parts
            bound, terms = iwae_bound(self.model, x, self.cfg.samples, eps)
            loss = -bound.mean()
        else:
            terms = elbo_terms(self.model, x, self.cfg.estimator, self.cfg.samples, eps)
            loss = terms.loss(self.cfg.beta)
        return loss, torch.stack([loss.detach(), terms.recon.detach().mean(), terms.kl.detach().mean()])


class _Trainer:
    def __init__(
        self,
        out: Path,
        model_config: ModelConfig,
        cfg: TrainConfig,
        resume: bool,
        progress: bool | None,
        world: World | None = None,
        init: VAE | None = None,
    ) -> None:
        self.out, self.cfg = out, cfg
        self.world = world or World()
        self.progress = progress if self.world.main else False
        self.device = pick_device(cfg.device)
        if self.device.type == "cuda" and self.world.distributed:
            self.device = torch.device("cuda", self.world.local_rank)
        torch.manual_seed(cfg.seed)
        data = load_dataset(cfg.dataset, "train")
        images = data.images[: cfg.limit]
        if tuple(images.shape[1:]) != model_config.image_shape:
            model_config.image_shape = tuple(images.shape[1:])
        self.binarized = cfg.binarized(model_config.likelihood)
        self.train_x = (images.float() / 255.0).to(self.device)  # (N, C, H, W), moved once
        self.test_x, test_labels = eval_images(
            cfg.dataset, "test", self.binarized, cfg.test_limit, cfg.eval_seed
        )
        self.test_x = self.test_x.to(self.device)
        self.snapshot_labels = test_labels[:SNAPSHOT_SIZE]
        self.batch = min(cfg.batch_size, len(self.train_x))
        self.steps_per_epoch = len(self.train_x) // self.batch
        self.epoch, self.step, self.pos, self.best = 0, 0, 0, None
        self.perm = None
        self.seconds = 0.0  # training time of earlier sessions of this run
        # The step becomes one CUDA graph where it can (see explorer.graphs), after a few eager ones.
        self.graph_reason = eager_reason(self.device, self.world.distributed, cfg.optimizer)
        self.graphed, self.warm = None, 0
        self.step_path = "eager step" + (f" ({self.graph_reason})" if self.graph_reason else "")
        capturable = self.graph_reason is None
        if resume:
            self.model = load_checkpoint(out, self.device).train()
            self.optimizer = make_optimizer(self.model, cfg, capturable)
            saved = read_config(out)
            self.epoch, self.step = saved["epoch"], saved["step"]
            self.best = saved.get("best_test_elbo")
            rng = load_training_state(out, self.optimizer, self.step)
            for group in self.optimizer.param_groups:  # the saved state carries the old rate
                group["lr"] = cfg.lr
            self._restore_rng(rng)
            if self.world.main:
                rows = truncate_metrics(out / METRICS_FILE, self.step)
                self.seconds = rows[-1]["seconds"] if rows else 0.0
        else:
            self.model = VAE(model_config).to(self.device)
            if init is not None:  # the weights of --init-from
                self.model.load_state_dict(init.state_dict())
            self.optimizer = make_optimizer(self.model, cfg, capturable)
        self.model.train()
        self.stop_now = False
        # Each process takes a slice of every global minibatch of cfg.batch_size images.
        self.local = self.batch // self.world.size
        self.latent = model_config.latent_dim
        self.step_fn: nn.Module = _Step(self.model, cfg)
        if self.world.distributed:
            self.step_fn = DistributedDataParallel(
                self.step_fn, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
            if self.world.main and self.progress is not False:
                tqdm.write(
                    f"training on {self.world.describe()}: each minibatch of {self.batch} is "
                    f"{self.world.size} x {self.local} images"
                )

    def describe(self) -> str:
        """How this run trains: processes, and on CUDA whether the step is a graph."""
        if self.world.distributed:
            where = self.world.describe()
        else:
            where = f"single process on {self.device}"
        return f"{where}, {self.step_path}" if self.device.type == "cuda" else where

    def report(self, state: str) -> None:
        """Write ``status.json`` (rank 0 only): the state, where training stands, how it trains."""
        if self.world.main:
            write_status(
                self.out,
                state,
                epochs=self.cfg.epochs,
                steps_per_epoch=self.steps_per_epoch,
                step=self.step,
                path=self.describe(),
            )

    # -- random state, saved with each checkpoint so that a resumed run continues exactly
    def _rng(self) -> dict[str, torch.Tensor]:
        rng = {"cpu": torch.get_rng_state(), "pos": torch.tensor([self.pos])}
        if self.device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(self.device)
        if self.perm is not None:
            rng["perm"] = self.perm.cpu()
        return rng

    def _restore_rng(self, rng: dict[str, torch.Tensor]) -> None:
        torch.set_rng_state(rng["cpu"])
        if "cuda" in rng and self.device.type == "cuda":
            torch.cuda.set_rng_state(rng["cuda"], self.device)
        self.pos = int(rng["pos"][0])
        self.perm = rng["perm"].to(self.device) if "perm" in rng else None

    def _advice(self) -> str:
        """What to change after a divergence, for this run's settings."""
        lower = f"Lower --lr (it is {self.cfg.lr:g})"
        return lower + (", or use --estimator analytic." if self.cfg.estimator == "mc" else ".")

    def _kept(self) -> str:
        """Which checkpoint is on disk, in words, for the messages of a failed run."""
        try:
            saved = read_config(self.out)
            where = f"epoch {saved['epoch']}, step {saved['step']}"
            return f"the last good checkpoint in {self.out} ({where}) is kept"
        except (ExplorerError, KeyError):
            return f"no checkpoint had been saved in {self.out} yet"

    def _save(self) -> None:
        if not all(bool(torch.isfinite(p).all()) for p in self.model.parameters()):
            raise ExplorerError(  # never write a diverged model over a good checkpoint
                f"training diverged by step {self.step}: the weights are no longer finite; "
                f"{self._kept()}. {self._advice()}"
            )
        failed = None
        if self.world.main:
            try:
                self._save_main()
            except ExplorerError as exc:
                failed = exc
        if self.world.any(failed is not None, self.device):
            raise failed or ExplorerError("rank 0 could not save the checkpoint; see its message")

    def _save_main(self) -> None:
        try:
            save_checkpoint(
                self.out,
                self.model,
                epoch=self.epoch,
                step=self.step,
                train_config=asdict(self.cfg),
                best_test_elbo=self.best,
                optimizer=self.optimizer,
                rng=self._rng(),
            )
        except OSError as exc:  # disk full, permissions, a vanished folder
            try:
                previous = read_config(self.out)
                kept = (
                    f"the previous checkpoint (epoch {previous['epoch']}, step {previous['step']}) is intact"
                )
            except ExplorerError:
                kept = "no earlier checkpoint exists"
            raise ExplorerError(
                f"could not save the checkpoint of step {self.step} in {self.out}: "
                f"{exc.strerror or exc}; {kept}. Fix the cause, then continue with --resume."
            ) from None

    def _train_step(self, idx: torch.Tensor) -> torch.Tensor:
        """One update on the minibatch ``idx``; returns its (loss, recon, kl) on the device."""
        x, eps = self._minibatch(idx)
        if self.graphed is not None:
            return self.graphed(x, eps)
        if self.graph_reason is None:
            return self._towards_graph(x, eps)
        return self._eager_step(x, eps)

    def _minibatch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.train_x[idx]  # (M, C, H, W) grey levels in [0, 1]
        if self.binarized:
            x = torch.bernoulli(x)  # dynamic binarisation: a fresh sample every minibatch
        # The noise of the whole minibatch, drawn in the same order by every process (same seed):
        # each takes its slice, so N processes compute what one would, up to float rounding.
        eps = torch.randn((self.cfg.samples, len(idx), self.latent), device=self.device)
        if self.world.distributed:
            lo = self.world.rank * self.local
            x, eps = x[lo : lo + self.local], eps[:, lo : lo + self.local]
        return x, eps

    def _eager_step(self, x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        loss, stats = self.step_fn(x, eps)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()  # with several processes, DDP averages the gradients here
        self.optimizer.step()
        return stats

    def _towards_graph(self, x: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """The first steps of a session on CUDA: a few eager ones on a side stream (PyTorch's
        warm-up before capture), then the capture, checked against the eager step."""
        if self.warm < WARMUP_STEPS:
            self.warm += 1
            stream = side_stream(self.device)
            with torch.cuda.stream(stream), quiet_uncaptured_steps():
                stats = self._eager_step(x, eps)
            torch.cuda.current_stream(self.device).wait_stream(stream)
            return stats
        params = list(self.model.parameters())
        self.graphed, stats, self.step_path = capture(
            self.step_fn, params, self.optimizer, self._eager_step, x, eps
        )
        if self.graphed is None:
            self.graph_reason = self.step_path  # stays eager for the rest of the session
        if self.progress is not False and self.world.main:
            tqdm.write(f"training step: {self.step_path}")
        self.report("running")  # now saying whether the graph was kept
        return stats

    @torch.no_grad()
    def _test(self) -> dict[str, float]:
        """Test ELBO, recon and KL means, and with the iwae objective the bound it trains on
        (L_K, K = samples). The noise comes from its own generator (seeded by run and epoch), so it
        neither moves the training's random stream nor depends on how the test set is split: each
        process scores its share and the sums are added."""
        n, world, cfg = len(self.test_x), self.world, self.cfg
        gen = torch.Generator().manual_seed(cfg.seed * 100_003 + self.epoch)
        eps = torch.randn(n, self.latent, generator=gen)
        lo, hi = world.rank * n // world.size, (world.rank + 1) * n // world.size
        self.model.eval()
        recon, kl = elbo_per_image(self.model, self.test_x[lo:hi], eps=eps[lo:hi])
        parts = [(recon - kl).double().sum(), recon.double().sum(), kl.double().sum()]
        names = ["test_elbo", "test_recon", "test_kl"]
        if cfg.objective == "iwae":
            draws = torch.randn(cfg.samples, n, self.latent, generator=gen)[:, lo:hi]
            parts.append(bound_per_image(self.model, self.test_x[lo:hi], draws).double().sum())
            names.append("test_bound")
        self.model.train()
        sums = world.sum(torch.stack(parts).to(self.device)) / n
        return dict(zip(names, sums.tolist()))

    @torch.no_grad()
    def _snapshot(self) -> None:
        """Save where the first SNAPSHOT_SIZE test images sit in latent space after this epoch,
        for the Train page's animation: the means themselves for a 2-D latent, else their top two
        principal components. Never fails the run: a snapshot is a picture, not a result."""
        if not self.world.main:
            return
        self.model.eval()
        try:
            mu = self.model.encode(self.test_x[:SNAPSHOT_SIZE])[0].float().cpu()
            points = fit_projection(mu)(mu)
            labels_saved = (self.out / LATENTS_DIR / "labels.npy").exists()
            write_latent_snapshot(
                self.out, self.epoch, points, None if labels_saved else self.snapshot_labels
            )
        except (OSError, RuntimeError) as exc:
            tqdm.write(f"note: latent snapshot of epoch {self.epoch} not saved: {exc}")
        finally:
            self.model.train()

    def run(self) -> bool:
        """Train to the configured number of epochs; True when stopped early by a signal."""
        cfg, metrics = self.cfg, self.out / METRICS_FILE
        if self.epoch >= cfg.epochs:
            return False
        if self.world.main and not (self.out / LATENTS_DIR / "labels.npy").exists():
            self._snapshot()  # epoch 0 of a new run: the latent space before any training
        with _StopRequest() as stop:
            start = time.perf_counter()
            while self.epoch < cfg.epochs and not self.stop_now:
                self._run_epoch(stop, start, metrics)
        return self.stop_now

    def _run_epoch(self, stop: _StopRequest, start: float, metrics: Path) -> None:
        cfg, epoch = self.cfg, self.epoch + 1
        if self.perm is None or self.pos == 0:
            self.perm = torch.randperm(len(self.train_x), device=self.device)
            self.pos = 0
        epoch_acc = torch.zeros(3, device=self.device)
        log_acc = torch.zeros(3, device=self.device)
        log_steps, epoch_steps_done = 0, 0
        epoch_start = last_log = time.perf_counter()
        bar = tqdm(
            total=self.steps_per_epoch,
            initial=self.pos,
            desc=f"epoch {epoch}/{cfg.epochs}",
            disable=not self.progress if self.progress is not None else None,
            leave=False,
        )
        while self.pos < self.steps_per_epoch:
            idx = self.perm[self.pos * self.batch : (self.pos + 1) * self.batch]
            stats = self._train_step(idx)
            log_acc += stats
            epoch_acc += stats
            self.pos += 1
            self.step += 1
            log_steps += 1
            epoch_steps_done += 1
            bar.update(1)
            # One process alone checks its stop request every step; several agree on it at the log
            # steps (every process must take part in the same collectives).
            log_now = self.step % cfg.log_every == 0
            if not self.world.distributed:
                self.stop_now = stop.requested
                log_now = log_now or self.stop_now
            if log_now:
                if self.world.distributed:
                    summed = self.world.sum(torch.cat([log_acc, log_acc.new_tensor([float(stop.requested)])]))
                    log_acc.copy_(summed[:3] / self.world.size)
                    self.stop_now = bool(summed[3] > 0)
                loss, recon, kl = (log_acc / log_steps).tolist()  # the one sync per log step
                if not math.isfinite(loss):
                    bar.close()
                    raise ExplorerError(
                        f"training diverged at step {self.step} (loss {loss}); the last good "
                        f"checkpoint in {self.out} is kept. {self._advice()}"
                    )
                now = time.perf_counter()
                append_metrics(
                    metrics if self.world.main else None,
                    [
                        {
                            "type": "step",
                            "epoch": epoch,
                            "step": self.step,
                            "train_loss": loss,
                            "recon": recon,
                            "kl": kl,
                            "seconds": self.seconds + now - start,
                            "samples_per_s": log_steps * self.batch / max(now - last_log, 1e-9),
                        }
                    ],
                )
                bar.set_postfix(loss=f"{loss:.2f}")
                log_acc.zero_()
                log_steps, last_log = 0, now
            if self.stop_now:
                break
        bar.close()
        if self.world.distributed and not self.stop_now:
            self.stop_now = self.world.any(stop.requested, self.device)
        if self.pos < self.steps_per_epoch:  # stopped mid-epoch: checkpoint the position
            self._save()
            return
        self.pos = 0
        self.epoch = epoch
        self.world.sum(epoch_acc).div_(self.world.size)
        loss, recon, kl = (epoch_acc / max(epoch_steps_done, 1)).tolist()
        if not math.isfinite(loss):
            raise ExplorerError(
                f"training diverged in epoch {epoch} (loss {loss}); the last good checkpoint in "
                f"{self.out} is kept. {self._advice()}"
            )
        epoch_seconds = time.perf_counter() - epoch_start
        test = self._test()
        broken = {k: v for k, v in test.items() if not math.isfinite(v)}
        floor = -DIVERGED_NATS_PER_DIM * self.model.config.pixels
        if not broken and test["test_elbo"] < floor:
            broken = {"test_elbo": test["test_elbo"]}
        if broken:  # a divergence like a non-finite training loss: this epoch is not kept
            figures = ", ".join(f"{k.replace('_', ' ')} {v:.4g}" for k, v in broken.items())
            raise ExplorerError(
                f"training diverged in epoch {epoch}: the {figures} (not finite, or below "
                f"{floor:,.0f} nats, what no model that learnt anything scores); {self._kept()}. "
                f"{self._advice()}"
            )
        test_elbo = test["test_elbo"]
        self.best = test_elbo if self.best is None else max(self.best, test_elbo)
        now = time.perf_counter()
        row = {
            "type": "epoch",
            "epoch": epoch,
            "step": self.step,
            "train_loss": loss,
            "recon": recon,
            "kl": kl,
            **test,
            "seconds": self.seconds + now - start,
            "epoch_seconds": epoch_seconds,
            "samples_per_s": epoch_steps_done * self.batch / max(epoch_seconds, 1e-9),
        }
        # The line goes first: if the process dies before the checkpoint is saved, --resume drops
        # every line past the previous checkpoint's step and runs this epoch again.
        append_metrics(metrics if self.world.main else None, [row])
        self._snapshot()
        self._save()
        if self.progress is not False:
            tqdm.write(
                f"epoch {epoch}/{cfg.epochs}  train loss {loss:.2f}  "
                f"test ELBO {test_elbo:.2f} nats"
                + (f"  test L_{cfg.samples} {test['test_bound']:.2f}" if "test_bound" in test else "")
                + f"  ({epoch_seconds:.1f} s)"
            )
