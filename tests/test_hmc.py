"""explorer.paper: the leapfrog integrator, HMC over per-datapoint chains, step-size adaptation,
the paper's Appendix D marginal-likelihood estimator (against quadrature on a 2-D latent), the
Monte Carlo EM step (Appendix E) and the chains' store. References: closed forms, brute-force
grids in float64, independent chains."""

import math

import pytest
import safetensors.torch
import torch

from explorer.likelihood.hmc import (
    adapt_global_step_size,
    adapt_step_size,
    hmc_step,
    leapfrog,
    sample_chains,
    value_and_grad,
)
from explorer.likelihood.marginal import log_joint, paper_estimate, paper_log_likelihood
from explorer.model import VAE, ModelConfig
from explorer.train.mcem import ChainStore, mcem_step


@pytest.fixture(autouse=True)
def _one_thread():
    """These tensors are tiny: a second thread only waits for the first (on a busy 2-core host a
    tiny MCEM step took 0.6 s with two threads, 0.03 s with one)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# A correlated 2-D Gaussian: stds 1 and 0.5, correlation 0.9 (eigen-stds 1.10 and 0.198).
MEAN = torch.tensor([1.0, -2.0], dtype=torch.float64)
COV = torch.tensor([[1.0, 0.45], [0.45, 0.25]], dtype=torch.float64)
PRECISION = torch.linalg.inv(COV)


def gaussian_log_density(z: torch.Tensor) -> torch.Tensor:
    d = z - MEAN
    return -0.5 * ((d @ PRECISION) * d).sum(-1)


def gaussian_grad(z: torch.Tensor) -> torch.Tensor:
    return -(z - MEAN) @ PRECISION


def banana_grad(z: torch.Tensor) -> torch.Tensor:
    """Gradient of log pi = -z0^2 / 2 - (z1 - z0^2)^2 / 2: a curved, non-Gaussian target."""
    r = z[..., 1] - z[..., 0] ** 2
    return torch.stack([-z[..., 0] + 2 * z[..., 0] * r, -r], -1)


def tiny_decoder(seed: int = 0, sharpen: float = 2.0) -> VAE:
    """An MLP VAE on 4x3 binary images with a 2-D latent whose decoder is scaled up, so that
    its posteriors are narrower than the prior and not Gaussian; float64."""
    torch.manual_seed(seed)
    model = VAE(ModelConfig(image_shape=(1, 4, 3), hidden=(16,), activation="tanh", latent_dim=2))
    model = model.double()
    with torch.no_grad():
        for p in [*model.decoder.parameters(), *model.dec_head.parameters()]:
            p.mul_(sharpen)
    return model


def quadrature_log_px(model: VAE, x: torch.Tensor, half_width: float = 7.0, n: int = 701) -> torch.Tensor:
    """log p(x) = log int p(x|z) p(z) dz (B,) by the midpoint rule on an n x n grid over
    [-half_width, half_width]^2 (the prior's mass outside is below 1e-11)."""
    t = torch.linspace(-half_width, half_width, n, dtype=torch.float64)
    z = torch.stack(torch.meshgrid(t, t, indexing="ij"), -1).reshape(-1, 1, 2)
    with torch.no_grad():
        values = torch.cat([log_joint(model, x)(chunk) for chunk in z.split(50_000)])
    return torch.logsumexp(values, 0) + 2 * math.log(t[1] - t[0])


def binary_images(n: int, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.bernoulli(torch.rand(n, 1, 4, 3, generator=g, dtype=torch.float64), generator=g)


@pytest.mark.parametrize("target", ["gaussian", "decoder"])
def test_leapfrog_is_reversible(target):
    """Forward n steps, negate the momentum, n steps again: back at the start with the momentum
    negated, to 1e-5 in float64, with a different step size per chain."""
    torch.manual_seed(0)
    if target == "gaussian":
        grad, z0 = gaussian_grad, torch.randn(3, 2, dtype=torch.float64)
    else:
        model, x = tiny_decoder(), binary_images(3)
        fn = log_joint(model, x)

        def grad(z):
            return value_and_grad(fn, z)[1]

        z0 = torch.randn(3, 2, dtype=torch.float64)
    p0 = torch.randn(3, 2, dtype=torch.float64)
    steps = torch.tensor([0.05, 0.1, 0.15], dtype=torch.float64)
    z1, p1 = leapfrog(z0, p0, grad, steps, 20)
    assert (z1 - z0).norm(dim=-1).min() > 0.1  # it went somewhere
    z2, p2 = leapfrog(z1, -p1, grad, steps, 20)
    torch.testing.assert_close(z2, z0, atol=1e-5, rtol=0)
    torch.testing.assert_close(p2, -p0, atol=1e-5, rtol=0)


@pytest.mark.parametrize("grad", [gaussian_grad, banana_grad], ids=["gaussian", "banana"])
def test_leapfrog_preserves_volume(grad):
    """The Jacobian of (z, p) -> leapfrog(z, p) has determinant 1 (Neal 2011, Section 5.2.3.3),
    by torch.autograd.functional.jacobian on one chain of a 2-D target."""
    torch.manual_seed(1)
    z0, p0 = torch.randn(1, 2, dtype=torch.float64), torch.randn(1, 2, dtype=torch.float64)

    def flow(state):
        z, p = leapfrog(state[:2][None], state[2:][None], grad, 0.2, 7)
        return torch.cat([z[0], p[0]])

    jac = torch.autograd.functional.jacobian(flow, torch.cat([z0[0], p0[0]]))
    assert not torch.allclose(jac, torch.eye(4, dtype=torch.float64))
    assert torch.linalg.det(jac).item() == pytest.approx(1.0, abs=1e-10)


def test_hmc_recovers_a_correlated_gaussian():
    """2,000 independent chains from an over-dispersed start, 100 transitions each, the last state
    of each kept: 2,000 independent draws (n_eff = 2,000). Whitened by the target's Cholesky
    factor (w = C^-1 (z - mean)), their mean is within 4 standard errors (1 / sqrt(n)) of 0 and
    their covariance within 4 standard errors of I (sqrt(2 / n) on the diagonal, sqrt(1 / n) off
    it). The step (0.18, near the narrow direction's std 0.198) is large enough that leapfrog
    without the Metropolis test inflates that direction's variance by 7-9 standard errors."""
    torch.manual_seed(2)
    n = 2000
    z = MEAN + 3 * torch.randn(n, 2, dtype=torch.float64)
    steps = torch.full((n,), 0.18, dtype=torch.float64)
    states, _, _, accept = sample_chains(z, gaussian_log_density, steps, 5, 100)
    assert 0.5 < accept.mean().item() < 0.99  # the test is there to reject
    chol = torch.linalg.cholesky(COV)
    w = torch.linalg.solve_triangular(chol, (states[-1] - MEAN).T, upper=False).T  # (n, 2)
    assert (w.mean(0).abs() < 4 / math.sqrt(n)).all(), w.mean(0)
    cov = torch.cov(w.T)
    assert ((cov.diagonal() - 1).abs() < 4 * math.sqrt(2 / n)).all(), cov
    assert cov[0, 1].abs() < 4 / math.sqrt(n), cov


def test_step_size_adaptation_reaches_ninety_percent_per_chain():
    """Chains on N(0, s^2 I_3) with s = 0.1, 1 and 10 side by side, all from step 1: after 300
    adapted transitions each group accepts 85-95% with the step sizes frozen, and each chain's
    step size has followed its own target's scale."""
    torch.manual_seed(3)
    scales = torch.tensor([0.1, 1.0, 10.0], dtype=torch.float64).repeat_interleave(100)

    def log_density(z):
        return -0.5 * (z / scales[:, None]).pow(2).sum(-1)

    z = scales[:, None] * torch.randn(300, 3, dtype=torch.float64)
    steps = torch.ones(300, dtype=torch.float64)
    states, _, steps, _ = sample_chains(z, log_density, steps, 10, 300, adapt=True, target=0.9)
    _, _, _, accept = sample_chains(states[-1], log_density, steps, 10, 200)
    for group in accept.view(3, 100):
        assert 0.85 < group.mean().item() < 0.95
    medians = steps.view(3, 100).median(1).values
    ratios = medians[1:] / medians[:-1]  # ~10 each
    assert ((ratios > 5) & (ratios < 20)).all(), medians


def test_adaptation_moves_the_step_the_right_way():
    step = torch.ones(2, dtype=torch.float64)
    moved = adapt_step_size(step, torch.tensor([1.0, 0.0], dtype=torch.float64), target=0.9)
    assert moved[0] > 1 > moved[1]
    assert adapt_global_step_size(step, torch.tensor([1.0, 0.9]))[0] == pytest.approx(1.25)
    assert adapt_global_step_size(step, torch.tensor([1.0, 0.7]))[0] == pytest.approx(0.8)


def test_a_rejected_or_diverged_proposal_keeps_the_state():
    """A step of 1e3 on a narrow target diverges: every chain stays where it was."""
    torch.manual_seed(4)
    z = torch.randn(50, 2, dtype=torch.float64) * 0.1 + MEAN
    out = hmc_step(z, gaussian_log_density, 1e3, 10)
    assert not out.accept.any()
    torch.testing.assert_close(out.z, z)
    torch.testing.assert_close(out.log_density, gaussian_log_density(z))


@pytest.mark.parametrize("density", ["kde", "gaussian"])
def test_the_appendix_d_estimator_agrees_with_quadrature(density):
    """On 8 images of a decoder with a 2-D latent, the estimate (400 posterior samples, q fitted
    to half of them, 4 leapfrog steps) is within 0.5 nats of log p(x) by a 701 x 701 grid for every
    image and within 0.15 on average; chains start from the prior (no encoder needed)."""
    model, x = tiny_decoder(), binary_images(8)
    exact = quadrature_log_px(model, x)
    torch.manual_seed(5)
    est = paper_estimate(model, x, n_samples=400, start="prior", density=density)
    error = est.log_px - exact
    assert error.abs().max().item() < 0.5, error
    assert error.mean().abs().item() < 0.15, error
    assert est.accept_rate.mean().item() > 0.8


def test_the_estimator_starts_from_the_encoder_or_given_states():
    model, x = tiny_decoder(), binary_images(4)
    torch.manual_seed(6)
    a = paper_log_likelihood(model, x, n_samples=8, burn_in=5)  # from the best of q(z|x)'s draws
    c = paper_log_likelihood(model, x, n_samples=8, burn_in=5, start="encoder")  # from its mean
    assert torch.isfinite(c).all()
    b = paper_log_likelihood(model, x, n_samples=8, burn_in=5, start=torch.zeros(4, 2, dtype=torch.float64))
    assert a.shape == b.shape == (4,) and torch.isfinite(a).all() and torch.isfinite(b).all()
    with pytest.raises(ValueError, match="at least 4"):
        paper_log_likelihood(model, x, n_samples=3)
    with pytest.raises(ValueError, match=r"start states must be \(4, 2\)"):
        paper_log_likelihood(model, x, start=torch.zeros(3, 2))


def test_a_decoder_alone_starts_from_its_best_prior_draw():
    """Monte Carlo EM's model has no encoder: "auto" starts each chain at the best of
    PRIOR_DRAWS prior draws, in the heaviest part of p(x, z) a search of p(z) finds (a chain at
    90% acceptance does not cross between separated modes)."""
    from explorer.likelihood.marginal import PRIOR_DRAWS, start_states

    model, x = tiny_decoder(sharpen=4.0), binary_images(16)
    model.config.model = "ae"  # no recognition model: "auto" cannot use an encoder
    assert not model.config.variational
    torch.manual_seed(0)
    best = start_states(model, x, "auto")
    one = start_states(model, x, "prior")
    fn = log_joint(model, x)
    assert best.shape == one.shape == (16, 2)
    assert (fn(best) >= fn(one)).float().mean() > 0.9  # a single draw rarely beats the best of many
    # the best draw is no worse than every draw of a fresh search of the same size
    torch.manual_seed(1)
    search = torch.randn(PRIOR_DRAWS, 16, 2, dtype=torch.float64)
    assert (fn(best) >= fn(search).max(0).values - 3.0).all()


def test_the_bound_curve_starts_training_chains_where_it_is_told(monkeypatch):
    """The bound curve hands Monte Carlo EM's chain states to the estimator for its training
    images, and its own start for the test images."""
    import explorer.likelihood.marginal as marginal
    from explorer.train.bounds import BoundCurve

    seen = []

    def record(model, x, start="auto", **kw):
        seen.append(start)
        return torch.zeros(len(x))

    monkeypatch.setattr(marginal, "paper_log_likelihood", record)
    model, x = tiny_decoder(), binary_images(6)
    curve = BoundCurve(x, x[:3], 4, seed=0, samples=0, estimator="paper-hmc")
    states = torch.ones(6, 2, dtype=torch.float64)
    point = curve.evaluate(model, 10_000, train_start=states)
    assert point["train_bound"] == point["test_bound"] == 0.0
    assert torch.equal(seen[0], states) and seen[1] == "auto"


@pytest.mark.parametrize("shared", [True, False], ids=["shared-step", "step-per-chain"])
def test_monte_carlo_em_raises_the_marginal_likelihood(shared):
    """40 MCEM iterations (10 leapfrog steps, 5 Adagrad updates each) on 32 images drawn from a
    sharper decoder raise the mean log p(x) by quadrature by more than 1 nat; the chains move and
    their step size adapts (one shared, as the paper's code, or one per chain)."""
    truth = tiny_decoder(seed=10, sharpen=3.0)
    with torch.no_grad():
        x = truth.decode(torch.randn(32, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0)))
        x = torch.bernoulli(x.mean, generator=torch.Generator().manual_seed(1))
    model = tiny_decoder(seed=11, sharpen=1.0)
    before = quadrature_log_px(model, x, n=201).mean().item()
    chains = ChainStore.create(32, 2, generator=torch.Generator().manual_seed(2))
    chains.z, chains.step_size = chains.z.double(), chains.step_size.double()
    chains.shared_step = chains.shared_step.double()
    start = chains.z.clone()
    optimizer = torch.optim.Adagrad(model.parameters(), lr=0.1)
    index = torch.arange(32)
    torch.manual_seed(7)
    for _ in range(40):
        z, step = chains[index]
        out = mcem_step(model, x, z, chains.shared_step if shared else step, optimizer)
        assert out.step_size.shape == (() if shared else (32,))
        chains.update(index, out.z, out.step_size)
    after = quadrature_log_px(model, x, n=201).mean().item()
    assert after > before + 1.0, (before, after)
    assert (chains.z - start).norm(dim=-1).median() > 0.1
    steps = chains.shared_step if shared else chains.step_size
    assert not torch.equal(steps, torch.full_like(steps, 0.1))


def test_the_chain_store_round_trips_through_safetensors():
    store = ChainStore.create(10, 3, generator=torch.Generator().manual_seed(0))
    index = torch.tensor([2, 7])
    store.update(index, torch.ones(2, 3), torch.tensor([0.5, 0.25]))
    store.update(index, torch.ones(2, 3), torch.tensor(0.3))  # the shared step
    z, step = store[index]
    assert torch.equal(z, torch.ones(2, 3)) and torch.equal(step, torch.tensor([0.5, 0.25]))
    assert store.shared_step.item() == pytest.approx(0.3)
    blob = safetensors.torch.save(store.state_dict())
    other = ChainStore.create(10, 3, generator=torch.Generator().manual_seed(1))
    other.load_state_dict(safetensors.torch.load(blob))
    assert torch.equal(other.z, store.z) and torch.equal(other.step_size, store.step_size)
    assert torch.equal(other.shared_step, store.shared_step)
    with pytest.raises(ValueError, match="same data limit"):
        ChainStore.create(11, 3).load_state_dict(store.state_dict())
    with pytest.raises(ValueError, match="no MCEM chains"):
        ChainStore.create(10, 3).load_state_dict({"chains.z": store.z})
