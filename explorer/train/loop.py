"""The AEVB training loop (Kingma & Welling 2013, Algorithm 1), read top to bottom in ``Trainer``:
epochs of minibatch steps, a metrics line every ``log_every`` steps, the test figures, a latent
snapshot and a checkpoint after every epoch.

Each step: a random minibatch of M datapoints, L samples of eps per datapoint, the gradient of the
minibatch SGVB estimate, one optimiser update (``explorer.train.steps``). The dataset is moved to the
device once; the permutation and the dynamic binarisation happen on the device; losses are
accumulated there and read once per logging step, so nothing waits on the host inside an epoch.
A stop (SIGINT, SIGTERM) saves a checkpoint at that step, with the random state and the position
in the epoch, so that a resumed run continues exactly.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
from tqdm import tqdm

from explorer.checkpoints import load_checkpoint, load_training_state, read_config
from explorer.config import ModelConfig, TrainConfig
from explorer.data.cache import binarize_fixed, eval_images, load_dataset
from explorer.devices import flush_denormals, pick_device
from explorer.errors import ExplorerError
from explorer.evaluate import bits_per_dim, score_key, test_figures, why_diverged
from explorer.model import VAE, init_paper
from explorer.train.bounds import BoundCurve
from explorer.train.distributed import World
from explorer.train.mcem import ChainStore, mcem_step
from explorer.train.recorder import Position, Recorder
from explorer.train.runfolder import SNAPSHOT_SIZE, RunFolder
from explorer.train.steps import graph_possible, make_optimizer, make_step_runner, step_noise
from explorer.train.stopping import StopRequest

# Denormal floats as zero from the moment the trainer is imported (explorer.train.run imports it):
# before the first parallel operation starts PyTorch's thread pool, whose threads inherit the mode
# (set later, it reaches the calling thread only). See explorer.devices.flush_denormals for why.
flush_denormals()


@dataclass
class RunImages:
    """A run's images on its device: the training set (grey levels in [0, 1]) and the test set
    (binarised once with a fixed seed where the model is binary)."""

    train_x: torch.Tensor  # (N, C, H, W)
    test_x: torch.Tensor  # (T, C, H, W)
    snapshot_labels: torch.Tensor  # (SNAPSHOT_SIZE,) labels of the test images in the snapshots
    binarized: bool  # dynamic binarisation of every minibatch
    batch: int  # M (the whole set if it is smaller)
    bound_train_x: torch.Tensor | None = None  # (N', C, H, W) the fixed training subset of the bound curve

    @classmethod
    def load(cls, cfg: TrainConfig, model_config: ModelConfig, device: torch.device) -> RunImages:
        images = load_dataset(cfg.dataset, "train").images[: cfg.limit]
        if tuple(images.shape[1:]) != model_config.image_shape:
            model_config.image_shape = tuple(images.shape[1:])
        binarized = cfg.binarized(model_config.likelihood)
        test_x, labels = eval_images(cfg.dataset, "test", binarized, cfg.test_limit, cfg.eval_seed)
        train_x = (images.float() / 255.0).to(device)  # moved once
        batch = min(cfg.batch_size, len(train_x))
        subset = None
        if cfg.bound_points:  # the training subset of the bound curve, binarised once (its own seed)
            first = images[: cfg.bound_train_images]
            subset = binarize_fixed(first, cfg.eval_seed + 1) if binarized else first.float() / 255.0
            subset = subset.to(device)
        return cls(train_x, test_x.to(device), labels[:SNAPSHOT_SIZE], binarized, batch, subset)

    @property
    def steps_per_epoch(self) -> int:
        return len(self.train_x) // self.batch


RATE_STEPS = 10  # a step line gives the losses and samples per second of at least this many steps


class Meter:
    """Sums of the steps' (loss, recon, kl), kept on the device (no sync per step): since the last
    metrics line and over the epoch, with their step counts and times (seconds)."""

    def __init__(self, device: torch.device) -> None:
        self.log, self.epoch = torch.zeros(3, device=device), torch.zeros(3, device=device)
        self.log_steps = self.epoch_steps = 0
        self.started = self.logged = time.perf_counter()

    def add(self, stats: torch.Tensor) -> None:
        self.log += stats
        self.epoch += stats
        self.log_steps, self.epoch_steps = self.log_steps + 1, self.epoch_steps + 1

    def take_log(self) -> tuple[torch.Tensor, int, float]:
        """(sums, steps, seconds) since the last call; starts the next count."""
        now = time.perf_counter()
        out = (self.log.clone(), self.log_steps, now - self.logged)
        self.log.zero_()
        self.log_steps, self.logged = 0, now
        return out

    def take_epoch(self) -> tuple[torch.Tensor, int, float]:
        """(sums, steps, seconds) of the epoch so far."""
        return self.epoch, self.epoch_steps, time.perf_counter() - self.started


class Trainer:
    """Trains one run: ``run()`` to the configured epochs (see the module's docstring)."""

    def __init__(self, run: RunFolder, model_config: ModelConfig, cfg: TrainConfig, world: World,
                 progress: bool | None = None, resume: bool = False, init: VAE | None = None):  # fmt: skip
        self.cfg, self.world = cfg, world
        self.progress = progress if world.main else False
        self.device = pick_device(cfg.device)
        if self.device.type == "cuda" and world.distributed:
            self.device = torch.device("cuda", world.local_rank)
        self.record = Recorder(run, cfg, world, self.device)
        torch.manual_seed(cfg.seed)
        self.data = RunImages.load(cfg, model_config, self.device)
        capturable = graph_possible(self.device, world.distributed, cfg.optimizer)
        self.model, self.optimizer, self.position = _starting_state(
            run, model_config, cfg, self.device, capturable, world.main, resume, init
        )
        self.step_runner = make_step_runner(
            self.model, cfg, self.optimizer, self.device, world.distributed, on_path=self._path_settled
        )
        self.local = self.data.batch // world.size  # each process's share of every minibatch
        self.stop_now = False
        self.chains = self._chains() if cfg.algorithm == "mcem" else None
        self.curve = None if not cfg.bound_points else BoundCurve(
            self.data.bound_train_x, self.data.test_x, cfg.bound_points, cfg.seed,
            self.position.step * self.data.batch, cfg.bound_estimator)  # fmt: skip

    # -- the loop -------------------------------------------------------------------------------

    def run(self) -> bool:
        """Train to the configured number of epochs; True when stopped early by a signal."""
        if self.position.epoch >= self.cfg.epochs:
            return False
        if not self.record.run.has_snapshot_labels():
            self.snapshot()  # epoch 0 of a new run: the latent space before any training
        with StopRequest() as stop:
            start = time.perf_counter()
            while self.position.epoch < self.cfg.epochs and not self.stop_now:
                self.epoch(stop, start)
            end = self.position.step * self.data.batch  # a point where the run ends: its curve reaches it
            if not self.stop_now and self.curve and self.curve.due_at_end(end):
                self.bound_point(self.position.epoch, start)
        return self.stop_now

    def epoch(self, stop: StopRequest, start: float) -> None:
        """The rest of the current epoch: steps, a metrics line every log_every steps, then the
        epoch's test figures, snapshot and checkpoint (or, stopped mid-epoch, a checkpoint)."""
        position, number, total = self.position, self.position.epoch + 1, self.data.steps_per_epoch
        if position.perm is None or position.pos == 0:
            position.perm, position.pos = torch.randperm(len(self.data.train_x), device=self.device), 0
        self.stop_now = self.stop_now or (stop.requested and not self.world.distributed)  # (while it started)
        meter = Meter(self.device)
        quiet = None if self.progress is None else not self.progress
        with tqdm(total=total, initial=position.pos, desc=f"epoch {number}/{self.cfg.epochs}", disable=quiet,
                  leave=False) as bar:  # fmt: skip
            while position.pos < total and not self.stop_now:
                batch = self.data.batch
                meter.add(self.train_step(position.perm[position.pos * batch : (position.pos + 1) * batch]))
                position.pos, position.step = position.pos + 1, position.step + 1
                bar.update(1)
                if self.curve is not None and self.curve.due(position.step * self.data.batch):
                    self.bound_point(number, start)
                # One process alone checks its stop request every step; several agree on it at the
                # log steps (every process must take part in the same collectives).
                log_now = position.step % self.cfg.log_every == 0
                if not self.world.distributed:
                    self.stop_now = stop.requested
                    log_now = log_now or self.stop_now
                if log_now:
                    loss = self.log_step(number, meter, stop, start)
                    bar.set_postfix(loss=f"{loss:.2f}")
        if self.world.distributed and not self.stop_now:
            self.stop_now = self.world.any(stop.requested, self.device)
        if position.pos < total:  # stopped mid-epoch: checkpoint the position
            self.save()
            return
        self.end_epoch(number, meter, start)

    def train_step(self, idx: torch.Tensor) -> torch.Tensor:
        """One update on the minibatch of training images ``idx`` (M,); returns its (loss, recon,
        kl) on the device."""
        x = self.data.train_x[idx]  # (M, C, H, W) grey levels in [0, 1]
        if self.data.binarized:
            # Dynamic binarisation: u < x is Bernoulli(x) (rand is vectorised, bernoulli is not)
            x = (torch.rand_like(x) < x).to(x.dtype)
        if self.chains is not None:
            return self.mcem_step(idx, x)
        # The noise of the whole minibatch, drawn in the same order by every process (same seed):
        # each takes its slice, so N processes compute what one would, up to float rounding.
        eps, *sleep = step_noise(self.model, self.cfg, len(idx), self.device)
        if self.world.distributed:
            lo, hi = self.world.rank * self.local, (self.world.rank + 1) * self.local
            x, eps, sleep = x[lo:hi], eps[:, lo:hi], [n[lo:hi] for n in sleep]
        return self.step_runner(x, eps, *sleep)

    def mcem_step(self, idx: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Monte Carlo EM on the minibatch ``idx`` (``explorer.train.mcem``): the images' chains
        move by one HMC transition, then the decoder takes its updates; returns (-log p(x, z),
        log p(x|z), 0) at the chains' new states, means over the minibatch."""
        z, _ = self.chains[idx]
        out = mcem_step(self.model, x, z, self.chains.shared_step, self.optimizer)
        self.chains.update(idx, out.z, out.step_size)
        return torch.stack([-out.log_joint.mean(), out.log_px_z.mean(), torch.zeros((), device=self.device)])

    def _chains(self) -> ChainStore:
        """Monte Carlo EM's chains: a resumed run's, or new ones from the prior (seeded)."""
        if self.world.distributed:
            raise ExplorerError("Monte Carlo EM trains in one process: drop the launcher (--nproc)")
        chains = ChainStore.create(len(self.data.train_x), self.model.config.latent_dim, device=self.device,
                                   generator=torch.Generator().manual_seed(self.cfg.seed))  # fmt: skip
        if self.position.chains:
            chains.load_state_dict(self.position.chains)
        return chains

    def bound_point(self, epoch: int, start: float) -> None:
        """A point of the bound curve (``explorer.train.bounds``): the ELBO of the fixed training subset
        and of the test set at this many training samples, as a "bound" metrics line."""
        # Monte Carlo EM's estimates on its training images start where its own chains are (the
        # bound's training subset is the first images of the training set); the test images'
        # from the best of many prior draws ("auto" for a model without an encoder).
        states = self.chains.z[: len(self.data.bound_train_x)] if self.chains is not None else None
        point = self.curve.evaluate(self.model, self.position.step * self.data.batch, states)
        elapsed = self.position.seconds + time.perf_counter() - start
        step = self.position.step
        self.record.metrics(dict(type="bound", epoch=epoch, step=step, **point, seconds=elapsed))

    def log_step(self, epoch: int, meter: Meter, stop: StopRequest, start: float) -> float:
        """Write a step line of the mean (loss, recon, kl) since the last one; returns the loss."""
        sums, steps, seconds = meter.take_log()
        if self.world.distributed:
            summed = self.world.sum(torch.cat([sums, sums.new_tensor([float(stop.requested)])]))
            sums, self.stop_now = summed[:3] / self.world.size, bool(summed[3] > 0)
        loss, recon, kl = (sums / steps).tolist()  # the one sync per log step
        if not math.isfinite(loss):
            raise self.record.diverged(f"at step {self.position.step} (loss {loss})")
        step = self.position.step
        row = dict(type="step", epoch=epoch, step=step, samples=step * self.data.batch)
        elapsed = self.position.seconds + time.perf_counter() - start
        # A stop's line may hold a step or two since the last: their mean loss is one minibatch's
        # (a spike in the curves, 154 among 166-170) and their rate is timed with the log's own
        # writing (2,471 samples/s shown after a stop, 11,500 while running). Such a line keeps
        # the position alone, where a resume goes on from.
        if not (self.stop_now and steps < min(RATE_STEPS, self.cfg.log_every)):
            rate = steps * self.data.batch / max(seconds, 1e-9)
            row.update(train_loss=loss, recon=recon, kl=kl, samples_per_s=rate)
        self.record.metrics({**row, "seconds": elapsed})
        return loss

    def end_epoch(self, epoch: int, meter: Meter, start: float) -> None:
        """The epoch's metrics line, snapshot and checkpoint, unless the run has diverged."""
        self.position.pos, self.position.epoch = 0, epoch
        sums, steps, epoch_seconds = meter.take_epoch()
        loss, recon, kl = self.world.sum(sums / max(steps, 1)).div_(self.world.size).tolist()
        test = self.test()
        broken = why_diverged({"train_loss": loss, **test}, self.model.config.pixels)
        if broken:  # this epoch is not kept
            raise self.record.diverged(f"in epoch {epoch}: {broken}")
        score = test.get(score_key(self.model.config.variational))
        if score is not None:
            self.position.best = score if self.position.best is None else max(self.position.best, score)
        # The line goes first: if the process dies before the checkpoint is saved, --resume drops
        # every line past the previous checkpoint's step and runs this epoch again.
        step = self.position.step
        row = dict(type="epoch", epoch=epoch, step=step, samples=step * self.data.batch,
                   train_loss=loss, recon=recon, kl=kl)  # fmt: skip
        elapsed = self.position.seconds + time.perf_counter() - start
        times = {"seconds": elapsed, "epoch_seconds": epoch_seconds}
        rate = steps * self.data.batch / max(epoch_seconds, 1e-9)
        self.record.metrics({**row, **test, **times, "samples_per_s": rate})
        self.snapshot()
        self.save()
        self.report("running")  # status.json's step and time follow the run, epoch by epoch
        line = _epoch_line(epoch, self.cfg, loss, test, epoch_seconds, self.model.config)
        if self.progress is not False and not _print_above_bar(line):
            self.progress = False  # nobody reads any more (`| head`): the run goes on, silently

    # -- what an epoch leaves behind, and what the run says -------------------------------------

    def test(self) -> dict[str, float]:
        """This epoch's test figures (``explorer.evaluate.test_figures``), seeded by run and epoch;
        none for Monte Carlo EM, which has no recognition model to score them with (its figures are
        the bound curve's, ``--bound-points``)."""
        if self.chains is not None:
            return {}
        seed = self.cfg.seed * 100_003 + self.position.epoch
        return test_figures(
            self.model, self.data.test_x, self.cfg.objective, self.cfg.samples, seed, self.world
        )

    def snapshot(self) -> None:
        """The latent snapshot of this epoch (``Recorder.snapshot``); none without an encoder."""
        if self.cfg.algorithm == "mcem":
            return
        self.record.snapshot(self.model, self.data.test_x, self.data.snapshot_labels, self.position.epoch)

    def save(self) -> None:
        """Checkpoint the model, the optimiser and the position (and Monte Carlo EM's chains)."""
        if self.chains is not None:
            self.position.chains = self.chains.state_dict()
        self.record.save(self.model, self.optimizer, self.position)

    def report(self, state: str, **extra) -> None:
        """Write status.json: the state, where training stands, and how it trains (processes, and
        on CUDA whether the step is a graph), with the fields of ``extra``."""
        where = self.world.describe() if self.world.distributed else f"single process on {self.device}"
        path = f"{where}, {self.step_runner.path}" if self.device.type == "cuda" else where
        steps = self.data.steps_per_epoch
        step = self.position.step
        self.record.status(
            state, epochs=self.cfg.epochs, steps_per_epoch=steps, step=step, path=path, **extra
        )

    def _path_settled(self, path: str) -> None:
        if self.progress is not False and self.world.main:
            tqdm.write(f"training step: {path}")
        self.report("running")  # now saying whether the graph was kept


def _print_above_bar(line: str) -> bool:
    """Print a line above any progress bar; False when the reader has gone (a closed pipe)."""
    try:
        tqdm.write(line)
    except OSError:
        return False
    return True


def _epoch_line(epoch: int, cfg: TrainConfig, loss: float, test: dict, took: float, net: ModelConfig) -> str:
    """The console line at the end of an epoch: losses in nats per image, and for a logistic or Gaussian
    decoder (grey levels, colour) the test ELBO in bits per dimension too (``evaluate.bits_per_dim``)."""
    bound = f"  test L_{cfg.samples} {test['test_bound']:.2f}" if "test_bound" in test else ""
    unit = " nats"
    if "test_elbo" in test:
        score = f"test ELBO {test['test_elbo']:.2f}"
        if net.likelihood != "bernoulli":
            bits = bits_per_dim(-test["test_elbo"], math.prod(net.image_shape), net.likelihood, False)
            unit += f" ({bits:.3f} bits/dim)"
    elif "test_recon" in test:
        score = f"test log p(x|z) {test['test_recon']:.2f}"
    else:  # Monte Carlo EM: -log p(x, z) at its chains
        score, unit = "(no encoder: see the bound points)", ""
    return f"epoch {epoch}/{cfg.epochs}  train loss {loss:.2f}  {score}{unit}{bound}  ({took:.1f} s)"


def _starting_state(run: RunFolder, model_config: ModelConfig, cfg: TrainConfig, device: torch.device,
                    capturable: bool, main: bool, resume: bool, init: VAE | None):  # fmt: skip
    """(model, optimiser, position) a run starts from: its checkpoint when resumed, else a new
    model (with the weights of ``init``, from --init-from, when given) at step 0."""
    if resume:
        model = load_checkpoint(run.path, device).train()
        optimizer = make_optimizer(model, cfg, capturable)
        return model, optimizer, _resume_position(run, optimizer, cfg.lr, main, device)
    model = VAE(model_config).to(device).train()
    if init is not None:
        model.load_state_dict(init.state_dict())
    elif cfg.init == "paper":
        init_paper(model, torch.Generator().manual_seed(cfg.seed))
    return model, make_optimizer(model, cfg, capturable), Position()


def _resume_position(run: RunFolder, optimizer, lr: float, main: bool, device: torch.device) -> Position:
    """Where the run in ``run`` stopped: its position and random state, the optimiser's state
    (at the learning rate ``lr`` from here on), and its metrics cut back to the checkpoint."""
    saved = read_config(run.path)
    position = Position(epoch=saved["epoch"], step=saved["step"], best=saved.get("best_test_elbo"))
    position.restore(load_training_state(run.path, optimizer, position.step), device)
    for group in optimizer.param_groups:  # the saved state carries the old rate
        group["lr"] = lr
    if main:
        rows = run.truncate_metrics(position.step)
        position.seconds = rows[-1]["seconds"] if rows else 0.0
    return position
