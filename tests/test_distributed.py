"""Training with several processes (DistributedDataParallel over gloo on the CPU): the ranks stay
identical, the result equals one process with the same global batch and seed, only rank 0
writes, and runs resume across process counts."""

import json
import os
import socket
import subprocess
import sys

import pytest
import torch
import torch.multiprocessing as mp

from explorer.checkpoints import load_checkpoint, read_config
from explorer.model import ModelConfig
from explorer.train.runfolder import RunFolder

pytestmark = pytest.mark.integration
ARGS = ["--limit", "1200", "--test-limit", "300", "--hidden", "32", "--batch-size", "60", "--log-every", "5"]
ARGS += ["--device", "cpu", "--no-progress"]
TOLERANCE = 1e-4  # float rounding of averaged gradients, carried through Adam for 40 steps


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "explorer.cli", "train", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1", **(env or {})},
    )


def assert_same_run(a, b, tol=TOLERANCE):
    wa, wb = load_checkpoint(a).state_dict(), load_checkpoint(b).state_dict()
    worst = max((wa[k] - wb[k]).abs().max().item() for k in wa)
    assert worst < tol, worst
    ra = [r for r in RunFolder(a).read_metrics() if r["type"] == "epoch"]
    rb = [r for r in RunFolder(b).read_metrics() if r["type"] == "epoch"]
    assert [r["step"] for r in ra] == [r["step"] for r in rb]
    for x, y in zip(ra, rb):
        for key in ("train_loss", "recon", "kl", "test_elbo"):
            assert x[key] == pytest.approx(y[key], abs=1e-3), key


def test_two_processes_equal_one_and_only_rank_0_writes(tmp_path):
    one = cli("--out", str(tmp_path / "one"), "--epochs", "2", *ARGS)
    assert one.returncode == 0, one.stderr
    two = cli("--out", str(tmp_path / "two"), "--epochs", "2", "--nproc", "2", *ARGS)
    assert two.returncode == 0, two.stderr
    assert two.stdout.count("run saved in") == 1
    assert_same_run(tmp_path / "one", tmp_path / "two")
    files = sorted(p.name for p in (tmp_path / "two").iterdir())
    assert files == sorted(p.name for p in (tmp_path / "one").iterdir())  # one of each, no per-rank files
    steps = [r["step"] for r in RunFolder(tmp_path / "two").read_metrics()]
    assert len(steps) == len(set(steps)) + 2  # each step line once; two epoch lines share a step
    assert (
        RunFolder(tmp_path / "two").read_status()["path"] == "2 processes, DistributedDataParallel over gloo"
    )
    record = (tmp_path / "two" / "commands.txt").read_text()
    assert "--nproc 2" in record and record.count("\n") == 1


def test_resume_across_process_counts(tmp_path):
    straight = cli("--out", str(tmp_path / "straight"), "--epochs", "2", *ARGS)
    assert straight.returncode == 0, straight.stderr
    # one process, then two
    assert cli("--out", str(tmp_path / "a"), "--epochs", "1", *ARGS).returncode == 0
    resumed = cli("--resume", str(tmp_path / "a"), "--epochs", "2", "--nproc", "2", "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    assert_same_run(tmp_path / "straight", tmp_path / "a")
    # two processes, then one
    assert cli("--out", str(tmp_path / "b"), "--epochs", "1", "--nproc", "2", *ARGS).returncode == 0
    assert cli("--resume", str(tmp_path / "b"), "--epochs", "2", "--no-progress").returncode == 0
    assert_same_run(tmp_path / "straight", tmp_path / "b")
    assert read_config(tmp_path / "b")["epoch"] == 2


def test_a_batch_that_does_not_split_is_refused(tmp_path):
    args = [a if a != "60" else "61" for a in ARGS]
    run = cli("--out", str(tmp_path / "odd"), "--epochs", "1", "--nproc", "2", *args)
    assert run.returncode != 0
    assert "does not split evenly over 2 processes" in run.stderr
    assert not (tmp_path / "odd" / "model.safetensors").exists()


def _rank_worker(rank: int, port: int, out: str, record: str) -> None:
    """One of two processes: train a few steps and record a fingerprint of the parameters after
    every step."""
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2")
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), VAE_EXPLORER_OFFLINE="1")
    torch.set_num_threads(1)
    import importlib

    from explorer.config import TrainConfig
    from explorer.train.run import start_run

    trainer_module = importlib.import_module("explorer.train.loop")
    prints = []
    original = trainer_module.Trainer.train_step

    def step(self, idx):
        stats = original(self, idx)
        prints.append(
            torch.cat([p.detach().flatten() for p in self.model.parameters()]).double().sum().item()
        )
        prints.append(self.model.enc_head.weight.detach().flatten()[:8].tolist())
        return stats

    trainer_module.Trainer.train_step = step
    cfg = TrainConfig(epochs=1, limit=600, test_limit=100, batch_size=60, device="cpu", log_every=5)
    start_run(out, ModelConfig(hidden=(16,), latent_dim=2), cfg, progress=False)
    with open(f"{record}.{rank}", "w") as f:
        json.dump(prints, f)


def test_ranks_hold_identical_parameters_after_every_step(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.start_processes(
        _rank_worker,
        args=(port, str(tmp_path / "run"), str(tmp_path / "prints")),
        nprocs=2,
        start_method="spawn",
    )
    rank0 = json.loads((tmp_path / "prints.0").read_text())
    rank1 = json.loads((tmp_path / "prints.1").read_text())
    assert len(rank0) == 2 * 10  # 10 steps, two fingerprints each
    assert rank0 == rank1  # bit for bit: the same averaged gradients, the same optimiser
    assert len({json.dumps(v) for v in rank0[1::2]}) == 10  # and the parameters did move every step
