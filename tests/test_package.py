"""The package root: its public names, imported when used, and settings that load no torch."""

import importlib
import inspect
import subprocess
import sys

import pytest

import explorer


def test_every_public_name_resolves():
    assert set(explorer.__all__) == {*explorer._HOMES, "__version__"}
    for name, home in explorer._HOMES.items():  # the very object of its home module, a class or function
        value = getattr(explorer, name)
        assert value is getattr(importlib.import_module(f"explorer.{home}"), name), name
        assert isinstance(value, type) or inspect.isfunction(value), name
    assert explorer.__version__ == importlib.import_module("explorer.version").__version__
    from explorer.train.run import start_run

    assert explorer.start_run is start_run  # the function, not a module of that name
    with pytest.raises(AttributeError, match="no attribute 'train_model'"):
        explorer.train_model  # noqa: B018


def test_settings_and_datasets_load_no_torch():
    code = "import sys, explorer.config, explorer.data.specs; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
