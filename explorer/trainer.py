"""The AEVB training loop (Kingma & Welling 2013, Algorithm 1), read top to bottom in ``Trainer``:
epochs of minibatch steps, a metrics line every ``log_every`` steps, the test figures, a latent
snapshot and a checkpoint after every epoch.

Each step: a random minibatch of M datapoints, L samples of eps per datapoint, the gradient of the
minibatch SGVB estimate, one optimiser update (``explorer.steps``). The dataset is moved to the
device once; the permutation and the dynamic binarisation happen on the device; losses are
accumulated there and read once per logging step, so nothing waits on the host inside an epoch.
A stop (SIGINT, SIGTERM) saves a checkpoint at that step, with the random state and the position
in the epoch, so that a resumed run continues exactly.
"""

from __future__ import annotations

import math
import signal
import time
from dataclasses import asdict, dataclass

import torch
from tqdm import tqdm

from explorer.checkpoints import load_checkpoint, load_training_state, read_config, save_checkpoint
from explorer.config import ModelConfig, TrainConfig
from explorer.data import load_dataset
from explorer.devices import pick_device
from explorer.distributed import World
from explorer.errors import ExplorerError
from explorer.evaluate import DIVERGED_NATS_PER_DIM, bound_per_image, elbo_per_image, eval_images
from explorer.latent import fit_projection
from explorer.model import VAE
from explorer.runfolder import SNAPSHOT_SIZE, RunFolder
from explorer.steps import graph_possible, make_optimizer, make_step_runner


class StopRequest:
    """Turns SIGINT/SIGTERM into a flag checked between steps, so a stop saves a checkpoint."""

    def __init__(self) -> None:
        self.requested = False
        self._old = {}

    def __enter__(self) -> StopRequest:
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


@dataclass
class Data:
    """A run's images on its device: the training set (grey levels in [0, 1]) and the test set
    (binarised once with a fixed seed where the model is binary)."""

    train_x: torch.Tensor  # (N, C, H, W)
    test_x: torch.Tensor  # (T, C, H, W)
    snapshot_labels: torch.Tensor  # (SNAPSHOT_SIZE,) labels of the test images in the snapshots
    binarized: bool  # dynamic binarisation of every minibatch
    batch: int  # M (the whole set if it is smaller)

    @classmethod
    def load(cls, cfg: TrainConfig, model_config: ModelConfig, device: torch.device) -> Data:
        images = load_dataset(cfg.dataset, "train").images[: cfg.limit]
        if tuple(images.shape[1:]) != model_config.image_shape:
            model_config.image_shape = tuple(images.shape[1:])
        binarized = cfg.binarized(model_config.likelihood)
        test_x, labels = eval_images(cfg.dataset, "test", binarized, cfg.test_limit, cfg.eval_seed)
        train_x = (images.float() / 255.0).to(device)  # moved once
        batch = min(cfg.batch_size, len(train_x))
        return cls(train_x, test_x.to(device), labels[:SNAPSHOT_SIZE], binarized, batch)

    @property
    def steps_per_epoch(self) -> int:
        return len(self.train_x) // self.batch


@dataclass
class Position:
    """Where a run stands, saved with each checkpoint so that a resumed run continues exactly."""

    epoch: int = 0  # epochs completed
    step: int = 0  # steps taken in all
    pos: int = 0  # steps taken in the current epoch
    perm: torch.Tensor | None = None  # the current epoch's permutation
    best: float | None = None  # best test ELBO so far
    seconds: float = 0.0  # training time of earlier sessions of this run

    def rng(self, device: torch.device) -> dict[str, torch.Tensor]:
        """The random state and the position in the epoch, as tensors for the checkpoint."""
        rng = {"cpu": torch.get_rng_state(), "pos": torch.tensor([self.pos])}
        if device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(device)
        if self.perm is not None:
            rng["perm"] = self.perm.cpu()
        return rng

    def restore(self, rng: dict[str, torch.Tensor], device: torch.device) -> None:
        torch.set_rng_state(rng["cpu"])
        if "cuda" in rng and device.type == "cuda":
            torch.cuda.set_rng_state(rng["cuda"], device)
        self.pos = int(rng["pos"][0])
        self.perm = rng["perm"].to(device) if "perm" in rng else None


