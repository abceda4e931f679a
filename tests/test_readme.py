"""The README's Python snippet runs as written."""

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


@pytest.mark.integration
def test_readme_python_snippet_runs(tmp_path, monkeypatch, capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks, "README has no Python snippet"
    monkeypatch.chdir(tmp_path)
    exec(compile(blocks[0], "README.md", "exec"), {})
    out = capsys.readouterr().out
    nll = float(re.search(r"NLL with K = 100: ([\d.]+) nats", out).group(1))
    assert 80 < nll < 300
    assert 20 < int(re.search(r"ink fills (\d+) of 784 pixels", out).group(1)) < 120
    assert (tmp_path / "runs" / "api-demo" / "model.safetensors").is_file()


def test_every_readme_command_line_parses():
    """Each `vae-explorer ...` line of the README's shell blocks is accepted by the parser as
    written (flags that exist, values of the right kind)."""
    import shlex

    from explorer.cli import build_parser

    lines = [
        re.sub(r"\s+#.*$", "", line).strip()
        for block in re.findall(r"```bash\n(.*?)```", README.read_text(), re.S)
        for line in block.replace("\\\n", " ").splitlines()
        if line.strip().startswith("vae-explorer ")
    ]
    assert len(lines) >= 10
    for line in lines:
        try:
            build_parser().parse_args(shlex.split(line)[1:])
        except SystemExit:
            pytest.fail(f"README command does not parse: {line}")
