import os
import sys

import pytest
import torch

from explorer.model import VAE, ModelConfig
from tests import browser as browser_helpers

# Tests never reach the network: torchvision's downloader is skipped, the offline mirrors are used.
os.environ.setdefault("VAE_EXPLORER_OFFLINE", "1")
# Every `train` a test starts skips storing the pages' figures (a minute or two a run); the tests of
# that step turn it back on (tests/test_derived.py).
os.environ.setdefault("VAE_EXPLORER_DERIVE", "0")


@pytest.fixture(autouse=True)
def _keep_main_module():
    """Streamlit's AppTest leaves the page script it ran as ``sys.modules["__main__"]``; processes
    started with "spawn" would then run that page on start-up. Put the real one back."""
    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main


@pytest.fixture
def tiny_config() -> ModelConfig:
    return ModelConfig(image_shape=(1, 4, 3), hidden=(8, 6), activation="tanh", latent_dim=2)


@pytest.fixture
def tiny_model(tiny_config) -> VAE:
    torch.manual_seed(0)
    return VAE(tiny_config).double()


@pytest.fixture
def tiny_batch() -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.bernoulli(torch.rand(5, 1, 4, 3, generator=g, dtype=torch.float64), generator=g)


@pytest.fixture(scope="session")
def mnist_test():
    """The real MNIST test split (fetched into the cache on first use)."""
    from explorer.data.cache import load_dataset

    return load_dataset("mnist", "test")


@pytest.fixture
def disk_full(monkeypatch):
    """Call it to make every later write of a model.safetensors fail as on a full disk (the
    rename that would put the new file in place raises ENOSPC)."""
    import explorer.checkpoints as checkpoints

    real_replace = os.replace

    def replace(src, dst):
        if str(dst).endswith("model.safetensors"):
            raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    return lambda: monkeypatch.setattr(checkpoints.os, "replace", replace)


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    """Two small 'shipped' models (mnist-z2, mnist-z5) in a temporary pretrained/ folder, and an
    empty runs/ folder, for the app's pages."""
    from explorer.checkpoints import save_checkpoint

    for name, z in (("mnist-z2", 2), ("mnist-z5", 5)):
        torch.manual_seed(0)
        save_checkpoint(
            tmp_path / "pretrained" / name,
            VAE(ModelConfig(hidden=(32,), latent_dim=z)),
            epoch=3,
            step=30,
            train_config={"dataset": "mnist"},
            best_test_elbo=-150.25,
        )
    monkeypatch.setenv("VAE_EXPLORER_PRETRAINED", str(tmp_path / "pretrained"))
    monkeypatch.setenv("VAE_EXPLORER_RUNS", str(tmp_path / "runs"))
    return tmp_path


# -- the real browser and a Streamlit server, for the browser test modules (tests/browser.py) ------


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    browser_helpers.ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=browser_helpers.CHROMIUM, args=browser_helpers.CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    with browser_helpers.streamlit_server(env={"VAE_EXPLORER_RUNS": str(runs)}) as url:
        yield url, runs
