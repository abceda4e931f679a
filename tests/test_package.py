"""The package root: its public names, imported when used, and settings that load no torch."""

import subprocess
import sys

import pytest

import explorer


def test_every_public_name_resolves():
    assert set(explorer.__all__) == {*explorer._HOMES, "__version__"}
    for name in explorer.__all__:
        assert getattr(explorer, name) is not None, name
    from explorer.train.run import start_run

    assert explorer.start_run is start_run  # the function, not a module of that name
    with pytest.raises(AttributeError, match="no attribute 'train_model'"):
        explorer.train_model  # noqa: B018


def test_settings_and_datasets_load_no_torch():
    code = "import sys, explorer.config, explorer.data.specs; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
