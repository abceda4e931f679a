"""Monte Carlo EM as a training algorithm: the decoder alone learns, every training image keeps its
HMC chain across epochs and in the checkpoint, a resumed run continues exactly, and its bound curve
is the paper's Appendix D estimate of the marginal likelihood."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from explorer.checkpoints import load_checkpoint
from explorer.config import ModelConfig, TrainConfig
from explorer.paper.curves import read_bound_points
from explorer.train.run import resume_run, start_run

pytestmark = pytest.mark.integration

MODEL = ModelConfig(latent_dim=2, hidden=(16,), activation="tanh")


def _cfg(**kw) -> TrainConfig:
    base = dict(algorithm="mcem", limit=200, test_limit=20, epochs=2, optimizer="adagrad", lr=0.05,
                init="paper", device="cpu", seed=3, log_every=1000)  # fmt: skip
    return TrainConfig(**{**base, **kw})


def _chains(folder) -> dict[str, torch.Tensor]:
    return {k: v for k, v in load_file(folder / "train_state.safetensors").items() if "chains." in k}


def test_mcem_learns_the_decoder_alone_and_resumes_its_chains_exactly(tmp_path):
    straight = start_run(tmp_path / "a", MODEL, _cfg(), progress=False)
    part = start_run(tmp_path / "b", MODEL, _cfg(epochs=1), progress=False)
    after_one = _chains(part)
    assert after_one["rng.chains.z"].shape == (200, 2) and after_one["rng.chains.shared_step"].ndim == 0
    resume_run(part, epochs=2, progress=False)
    a, b = load_checkpoint(straight), load_checkpoint(part)
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(pa, pb), f"{name} differs after a resume"
    for k, v in _chains(straight).items():
        assert torch.equal(v, _chains(part)[k]), f"{k} differs after a resume"
    assert not torch.equal(_chains(part)["rng.chains.z"], after_one["rng.chains.z"])  # the chains moved on
    fresh = load_checkpoint(start_run(tmp_path / "c", MODEL, _cfg(epochs=1, lr=1e-12), progress=False))
    torch.manual_seed(0)
    from explorer.model import VAE, init_paper

    init = VAE(MODEL)
    init_paper(init, torch.Generator().manual_seed(3))
    for name, p in fresh.state_dict().items():  # at a vanishing rate nothing moves, and the
        assert torch.allclose(p, init.state_dict()[name], atol=1e-6), name  # encoder never does
    for name, p in a.state_dict().items():
        moved = not torch.allclose(p, init.state_dict()[name])
        assert moved == (not name.startswith(("encoder", "enc_head"))), name


@pytest.mark.slow  # minutes: the Appendix D estimate at every point (tests/test_hmc.py has the quick one)
def test_an_mcem_run_raises_its_marginal_likelihood(tmp_path):
    cfg = _cfg(
        limit=300,
        epochs=12,
        bound_points=2,
        bound_estimator="paper-hmc",
        bound_train_images=40,
        test_limit=40,
    )
    import explorer.train.bounds

    first = explorer.train.bounds.FIRST_COUNT
    explorer.train.bounds.FIRST_COUNT = 300
    try:
        out = start_run(tmp_path / "m", MODEL, cfg, progress=False)
    finally:
        explorer.train.bounds.FIRST_COUNT = first
    points = read_bound_points(out / "metrics.jsonl")
    assert [p[0] for p in points] == [400, 1000, 3200]  # the first steps past 316, 1000 and 3162
    assert points[-1][1] > points[0][1] + 5, points  # the training set's log p(x) rose
