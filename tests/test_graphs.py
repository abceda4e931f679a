"""The CUDA-graph step's decisions and its safety net, on the CPU: which runs may be graphed, and
that a capture which fails or disagrees with the eager step leaves the model exactly where one
eager step would. (The capture itself needs a CUDA device; see bench/README.md.)"""

import contextlib

import pytest
import torch

from explorer.model import VAE, ModelConfig
from explorer.objectives import elbo_terms
from explorer.train import cuda_graph as graphs
from explorer.train.cuda_graph import capture, eager_reason


def test_which_runs_are_graphed(monkeypatch):
    cuda, cpu = torch.device("cuda", 0), torch.device("cpu")
    assert eager_reason(cuda, False, "adam") is None
    assert eager_reason(cuda, False, "rmsprop") is None
    assert "CUDA device" in eager_reason(cpu, False, "adam")
    assert "DistributedDataParallel" in eager_reason(cuda, True, "adam")
    assert "sgd cannot be captured" in eager_reason(cuda, False, "sgd")
    monkeypatch.setenv(graphs.DISABLE_ENV, "0")
    assert "turned off" in eager_reason(cuda, False, "adam")


def _setup():
    torch.manual_seed(0)
    model = VAE(ModelConfig(image_shape=(1, 4, 4), hidden=(8,), latent_dim=2)).double()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)

    def step_fn(x, eps):
        terms = elbo_terms(model, x, "analytic", 1, eps)
        loss = terms.loss(1.0)
        return loss, torch.stack([loss.detach(), terms.recon.detach().mean(), terms.kl.detach().mean()])

    def eager_step(x, eps):
        loss, stats = step_fn(x, eps)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return stats

    g = torch.Generator().manual_seed(1)
    batches = [
        (
            torch.bernoulli(torch.rand(6, 1, 4, 4, generator=g, dtype=torch.float64)),
            torch.randn(1, 6, 2, generator=g, dtype=torch.float64),
        )
        for _ in range(3)
    ]
    for x, eps in batches[:2]:  # warm-up: the optimiser has state before capture
        eager_step(x, eps)
    return model, optimizer, step_fn, eager_step, batches[2]


def _expected():
    model, _, _, eager_step, (x, eps) = _setup()
    stats = eager_step(x, eps)
    return stats, {k: v.clone() for k, v in model.state_dict().items()}


class _FakeGraph:
    """Stands in for torch.cuda.CUDAGraph on the CPU: the 'captured' body runs once, for real,
    and replay does whatever the test asks (nothing: a faithful graph; a nudge: a wrong one)."""

    replay_effect = None

    def replay(self):
        if _FakeGraph.replay_effect:
            _FakeGraph.replay_effect()


def _fake_cuda(monkeypatch, effect=None, fail=False):
    @contextlib.contextmanager
    def graph(_g):
        if fail:
            raise RuntimeError("operation not permitted when stream is capturing\nmore detail")
        yield

    _FakeGraph.replay_effect = effect
    monkeypatch.setattr(torch.cuda, "CUDAGraph", _FakeGraph)
    monkeypatch.setattr(torch.cuda, "graph", graph)


def _same(model, expected):
    return all(torch.equal(v, expected[k]) for k, v in model.state_dict().items())


def test_a_faithful_graph_is_kept_and_the_step_equals_the_eager_one(monkeypatch):
    stats_e, expected = _expected()
    model, optimizer, step_fn, eager_step, (x, eps) = _setup()
    _fake_cuda(monkeypatch)
    graphed, stats, path = capture(step_fn, list(model.parameters()), optimizer, eager_step, x, eps)
    assert graphed is not None and path == "CUDA graph: one launch per step"
    assert torch.equal(stats, stats_e) and _same(model, expected)
    assert torch.equal(graphed.x, x) and torch.equal(
        graphed.noise[0], eps
    )  # the graph's inputs hold the batch
    assert optimizer.state_dict()["state"][0]["step"].item() == 3  # one step, not two


def test_a_graph_that_disagrees_is_dropped_and_the_step_is_still_right(monkeypatch):
    stats_e, expected = _expected()
    model, optimizer, step_fn, eager_step, (x, eps) = _setup()
    _fake_cuda(monkeypatch, effect=lambda: model.enc_head.weight.data.add_(0.01))
    graphed, stats, path = capture(step_fn, list(model.parameters()), optimizer, eager_step, x, eps)
    assert graphed is None and "differed from the eager one by" in path
    assert torch.equal(stats, stats_e) and _same(model, expected)
    assert optimizer.state_dict()["state"][0]["step"].item() == 3  # two warm-up steps and this one


def test_a_capture_that_fails_falls_back_to_the_eager_step(monkeypatch):
    stats_e, expected = _expected()
    model, optimizer, step_fn, eager_step, (x, eps) = _setup()
    _fake_cuda(monkeypatch, fail=True)
    graphed, stats, path = capture(step_fn, list(model.parameters()), optimizer, eager_step, x, eps)
    assert graphed is None
    assert path == "eager step (CUDA graph capture failed: operation not permitted when stream is capturing)"
    assert torch.equal(stats, stats_e) and _same(model, expected)


@pytest.mark.integration
def test_cpu_runs_say_they_are_not_graphed(tmp_path):
    from explorer.config import TrainConfig
    from explorer.train.run import start_run
    from explorer.train.runfolder import RunFolder

    cfg = TrainConfig(epochs=1, limit=200, test_limit=100, device="cpu", log_every=5)
    start_run(tmp_path / "r", ModelConfig(hidden=(16,), latent_dim=2), cfg, progress=False)
    assert RunFolder(tmp_path / "r").read_status()["path"] == "single process on cpu"


def test_a_wake_sleep_step_is_captured_with_all_its_noise(monkeypatch):
    """Wake-sleep's step takes three noise tensors (eps, the sleep phase's z and image noise): the
    capture checks the graph against the eager step on all of them, and a replay copies each in."""
    from explorer.config import ModelConfig, TrainConfig
    from explorer.model import VAE
    from explorer.train.steps import EagerStep, Loss, step_noise

    def setup():
        torch.manual_seed(0)
        model = VAE(ModelConfig(latent_dim=2, hidden=(8,), activation="tanh", image_shape=(1, 4, 4))).double()
        cfg = TrainConfig(algorithm="wake-sleep", optimizer="adagrad", lr=0.05)
        optimizer = torch.optim.Adagrad(model.parameters(), lr=0.05)
        return model, optimizer, Loss(model, cfg), EagerStep(Loss(model, cfg), optimizer), cfg

    torch.manual_seed(1)
    x = torch.bernoulli(torch.rand(6, 1, 4, 4, dtype=torch.float64))
    model, optimizer, loss, eager, cfg = setup()
    noise = tuple(n.double() for n in step_noise(model, cfg, 6, "cpu"))
    expected_stats = eager(x, *noise)
    expected = {k: v.clone() for k, v in model.state_dict().items()}
    model, optimizer, loss, eager, cfg = setup()
    _fake_cuda(monkeypatch)
    graphed, stats, path = capture(loss, list(model.parameters()), optimizer, eager, x, *noise)
    assert graphed is not None and path == "CUDA graph: one launch per step"
    assert torch.equal(stats, expected_stats) and _same(model, expected)
    fresh = tuple(torch.rand_like(n) for n in noise)
    graphed(x, *fresh)
    assert len(graphed.noise) == 3 and all(torch.equal(s, f) for s, f in zip(graphed.noise, fresh))
