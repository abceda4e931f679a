"""The import graph of explorer/ is a contract (.importlinter, docs/ARCHITECTURE.md): the rooms
import downwards only, nothing outside explorer.ui imports Streamlit, the settings load no torch,
and no modules of one folder import each other in a circle. The contract holds today, and it
catches each kind of wrong-way import planted in a copy of the package."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    """import-linter's ``lint-imports`` on the package under ``root``, with its contract."""
    command = [sys.executable, "-c", "import importlinter.cli as c; c.lint_imports_command()"]
    env = {**os.environ, "PYTHONPATH": str(root)}  # this tree's explorer, not an installed one
    return subprocess.run(
        [*command, "--no-cache", "--no-logo", str(root / ".importlinter")],
        cwd=root, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_the_package_keeps_its_import_contract():
    done = lint_imports(ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Contracts: 4 kept, 0 broken." in done.stdout


def test_the_contract_catches_wrong_way_imports(tmp_path):
    copy = tmp_path / "house"
    shutil.copytree(ROOT / "explorer", copy / "explorer", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / ".importlinter", copy / ".importlinter")
    planted = {
        "explorer/pictures/images.py": "from explorer.data import specs",  # a lower room reaching up
        "explorer/model.py": "import streamlit",  # the library drawing widgets
        "explorer/config.py": "from explorer import devices",  # devices imports torch
        "explorer/data/stamps.py": "from explorer.data import cache",  # cache -> stamps -> cache
    }
    for file, line in planted.items():
        path = copy / file
        path.write_text(path.read_text() + f"\n{line}  # planted\n")
    done = lint_imports(copy)
    out = done.stdout
    assert done.returncode != 0
    assert "Contracts: 0 kept, 4 broken." in out, out
    assert "explorer.pictures is not allowed to import explorer.data" in out
    assert "- explorer.pictures.images -> explorer.data.specs" in out
    assert "explorer.model -> streamlit" in out
    assert "explorer.config -> explorer.devices" in out and "explorer.devices -> torch" in out
    assert "No cycles are allowed in explorer.data." in out