class Trainer:
    """Trains one run: ``run()`` to the configured epochs (see the module's docstring)."""

    def __init__(
        self,
        run: RunFolder,
        model_config: ModelConfig,
        cfg: TrainConfig,
        world: World,
        progress: bool | None = None,
        resume: bool = False,
        init: VAE | None = None,
    ) -> None:
        self.run_folder, self.cfg, self.world = run, cfg, world
        self.progress = progress if world.main else False
        self.device = pick_device(cfg.device)
        if self.device.type == "cuda" and world.distributed:
            self.device = torch.device("cuda", world.local_rank)
        torch.manual_seed(cfg.seed)
        self.data = Data.load(cfg, model_config, self.device)
        self.at = Position()
        capturable = graph_possible(self.device, world.distributed, cfg.optimizer)
        if resume:
            self.model = load_checkpoint(run.path, self.device).train()
            self.optimizer = make_optimizer(self.model, cfg, capturable)
            saved = read_config(run.path)
            self.at.epoch, self.at.step, self.at.best = (
                saved["epoch"],
                saved["step"],
                saved.get("best_test_elbo"),
            )
            self.at.restore(load_training_state(run.path, self.optimizer, self.at.step), self.device)
            for group in self.optimizer.param_groups:  # the saved state carries the old rate
                group["lr"] = cfg.lr
            if world.main:
                rows = run.truncate_metrics(self.at.step)
                self.at.seconds = rows[-1]["seconds"] if rows else 0.0
        else:
            self.model = VAE(model_config).to(self.device)
            if init is not None:  # the weights of --init-from
                self.model.load_state_dict(init.state_dict())
            self.optimizer = make_optimizer(self.model, cfg, capturable)
        self.model.train()
        self.step_runner = make_step_runner(
            self.model, cfg, self.optimizer, self.device, world.distributed, on_path=self._path_settled
        )
        self.local = self.data.batch // world.size  # each process's share of every minibatch
        self.stop_now = False

    # -- the loop -------------------------------------------------------------------------------

    def run(self) -> bool:
        """Train to the configured number of epochs; True when stopped early by a signal."""
        if self.at.epoch >= self.cfg.epochs:
            return False
        if not self.run_folder.has_snapshot_labels():
            self.snapshot()  # epoch 0 of a new run: the latent space before any training
        with StopRequest() as stop:
            start = time.perf_counter()
            while self.at.epoch < self.cfg.epochs and not self.stop_now:
                self.epoch(stop, start)
        return self.stop_now

    def epoch(self, stop: StopRequest, start: float) -> None:
        """The rest of the current epoch: steps, a metrics line every log_every steps, then the
        epoch's test figures, snapshot and checkpoint (or, stopped mid-epoch, a checkpoint)."""
        at, cfg, number = self.at, self.cfg, self.at.epoch + 1
        if at.perm is None or at.pos == 0:
            at.perm, at.pos = torch.randperm(len(self.data.train_x), device=self.device), 0
        epoch_sum, log_sum = torch.zeros(3, device=self.device), torch.zeros(3, device=self.device)
        log_steps, done, epoch_start = 0, 0, time.perf_counter()
        last_log = epoch_start
        bar = tqdm(
            total=self.data.steps_per_epoch,
            initial=at.pos,
            desc=f"epoch {number}/{cfg.epochs}",
            disable=not self.progress if self.progress is not None else None,
            leave=False,
        )
        while at.pos < self.data.steps_per_epoch and not self.stop_now:
            stats = self.train_step(at.perm[at.pos * self.data.batch : (at.pos + 1) * self.data.batch])
            log_sum += stats
            epoch_sum += stats
            at.pos, at.step, log_steps, done = at.pos + 1, at.step + 1, log_steps + 1, done + 1
            bar.update(1)
            # One process alone checks its stop request every step; several agree on it at the log
            # steps (every process must take part in the same collectives).
            log_now = at.step % cfg.log_every == 0
            if not self.world.distributed:
                self.stop_now = stop.requested
                log_now = log_now or self.stop_now
            if log_now:
                last_log = self.log_step(number, log_sum, log_steps, stop, start, last_log, bar)
                log_steps = 0
        bar.close()
        if self.world.distributed and not self.stop_now:
            self.stop_now = self.world.any(stop.requested, self.device)
        if at.pos < self.data.steps_per_epoch:  # stopped mid-epoch: checkpoint the position
            self.save()
            return
        self.end_epoch(number, epoch_sum / max(done, 1), done, epoch_start, start)

    def train_step(self, idx: torch.Tensor) -> torch.Tensor:
        """One update on the minibatch of training images ``idx`` (M,); returns its (loss, recon,
        kl) on the device."""
        x = self.data.train_x[idx]  # (M, C, H, W) grey levels in [0, 1]
        if self.data.binarized:
            x = torch.bernoulli(x)  # dynamic binarisation: a fresh sample every minibatch
        # The noise of the whole minibatch, drawn in the same order by every process (same seed):
        # each takes its slice, so N processes compute what one would, up to float rounding.
        eps = torch.randn((self.cfg.samples, len(idx), self.model.config.latent_dim), device=self.device)
        if self.world.distributed:
            lo = self.world.rank * self.local
            x, eps = x[lo : lo + self.local], eps[:, lo : lo + self.local]
        return self.step_runner(x, eps)

    def log_step(self, epoch, log_sum, log_steps, stop, start, last_log, bar) -> float:
        """Write a step line of the mean (loss, recon, kl) since the last one; returns its time."""
        if self.world.distributed:
            summed = self.world.sum(torch.cat([log_sum, log_sum.new_tensor([float(stop.requested)])]))
            log_sum.copy_(summed[:3] / self.world.size)
            self.stop_now = bool(summed[3] > 0)
        loss, recon, kl = (log_sum / log_steps).tolist()  # the one sync per log step
        if not math.isfinite(loss):
            bar.close()
            raise ExplorerError(
                f"training diverged at step {self.at.step} (loss {loss}); {self.kept()}. {self.advice()}"
            )
        now = time.perf_counter()
        self.write_metrics(
            {
                "type": "step",
                "epoch": epoch,
                "step": self.at.step,
                "train_loss": loss,
                "recon": recon,
                "kl": kl,
                "seconds": self.at.seconds + now - start,
                "samples_per_s": log_steps * self.data.batch / max(now - last_log, 1e-9),
            }
        )
        bar.set_postfix(loss=f"{loss:.2f}")
        log_sum.zero_()
        return now

    def end_epoch(
        self, epoch: int, means: torch.Tensor, steps: int, epoch_start: float, start: float
    ) -> None:
        """The epoch's metrics line, snapshot and checkpoint, unless the run has diverged."""
        self.at.pos, self.at.epoch = 0, epoch
        loss, recon, kl = self.world.sum(means).div_(self.world.size).tolist()
        epoch_seconds = time.perf_counter() - epoch_start
        test = self.test()
        floor = -DIVERGED_NATS_PER_DIM * self.model.config.pixels
        broken = {k: v for k, v in {"train_loss": loss, **test}.items() if not math.isfinite(v)}
        if not broken and test["test_elbo"] < floor:
            broken = {"test_elbo": test["test_elbo"]}
        if broken:  # a divergence: this epoch is not kept
            figures = ", ".join(f"{k.replace('_', ' ')} {v:.4g}" for k, v in broken.items())
            raise ExplorerError(
                f"training diverged in epoch {epoch}: the {figures} (not finite, or below {floor:,.0f} "
                f"nats, what no model that learnt anything scores); {self.kept()}. {self.advice()}"
            )
        self.at.best = test["test_elbo"] if self.at.best is None else max(self.at.best, test["test_elbo"])
        # The line goes first: if the process dies before the checkpoint is saved, --resume drops
        # every line past the previous checkpoint's step and runs this epoch again.
        self.write_metrics(
            {
                "type": "epoch",
                "epoch": epoch,
                "step": self.at.step,
                "train_loss": loss,
                "recon": recon,
                "kl": kl,
                **test,
                "seconds": self.at.seconds + time.perf_counter() - start,
                "epoch_seconds": epoch_seconds,
                "samples_per_s": steps * self.data.batch / max(epoch_seconds, 1e-9),
            }
        )
        self.snapshot()
        self.save()
        if self.progress is not False:
            bound = f"  test L_{self.cfg.samples} {test['test_bound']:.2f}" if "test_bound" in test else ""
            tqdm.write(
                f"epoch {epoch}/{self.cfg.epochs}  train loss {loss:.2f}  test ELBO "
                f"{test['test_elbo']:.2f} nats{bound}  ({epoch_seconds:.1f} s)"
            )

    # -- what an epoch leaves behind ------------------------------------------------------------------

    @torch.no_grad()
    def test(self) -> dict[str, float]:
        """Test ELBO, recon and KL means, and with the iwae objective the bound it trains on
        (L_K, K = samples). The noise comes from its own generator (seeded by run and epoch), so it
        neither moves the training's random stream nor depends on how the test set is split: each
        process scores its share and the sums are added."""
        world, cfg, test_x = self.world, self.cfg, self.data.test_x
        n, latent = len(test_x), self.model.config.latent_dim
        gen = torch.Generator().manual_seed(cfg.seed * 100_003 + self.at.epoch)
        eps = torch.randn(n, latent, generator=gen)
        lo, hi = world.rank * n // world.size, (world.rank + 1) * n // world.size
        self.model.eval()
        recon, kl = elbo_per_image(self.model, test_x[lo:hi], eps=eps[lo:hi])
        parts = [(recon - kl).double().sum(), recon.double().sum(), kl.double().sum()]
        names = ["test_elbo", "test_recon", "test_kl"]
        if cfg.objective == "iwae":
            draws = torch.randn(cfg.samples, n, latent, generator=gen)[:, lo:hi]
            parts.append(bound_per_image(self.model, test_x[lo:hi], draws).double().sum())
            names.append("test_bound")
        self.model.train()
        return dict(zip(names, (world.sum(torch.stack(parts).to(self.device)) / n).tolist()))

    @torch.no_grad()
    def snapshot(self) -> None:
        """Save where the first SNAPSHOT_SIZE test images sit in latent space after this epoch,
        for the Train page's animation: the means themselves for a 2-D latent, else their top two
        principal components. Never fails the run: a snapshot is a picture, not a result."""
        if not self.world.main:
            return
        self.model.eval()
        try:
            mu = self.model.encode(self.data.test_x[:SNAPSHOT_SIZE])[0].float().cpu()
            labels = None if self.run_folder.has_snapshot_labels() else self.data.snapshot_labels
            self.run_folder.write_latent_snapshot(self.at.epoch, fit_projection(mu)(mu), labels)
        except (OSError, RuntimeError) as exc:
            tqdm.write(f"note: latent snapshot of epoch {self.at.epoch} not saved: {exc}")
        finally:
            self.model.train()

    def save(self) -> None:
        """Checkpoint the model, the optimiser and the position (rank 0 writes; all agree it did)."""
        if not all(bool(torch.isfinite(p).all()) for p in self.model.parameters()):
            raise ExplorerError(  # never write a diverged model over a good checkpoint
                f"training diverged by step {self.at.step}: the weights are no longer finite; "
                f"{self.kept()}. {self.advice()}"
            )
        failed = None
        if self.world.main:
            try:
                save_checkpoint(
                    self.run_folder.path,
                    self.model,
                    epoch=self.at.epoch,
                    step=self.at.step,
                    train_config=asdict(self.cfg),
                    best_test_elbo=self.at.best,
                    optimizer=self.optimizer,
                    rng=self.at.rng(self.device),
                )
            except OSError as exc:  # disk full, permissions, a vanished folder
                failed = ExplorerError(
                    f"could not save the checkpoint of step {self.at.step} in {self.run_folder.path}: "
                    f"{exc.strerror or exc}; {self.kept('intact')}. Fix the cause, then continue "
                    "with --resume."
                )
        if self.world.any(failed is not None, self.device):
            raise failed or ExplorerError("rank 0 could not save the checkpoint; see its message")

    def write_metrics(self, row: dict) -> None:
        if self.world.main:
            self.run_folder.append_metrics([row])

    # -- what it says -----------------------------------------------------------------------------

    def describe(self) -> str:
        """How this run trains: processes, and on CUDA whether the step is a graph."""
        where = self.world.describe() if self.world.distributed else f"single process on {self.device}"
        return f"{where}, {self.step_runner.path}" if self.device.type == "cuda" else where

    def report(self, state: str) -> None:
        """Write status.json (rank 0 only): the state, where training stands, how it trains."""
        if self.world.main:
            self.run_folder.write_status(
                state,
                epochs=self.cfg.epochs,
                steps_per_epoch=self.data.steps_per_epoch,
                step=self.at.step,
                path=self.describe(),
            )

    def _path_settled(self, path: str) -> None:
        if self.progress is not False and self.world.main:
            tqdm.write(f"training step: {path}")
        self.report("running")  # now saying whether the graph was kept

    def advice(self) -> str:
        """What to change after a divergence, for this run's settings."""
        lower = f"Lower --lr (it is {self.cfg.lr:g})"
        return lower + (", or use --estimator analytic." if self.cfg.estimator == "mc" else ".")

    def kept(self, word: str = "kept") -> str:
        """Which checkpoint is on disk, in words, for the messages of a failed run."""
        try:
            saved = read_config(self.run_folder.path)
        except ExplorerError:
            return f"no checkpoint had been saved in {self.run_folder.path} yet"
        where = f"epoch {saved.get('epoch')}, step {saved.get('step')}"
        return f"the last good checkpoint in {self.run_folder.path} ({where}) is {word}"
