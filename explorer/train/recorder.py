"""What a training run leaves behind, and what it says when it fails.

``Position`` is where a run stands (epoch, step, place in the epoch, random state), saved with
every checkpoint so that a resumed run continues exactly. ``Recorder`` writes a run's records
through its ``RunFolder``, on rank 0 only: metrics lines, status.json, latent snapshots and
checkpoints (never of a diverged model, never over a good one on a failed write). Its messages
name the checkpoint that is kept and what to change.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from tqdm import tqdm

from explorer.checkpoints import read_config, save_checkpoint
from explorer.config import TrainConfig
from explorer.errors import ExplorerError
from explorer.evaluate import fit_projection
from explorer.model import VAE
from explorer.train.distributed import World
from explorer.train.runfolder import SNAPSHOT_SIZE, RunFolder


@dataclass
class Position:
    """Where a run stands, saved with each checkpoint so that a resumed run continues exactly."""

    epoch: int = 0  # epochs completed
    step: int = 0  # steps taken in all
    pos: int = 0  # steps taken in the current epoch
    perm: torch.Tensor | None = None  # the current epoch's permutation
    best: float | None = None  # best test ELBO so far (nats)
    seconds: float = 0.0  # training time of earlier sessions of this run
    chains: dict | None = None  # Monte Carlo EM's chain states ("chains.*" tensors), saved with the state

    def rng(self, device: torch.device) -> dict[str, torch.Tensor]:
        """The random state and the position in the epoch, as tensors for the checkpoint."""
        rng = {"cpu": torch.get_rng_state(), "pos": torch.tensor([self.pos])}
        if device.type == "cuda":
            rng["cuda"] = torch.cuda.get_rng_state(device)
        if self.perm is not None:
            rng["perm"] = self.perm.cpu()
        return {**rng, **(self.chains or {})}

    def restore(self, rng: dict[str, torch.Tensor], device: torch.device) -> None:
        """Set the random state and the position in the epoch from a checkpoint's ``rng``."""
        torch.set_rng_state(rng["cpu"])
        if "cuda" in rng and device.type == "cuda":
            torch.cuda.set_rng_state(rng["cuda"], device)
        self.pos = int(rng["pos"][0])
        self.perm = rng["perm"].to(device) if "perm" in rng else None
        self.chains = {k: v for k, v in rng.items() if k.startswith("chains.")} or None


class Recorder:
    """A run's metrics, status, snapshots and checkpoints, written by rank 0 of ``world``."""

    def __init__(self, run: RunFolder, cfg: TrainConfig, world: World, device: torch.device) -> None:
        self.run, self.cfg, self.world, self.device = run, cfg, world, device

    def metrics(self, row: dict) -> None:
        """Append one line to metrics.jsonl (whole, or not at all).

        Raises:
            ExplorerError: the write failed (a full disk, say): which checkpoint is kept.
        """
        if self.world.main:
            try:
                self.run.append_metrics([row])
            except OSError as exc:
                raise self.write_failed(exc, "metrics.jsonl") from None

    def status(self, state: str, **fields) -> None:
        """Write status.json: ``state`` and where training stands.

        Raises:
            ExplorerError: the write failed (a full disk, say): which checkpoint is kept.
        """
        if self.world.main:
            try:
                self.run.write_status(state, **fields)
            except OSError as exc:
                raise self.write_failed(exc, "status.json") from None

    def write_failed(self, exc: OSError, what: str, kept: str = "kept") -> ExplorerError:
        """The one-line error of a run that could not write ``what``: why (a full disk named by
        its mount point), which checkpoint is ``kept`` ("kept", "intact"), and how to go on: resume
        from it, or, where none was saved yet, start again (a new run takes a folder without one)."""
        then = (
            f"continue with: vae-explorer train --resume {self.run.path}"
            if self.run.has_checkpoint()
            else f"start it again (nothing to resume): {self._command()}"
        )
        why = self.run.write_error(exc, what)
        return ExplorerError(f"{why}; {self.kept(kept)}. Free some space (or fix the cause), then {then}")

    @torch.no_grad()
    def snapshot(self, model: VAE, images: torch.Tensor, labels: torch.Tensor, epoch: int) -> None:
        """Save where ``images`` (the first SNAPSHOT_SIZE test images, (S, C, H, W)) sit in latent
        space after ``epoch``, for the Train page's animation: the posterior means themselves for
        a 2-D latent, else their top two principal components. Never fails the run: a snapshot is
        a picture, not a result."""
        if not self.world.main:
            return
        model.eval()
        try:
            mu = model.encode(images[:SNAPSHOT_SIZE])[0].float().cpu()
            labels = None if self.run.has_snapshot_labels() else labels
            self.run.write_latent_snapshot(epoch, fit_projection(mu)(mu), labels)
        except (OSError, RuntimeError) as exc:
            tqdm.write(f"note: latent snapshot of epoch {epoch} not saved: {exc}")
        finally:
            model.train()

    def save(self, model: VAE, optimizer: torch.optim.Optimizer, position: Position) -> None:
        """Checkpoint the model, the optimiser and the position (rank 0 writes; all agree it did).

        Raises:
            ExplorerError: the weights are not finite (nothing is written), or the write failed
                (the previous checkpoint is intact).
        """
        if not all(bool(torch.isfinite(p).all()) for p in model.parameters()):
            raise self.diverged(f"by step {position.step}: the weights are no longer finite")
        failed = None
        if self.world.main:
            try:
                save_checkpoint(
                    self.run.path,
                    model,
                    epoch=position.epoch,
                    step=position.step,
                    train_config=asdict(self.cfg),
                    best_test_elbo=position.best,
                    optimizer=optimizer,
                    rng=position.rng(self.device),
                )
            except OSError as exc:  # disk full, permissions, a vanished folder
                failed = self.write_failed(exc, f"the checkpoint of step {position.step}", "intact")
        if self.world.any(failed is not None, self.device):
            raise failed or ExplorerError("rank 0 could not save the checkpoint; see its message")

    def diverged(self, what: str) -> ExplorerError:
        """The error of a run that diverged ``what`` ("at step 40 (loss nan)"): which checkpoint
        is kept and what to change."""
        lower = f"Lower the learning rate (--lr; it is {self.cfg.lr:g})"
        advice = lower + (", or use --estimator analytic." if self.cfg.estimator == "mc" else ".")
        return ExplorerError(f"training diverged {what}; {self.kept()}. {advice}")

    def _command(self) -> str:
        """The command line that started this run (commands.txt), to give again; where none was
        recorded, its form."""
        started = [line for line in self.run.read_commands() if " train " in f" {line} "]
        return started[-1] if started else f"vae-explorer train --out {self.run.path} ..."

    def kept(self, word: str = "kept") -> str:
        """Which checkpoint is on disk, in words, for the messages of a failed run."""
        try:
            saved = read_config(self.run.path)
        except ExplorerError:
            return f"no checkpoint had been saved in {self.run.path} yet"
        where = f"epoch {saved.get('epoch')}, step {saved.get('step')}"
        return f"the last good checkpoint in {self.run.path} ({where}) is {word}"
