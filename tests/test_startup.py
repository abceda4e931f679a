"""What training sets up before its first step: the CPU's denormal mode (explorer.devices.flush_denormals),
and the command line's quick exit (explorer.cli.entry)."""

import json
import subprocess
import sys

import pytest
import torch

from explorer.cli.args import EXIT_ERROR
from explorer.devices import flush_denormals


def test_denormals_are_flushed_to_zero_after_training_sets_the_mode():
    tiny = torch.tensor([1e-39])  # a float32 denormal
    try:
        if not flush_denormals():
            pytest.skip("this CPU has no flush-to-zero mode")
        assert (tiny * 1.0).item() == 0.0  # read as zero
        assert (torch.tensor([1e-30]) * 1e-10).item() == 0.0  # a result below 1.2e-38 becomes zero
        assert (torch.tensor([1e-30]) * 1e-5).item() == pytest.approx(1e-35, rel=1e-5)  # normal ones stay
    finally:
        torch.set_flush_denormal(False)


def _cli(*args: str, code: str | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "explorer.cli", *args] if code is None else [sys.executable, "-c", code]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def test_the_command_line_exits_quickly_with_its_output_and_exit_code(tmp_path):
    """entry() skips the interpreter's teardown: what the command wrote and printed is all there,
    and its exit code is kept, for a success and for a refusal."""
    done = _cli("sample", "mnist-z2", "-n", "4", "-o", str(tmp_path / "s.png"))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"wrote {tmp_path / 's.png'}"
    assert (tmp_path / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    refused = _cli("sample", str(tmp_path / "no-such-run"), "-o", str(tmp_path / "t.png"))
    assert refused.returncode == EXIT_ERROR and "error:" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert not (tmp_path / "t.png").exists()


def test_the_quick_exit_still_runs_exit_handlers(tmp_path):
    marker = tmp_path / "ran"
    code = (
        "import atexit, sys; "
        f"atexit.register(lambda: open({str(marker)!r}, 'w').write('exit handler ran')); "
        "sys.argv = ['vae-explorer', 'data', 'info', 'mnist']; "
        "from explorer.cli import entry; entry()"
    )
    done = _cli(code=code)
    assert done.returncode == 0, done.stderr
    assert marker.read_text() == "exit handler ran"


def test_training_into_a_path_that_cannot_be_a_folder_is_refused_in_one_line(tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    cases = ((tmp_path / "a-file", "is a file"), ("/proc/no-run-here", "cannot create the run folder"))
    for out, said in cases:
        done = _cli("train", "--epochs", "1", "--limit", "200", "--device", "cpu", "--out", str(out))
        assert done.returncode == EXIT_ERROR and said in done.stderr, done.stderr
        assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert (tmp_path / "a-file").read_text() == "not a folder"


def test_a_reader_that_goes_away_does_not_stop_training(tmp_path):
    """`vae-explorer train ... | head -1`: the epoch lines fail to print, the run still finishes."""
    out = tmp_path / "run"
    train = f"{sys.executable} -m explorer.cli train --epochs 2 --limit 300 --device cpu --out {out}"
    command = f"{train} | head -c 1"
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=300)
    assert "Traceback" not in done.stderr, done.stderr
    status = json.loads((out / "status.json").read_text())
    assert status["state"] == "finished", status
