"""What training sets up before its first step: the CPU's denormal mode (explorer.devices.flush_denormals),
and the command line's quick exit (explorer.cli.entry)."""

import subprocess
import sys

import pytest
import torch

from explorer.cli_args import EXIT_ERROR
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
