"""The library core, the command line and the benchmarks need only what the GPU machine's image
has (torch, torchvision, numpy, safetensors, tqdm, pillow): each runs here in a process where the
app's and the tests' own packages cannot be imported."""

import json
import math
import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent

# Installed for the app or the tests, absent from the GPU machine's image.
NOT_ON_THE_GPU_MACHINE = {
    "streamlit",
    "streamlit_drawable_canvas",
    "plotly",
    "pandas",
    "altair",
    "pyarrow",
    "scipy",
    "matplotlib",
    "playwright",
    "pytest",
    "_pytest",
}


@pytest.fixture(scope="module")
def headless_env(tmp_path_factory):
    """The environment of a process (started with ``python -S``) whose only packages are this
    environment's, less NOT_ON_THE_GPU_MACHINE: to it they are absent, not broken."""
    site = tmp_path_factory.mktemp("headless-site")
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if re.split(r"[-.]", entry.name, maxsplit=1)[0].lower() not in NOT_ON_THE_GPU_MACHINE:
            (site / entry.name).symlink_to(entry)
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}


def run(env, *args, timeout=300):
    done = subprocess.run(
        [sys.executable, "-S", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_the_app_packages_are_absent_and_the_core_ones_present(headless_env):
    out = run(
        headless_env,
        "-c",
        "import importlib.util as u, torch, torchvision, numpy, safetensors, tqdm, PIL; "
        f"print(sorted(n for n in {sorted(NOT_ON_THE_GPU_MACHINE)!r} if u.find_spec(n)))",
    )
    assert out.strip() == "[]"


def test_training_bench_runs_without_the_app_packages(headless_env):
    out = run(
        headless_env, "bench/train_speed.py", "--epochs", "1", "--limit", "512", "--device", "cpu",
        "--runs", "1", "--json",
    )  # fmt: skip
    result = json.loads(out)
    for loop in ("reference", "ours"):
        (run_figures,) = result[loop]  # one per run
        assert math.isfinite(run_figures["test_loss"]) and 0 < run_figures["test_loss"] < 600
        # The two figures are one measurement: the 512 images (4 batches of 128) of each epoch.
        images = run_figures["samples_per_s"] * run_figures["seconds_per_epoch"]
        assert run_figures["seconds_per_epoch"] > 0 and images == pytest.approx(512, rel=1e-9)
    assert result["ours"][0]["path"] == "single process on cpu"


def test_scaling_bench_runs_without_the_app_packages(headless_env):
    out = run(headless_env, "bench/scaling.py", "--seconds", "0.05", "--batches", "64", "--widths", "50")
    assert "| 64 |" in out and "| 50 |" in out and "where the time goes" in out


def test_evaluate_and_interaction_bench_run_without_the_app_packages(headless_env):
    out = run(
        headless_env, "-m", "explorer.cli", "evaluate", "mnist-z2", "--k", "8", "--limit", "16", "--json"
    )
    result = json.loads(out)
    assert result["n"] == 16 and result["nll"] <= -result["elbo"] + 1e-6
    out = run(headless_env, "bench/interaction.py", "--repeats", "3", "--eval-images", "2", "--k", "16")
    assert "decode one point -> PNG" in out and "20x20 manifold grid" in out
