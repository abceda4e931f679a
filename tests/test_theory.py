"""The Theory page's library (explorer.theory), each figure against an independent reference:
scikit-learn's GaussianMixture, closed-form Gaussian KLs, torch.distributions, Monte Carlo,
brute-force grids and float64."""

import math
import time

import numpy as np
import pytest
import torch
from hypothesis import assume, given, reject, settings
from hypothesis import strategies as st
from sklearn.mixture import GaussianMixture
from torch.distributions import Categorical, MultivariateNormal, Normal, kl_divergence

from explorer.errors import ExplorerError
from explorer.model import VAE, ModelConfig
from explorer.objectives import kl_standard_normal, log_normal_diag, log_standard_normal
from explorer.theory import divergences, evidence, gradients, mean_field, mixtures
from explorer.theory.budget import in_stages

# -- EM -------------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    true_k=st.integers(1, 4),
    spread=st.floats(0.2, 2.0),
    n=st.integers(20, 200),
    seed=st.integers(0, 10_000),
    fit=st.integers(1, 4),
    start_seed=st.integers(0, 10_000),
)
def test_em_never_lowers_the_log_likelihood(true_k, spread, n, seed, fit, start_seed):
    x, _ = mixtures.sample_mixture(true_k, spread, n, seed)
    try:  # exact EM (no covariance floor): the theorem's setting
        run = mixtures.em(x, mixtures.initial_mixture(x, fit, start_seed), iterations=30, tol=0.0)
    except np.linalg.LinAlgError:  # a component collapsed onto a point: no maximum to climb to
        reject()
    # A component left with fewer than 3 points' worth of responsibility nears a singular
    # covariance, where the likelihood is unbounded and float rounding, not EM, decides each step.
    assume(min(m.weights.min() for m in run.mixtures) * n >= 3)
    steps = np.diff(run.log_likelihood)
    assert (steps >= -1e-9 * np.abs(run.log_likelihood[1:]).clip(1)).all(), steps.min()


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # tol 1e-300: all iterations
@pytest.mark.parametrize("seed", range(6))
def test_em_matches_scikit_learn_from_the_same_start(seed):
    x, _ = mixtures.sample_mixture(3, 0.8, 250, seed)
    start = mixtures.initial_mixture(x, 3, seed)
    iterations = 15
    # every iteration, as scikit-learn runs them: at convergence a rounding-size fall (1e-13 nats)
    # stopped tol=0.0 early (seed 5, at 7 iterations, with numpy 2.4)
    run = mixtures.em(x, start, iterations=iterations, tol=-math.inf)
    gm = GaussianMixture(
        3,
        tol=1e-300,
        reg_covar=0.0,
        max_iter=iterations,
        weights_init=start.weights,
        means_init=start.means,
        precisions_init=np.linalg.inv(start.covariances),
    )
    gm.fit(x)
    assert run.iterations == iterations
    assert run.log_likelihood[-1] == pytest.approx(gm.score(x) * len(x), rel=1e-9)
    np.testing.assert_allclose(run.mixtures[-1].means, gm.means_, rtol=1e-7, atol=1e-9)
    assert mixtures.sklearn_log_likelihood(x, start, iterations) == pytest.approx(
        run.log_likelihood[-1], rel=1e-9
    )


def test_the_e_step_log_likelihood_is_the_mixture_density():
    x, _ = mixtures.sample_mixture(2, 1.0, 50, 3)
    m = mixtures.initial_mixture(x, 2, 0)
    resp, ll = mixtures.e_step(x, m)
    dist = [
        MultivariateNormal(torch.tensor(mu), torch.tensor(cov)) for mu, cov in zip(m.means, m.covariances)
    ]
    dens = sum(w * d.log_prob(torch.tensor(x)).exp() for w, d in zip(m.weights, dist))
    assert ll == pytest.approx(dens.log().sum().item(), rel=1e-10)
    np.testing.assert_allclose(resp.sum(1), 1.0)


# -- CAVI for the Bayesian mixture of Gaussians ---------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    k=st.integers(1, 5), n=st.integers(10, 150), prior_var=st.floats(1.0, 50.0), seed=st.integers(0, 10_000)
)
def test_cavi_raises_the_elbo_at_every_sweep(k, n, prior_var, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, math.sqrt(prior_var), size=(k, 2))[rng.integers(k, size=n)] + rng.standard_normal(
        (n, 2)
    )
    _, elbos = mixtures.cavi(x, k, prior_var, iterations=25, seed=seed)
    assert (np.diff(elbos) >= -1e-9 * np.abs(elbos[1:])).all(), np.diff(elbos).min()


def test_the_cavi_elbo_is_its_monte_carlo_expectation():
    """The closed-form ELBO against E_q[log p(x, c, mu) - log q(c, mu)] by sampling q, through
    torch.distributions' densities."""
    rng = np.random.default_rng(0)
    x = rng.normal(0, 3, size=(3, 2))[rng.integers(3, size=30)] + rng.standard_normal((30, 2))
    states, elbos = mixtures.cavi(x, 3, 9.0, iterations=3, seed=1)
    s = states[-1]
    g = torch.Generator().manual_seed(0)
    draws = 40_000
    m, sd = torch.tensor(s.m), torch.tensor(s.s2).sqrt()
    mu = m + sd[:, None] * torch.randn(draws, *m.shape, generator=g, dtype=torch.float64)  # (S, K, 2)
    q_c = Categorical(probs=torch.tensor(s.phi))
    c = q_c.sample((draws,))  # (S, N)
    xt = torch.tensor(x)
    chosen = torch.gather(mu, 1, c[..., None].expand(-1, -1, 2))  # (S, N, 2)
    log_p = (
        Normal(0.0, 3.0).log_prob(mu).sum((1, 2))
        - len(x) * math.log(3)
        + Normal(chosen, 1.0).log_prob(xt).sum((1, 2))
    )
    log_q = Normal(m, sd[:, None]).log_prob(mu).sum((1, 2)) + q_c.log_prob(c).sum(1)
    values = log_p - log_q
    se = values.std().item() / math.sqrt(draws)
    assert abs(values.mean().item() - elbos[-1]) < 4 * se + 1e-6


# -- mean field on a correlated Gaussian ----------------------------------------------------------


@pytest.mark.parametrize("rho", [-0.9, -0.3, 0.0, 0.5, 0.95])
def test_mean_field_variances_are_the_closed_form(rho):
    mu, cov = mean_field.correlated(rho, 1.5, 0.7, mean=(1.0, -2.0))
    mf = mean_field.cavi_gaussian(mu, cov, sweeps=300)  # converges as rho^2 per sweep
    np.testing.assert_allclose(mf.variances, np.diag(cov) * (1 - rho**2), rtol=1e-12)
    np.testing.assert_allclose(mf.path[-1], mu, atol=1e-6)  # the fixed point is the true mean
    p, q = (
        MultivariateNormal(torch.tensor(mu), torch.tensor(cov)),
        MultivariateNormal(torch.tensor(mf.path[-1]), torch.tensor(mf.q_cov)),
    )
    assert mf.kl_reverse == pytest.approx(kl_divergence(q, p).item(), abs=1e-9)
    assert mf.kl_reverse == pytest.approx(mean_field.mutual_information(rho), abs=1e-9)


def test_the_mean_field_fixed_point_minimises_the_reverse_kl():
    """Over all factorised Gaussians, found by a general optimiser: the same variances."""
    from scipy.optimize import minimize

    mu, cov = mean_field.correlated(0.8)

    def kl(theta):
        return mean_field.kl_gaussians(theta[:2], np.diag(np.exp(theta[2:])), mu, cov)

    best = minimize(kl, np.array([0.5, -0.5, 0.0, 0.0]), method="BFGS", options={"gtol": 1e-10})
    np.testing.assert_allclose(np.exp(best.x[2:]), mean_field.cavi_gaussian(mu, cov).variances, rtol=1e-5)


# -- KL's two directions --------------------------------------------------------------------------


def test_grid_kl_matches_the_closed_form():
    grid = np.linspace(-30, 30, 20001)
    for m1, v1, m2, v2 in [(0, 1, 0, 1), (0.5, 2, -1, 0.5), (3, 0.3, 0, 4)]:
        on_grid = divergences.kl_on_grid(
            divergences.normal_log_density(grid, m1, v1), divergences.normal_log_density(grid, m2, v2), grid
        )
        closed = kl_divergence(Normal(m1, math.sqrt(v1)), Normal(m2, math.sqrt(v2))).item()
        assert on_grid == pytest.approx(closed, abs=1e-6)
        assert divergences.gaussian_kl(m1, v1, m2, v2) == pytest.approx(closed, abs=1e-6)


def test_a_single_gaussian_target_is_fitted_exactly_both_ways():
    fits = divergences.fit_both(divergences.Bimodal(separation=0.0, sd=1.3))
    for mean, var in (fits.forward, fits.reverse):
        assert mean == pytest.approx(0.0, abs=1e-4) and var == pytest.approx(1.69, rel=1e-4)
    assert max(fits.forward_kl.values()) < 1e-8 and max(fits.reverse_kl.values()) < 1e-7


def test_forward_kl_covers_the_modes_and_reverse_kl_seeks_one():
    target = divergences.Bimodal(separation=6.0, sd=0.7, weight=0.4)
    fits = divergences.fit_both(target)
    grid, p = fits.grid, np.exp(fits.log_p)
    mean = np.trapezoid(grid * p, grid)  # the moments by brute force on the grid
    assert fits.forward == pytest.approx((mean, np.trapezoid((grid - mean) ** 2 * p, grid)), rel=1e-6)
    assert fits.forward[1] > 9  # mass-covering: spans both modes 6 apart
    assert min(abs(fits.reverse[0] - m) for m in target.modes) < 0.05  # mode-seeking
    assert fits.reverse[1] == pytest.approx(0.49, rel=0.05)
    assert fits.reverse[0] > 0  # the heavier mode (weight 0.6, on the right) wins
    assert fits.reverse_kl["kl_qp"] < fits.forward_kl["kl_qp"]  # each minimises its own direction
    assert fits.forward_kl["kl_pq"] < fits.reverse_kl["kl_pq"]


def test_the_kl_values_agree_with_monte_carlo_and_a_finer_grid():
    target = divergences.Bimodal(separation=4.0, sd=0.8, weight=0.5)
    fits = divergences.fit_both(target)
    finer = divergences.fit_both(target, points=2 * divergences.GRID_POINTS - 1)
    assert fits.reverse_kl["kl_qp"] == pytest.approx(finer.reverse_kl["kl_qp"], abs=1e-5)
    assert fits.forward_kl["kl_pq"] == pytest.approx(finer.forward_kl["kl_pq"], abs=1e-7)
    g = torch.Generator().manual_seed(0)
    mean, var = fits.reverse
    z = (mean + math.sqrt(var) * torch.randn(400_000, generator=g, dtype=torch.float64)).numpy()
    values = divergences.normal_log_density(z, mean, var) - target.log_density(z)
    assert abs(values.mean() - fits.reverse_kl["kl_qp"]) < 4 * values.std() / math.sqrt(len(z))
    assert fits.reverse == pytest.approx(finer.reverse, abs=1e-3)


# -- the evidence on a tiny model, against a brute-force grid in float64 --------------------------


@pytest.fixture
def tiny_vae():
    torch.manual_seed(3)
    return VAE(ModelConfig(image_shape=(1, 4, 3), hidden=(8,), activation="tanh", latent_dim=2)).double()


def test_evidence_on_a_tiny_model_matches_a_brute_force_grid(tiny_vae, tiny_batch):
    x = tiny_batch[0]
    ev = evidence.evidence(tiny_vae, x, ks=(1, 10, 100, 1000))
    axis = np.linspace(-9, 9, 1201)
    za, zb = np.meshgrid(axis, axis, indexing="ij")
    z = torch.as_tensor(np.stack([za.ravel(), zb.ravel()], 1))
    with torch.no_grad():
        log_joint = tiny_vae.log_prob(x[None], tiny_vae.decoder_params(z[:, None, :]))[
            :, 0
        ] + log_standard_normal(z)
        mu, logvar = tiny_vae.encode(x[None])
        log_q = log_normal_diag(z, mu[0], logvar[0])
    cell = (axis[1] - axis[0]) ** 2
    brute = (torch.logsumexp(log_joint, 0) + math.log(cell)).item()
    recon = (log_q.exp() * (log_joint - log_standard_normal(z))).sum().item() * cell
    brute_elbo = recon - kl_standard_normal(mu, logvar).item()
    assert ev.log_px == pytest.approx(brute, abs=1e-6)
    assert ev.elbo == pytest.approx(brute_elbo, abs=1e-6)
    kl_post = (log_q.exp() * (log_q - (log_joint - brute))).sum().item() * cell
    assert ev.kl_to_posterior == pytest.approx(kl_post, abs=1e-6)
    assert abs(ev.identity_residual) < 1e-6
    assert ev.l_k[1000][0] <= brute + 3 * ev.l_k[1000][1]


def test_evidence_refuses_an_autoencoder_and_a_wrong_shape(tiny_vae):
    ae = VAE(ModelConfig(image_shape=(1, 4, 3), hidden=(8,), latent_dim=2, model="ae"))
    with pytest.raises(ExplorerError, match="autoencoder"):
        evidence.evidence(ae, torch.zeros(1, 4, 3))
    with pytest.raises(ExplorerError, match="the model takes"):
        evidence.evidence(tiny_vae, torch.zeros(1, 3, 4, dtype=torch.float64))


def test_bounds_from_a_pool_are_group_means():
    log_w = torch.randn(1000, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    out = evidence.bounds_from_pool(log_w, (1, 10, 1000))
    assert out[1][0] == pytest.approx(log_w.mean().item())
    assert out[1][1] == pytest.approx(log_w.std().item() / math.sqrt(1000))
    groups = torch.logsumexp(log_w.view(100, 10), 1) - math.log(10)
    assert out[10][0] == pytest.approx(groups.mean().item())
    assert out[1000][0] == pytest.approx((torch.logsumexp(log_w, 0) - math.log(1000)).item())
    assert 0 < out[1000][1] < 0.2


def test_a_budget_stops_the_pool_early_without_changing_its_draws(tiny_vae, tiny_batch):
    """The pool of importance draws grows K by K within the page's budget: a spent budget stops it
    after its first stage (every K up to 100), whose draws are the first of the whole pool's (the
    draws are made before any stage), and an ample one reaches every K with the values of the
    pool drawn without a budget."""
    x = tiny_batch[0]
    ks = (1, 10, 100, 1000)
    whole = evidence.evidence(tiny_vae, x, ks=ks, seed=4)
    spent = evidence.evidence(tiny_vae, x, ks=ks, seed=4, budget=0.0)
    ample = evidence.evidence(tiny_vae, x, ks=ks, seed=4, budget=600.0)
    assert ample.l_k == whole.l_k
    assert sorted(spent.l_k) == [1, 10, 100] and spent.log_px == whole.log_px  # the quadratures are whole
    torch.manual_seed(4)
    eps = torch.randn(1000, 1, 2, dtype=torch.float64)[:100, 0]  # the first 100 of the pool's draws
    with torch.no_grad():
        mu, logvar = (t[0] for t in tiny_vae.encode(x[None]))
        z = mu + torch.exp(0.5 * logvar) * eps
        log_px_z = tiny_vae.decode(z).log_prob(x[None].expand(100, -1, -1, -1))
        log_w = log_px_z + log_standard_normal(z) - log_normal_diag(z, mu, logvar)
    assert spent.l_k[1][0] == pytest.approx(log_w.mean().item(), abs=1e-10)
    assert spent.l_k[100][0] == pytest.approx((torch.logsumexp(log_w, 0) - math.log(100)).item(), abs=1e-10)


def test_stages_within_a_budget_stop_at_the_first_that_would_not_fit():
    done = []

    def compute(a: int, b: int) -> int:
        time.sleep(0.005 * (b - a))
        done.append(b)
        return b

    parts, reached = in_stages(compute, (1, 10, 100), 0.3, time.perf_counter())  # 100 would take 0.45 s
    assert parts == done == [1, 10] and reached == 10
    assert in_stages(lambda a, b: b, (1, 10, 100), None, time.perf_counter()) == ([1, 10, 100], 100)
    assert in_stages(lambda a, b: b, (1, 10, 100), 0.0, time.perf_counter()) == ([1], 1)


def test_a_refined_grid_decodes_only_near_the_mass_and_equals_that_grid_in_full(
    tiny_vae, tiny_batch, monkeypatch
):
    """Doubling the grid keeps its old points and decodes only the new ones near where log p(x, z)
    or q(z|x) has mass: the figures are those of the finer grid computed in full, from fewer
    decodes."""
    decoded = []
    log_joint = evidence.log_joint

    def counted(model, x, z):
        decoded.append(len(z))
        return log_joint(model, x, z)

    x = tiny_batch[1]
    direct = evidence.evidence(tiny_vae, x, ks=(1,), grid=81, tolerance=math.inf)
    monkeypatch.setattr(evidence, "log_joint", counted)
    refined = evidence.evidence(tiny_vae, x, ks=(1,), grid=11, tolerance=0.0, max_grid=81)
    assert refined.grid == direct.grid == 81
    assert sum(decoded[-3:]) < 81**2 - 11**2  # the grids 21, 41, 81: fewer than their new points
    assert refined.log_px == pytest.approx(direct.log_px, abs=1e-9)
    assert refined.kl_to_posterior == pytest.approx(direct.kl_to_posterior, abs=1e-9)
    assert refined.quadrature_error == pytest.approx(direct.quadrature_error, abs=1e-9)


def test_the_picture_interpolates_the_final_grid_in_its_own_coordinates():
    """A tilted Gaussian's log density given on a regular grid in whitened coordinates u
    (z = centre + chol u), pictured on an axis-aligned grid in z: the closed form's density."""
    cov = np.array([[1.0, 0.8], [0.8, 1.0]]) * 0.04
    centre = np.array([0.5, -1.0])
    frame = evidence.Frame(centre, np.linalg.cholesky(cov), np.array([-7.0, -7.0]), np.array([7.0, 7.0]))
    z, axes, _ = frame.points(201)
    truth = MultivariateNormal(torch.as_tensor(centre), torch.as_tensor(cov))
    log_post = truth.log_prob(torch.as_tensor(z)).numpy()
    z1, z2, shown = evidence.picture(frame, axes, z, log_post, centre, np.sqrt(np.diag(cov)))
    g = torch.as_tensor(np.stack(np.meshgrid(z1, z2, indexing="ij"), -1))
    exact = truth.log_prob(g).exp().numpy()
    assert np.abs(shown - exact).max() < 0.01 * exact.max()
    assert shown.sum() * (z1[1] - z1[0]) * (z2[1] - z2[0]) == pytest.approx(1.0, abs=1e-3)


def test_a_picture_binarised_once_is_the_test_sets_binarisation():
    from explorer.data.cache import binarize_fixed, binarize_picture

    levels = torch.randint(0, 256, (1, 28, 28), generator=torch.Generator().manual_seed(2), dtype=torch.uint8)
    assert torch.equal(binarize_picture(levels.float() / 255.0), binarize_fixed(levels[None])[0])
    assert torch.equal(binarize_picture(levels.float() / 255.0, seed=3), binarize_fixed(levels[None], 3)[0])


# -- gradients -------------------------------------------------------------------------------------


def test_per_draw_gradients_are_autograd_of_the_estimators(tiny_vae, tiny_batch):
    """Estimators A and B's pathwise gradients against autograd through the objectives' own log
    densities, and the score function against its definition."""
    x = tiny_batch[:1]
    with torch.no_grad():
        mu, logvar = (t[0] for t in tiny_vae.encode(x))
    eps = torch.randn(5, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    got = gradients.per_draw_gradients(tiny_vae, x, mu, logvar, eps)
    for i in range(len(eps)):
        lam = torch.cat([mu, logvar]).clone().requires_grad_(True)
        m, lv = lam[:2], lam[2:]
        z = m + torch.exp(0.5 * lv) * eps[i]
        log_px = tiny_vae.log_prob(x, tiny_vae.decoder_params(z[None, None]))[0, 0]
        f_a = log_px + log_standard_normal(z) - log_normal_diag(z, m, lv)
        f_b = log_px - kl_standard_normal(m, lv)
        (ga,) = torch.autograd.grad(f_a, lam, retain_graph=True)
        (gb,) = torch.autograd.grad(f_b, lam, retain_graph=True)
        zd = z.detach()
        lam_q = torch.cat([mu, logvar]).clone().requires_grad_(True)
        (score,) = torch.autograd.grad(log_normal_diag(zd, lam_q[:2], lam_q[2:]), lam_q)
        torch.testing.assert_close(got["reparam_a"][i], ga)
        torch.testing.assert_close(got["reparam_b"][i], gb)
        torch.testing.assert_close(got["score"][i], f_a.detach() * score)
        assert got["value_a"][i].item() == pytest.approx(f_a.item())


def test_encoder_variance_is_the_variance_of_full_backward_gradients(tiny_vae, tiny_batch):
    """tr(C J J^T) against the covariance of the encoder-parameter gradients themselves, each
    draw's computed by a full backward pass through the encoder (same draws)."""
    x = tiny_batch[0]
    gv = gradients.gradient_variance(tiny_vae, x, samples=(1, 3), groups=40, seed=5)
    eps = torch.randn(gv.draws, 2, generator=torch.Generator().manual_seed(5)).double()
    params = [p for n, p in tiny_vae.named_parameters() if n.startswith(("encoder", "enc_head"))]
    rows = []
    for e in eps:
        mu, logvar = (t[0] for t in tiny_vae.encode(x[None]))
        z = mu + torch.exp(0.5 * logvar) * e
        log_px = tiny_vae.log_prob(x[None], tiny_vae.decoder_params(z[None, None]))[0, 0]
        f = log_px + log_standard_normal(z) - log_normal_diag(z, mu, logvar)
        rows.append(torch.cat([g.flatten() for g in torch.autograd.grad(f, params)]))
    per_draw = torch.stack(rows)
    for j, s in enumerate((1, 3)):
        means = per_draw[: (len(per_draw) // s) * s].view(-1, s, per_draw.shape[1]).mean(1)
        assert gv.encoder_variance["reparam_a"][j] == pytest.approx(means.var(0).sum().item(), rel=1e-6)


def test_the_encoder_gram_is_that_of_each_output_s_own_backward_pass():
    """J J^T from one batched backward pass against one backward pass per output of (mu, logvar),
    on a convolutional encoder (the batched pass runs through convolutions too)."""
    torch.manual_seed(0)
    conv = VAE(ModelConfig(image_shape=(1, 8, 8), arch="conv", channels=(4, 8), hidden=(16,), latent_dim=3))
    conv = conv.double()
    x = torch.rand(1, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    params = [p for n, p in conv.named_parameters() if n.startswith(("encoder", "enc_head"))]
    mu, logvar = conv.encode(x)
    outputs = torch.cat([mu[0], logvar[0]])
    rows = [
        torch.cat([g.flatten() for g in torch.autograd.grad(o, params, retain_graph=True)]) for o in outputs
    ]
    jac = torch.stack(rows)
    torch.testing.assert_close(gradients.encoder_jacobian_gram(conv, x), jac @ jac.T)


def test_a_budget_picks_the_largest_plan_that_fits(tiny_vae, tiny_batch):
    x = tiny_batch[0]
    spent = gradients.gradient_variance(tiny_vae, x, budget=0.0)
    assert (spent.samples, spent.draws) == (gradients.PLANS[-1][0], 10 * 4)
    ample = gradients.gradient_variance(tiny_vae, x, budget=600.0)
    whole = gradients.gradient_variance(tiny_vae, x)  # the largest plan, (1, 10, 100) x 20: its draws
    assert (ample.samples, ample.draws) == (gradients.SAMPLES, 2000)
    assert ample.encoder_variance == whole.encoder_variance


def test_the_estimators_agree_in_mean_and_the_score_function_is_noisier(tiny_vae, tiny_batch):
    gv = gradients.gradient_variance(tiny_vae, tiny_batch[0], samples=(1, 10, 100), groups=200, seed=0)
    for j in range(4):
        a, s = gv.mean_gradient["reparam_a"][j], gv.mean_gradient["score"][j]
        se = math.hypot(gv.mean_gradient_se["reparam_a"][j], gv.mean_gradient_se["score"][j])
        assert abs(a - s) < 4.5 * se
    assert all(r > 2 for r in gv.ratio("score", "reparam_a"))
    v = gv.encoder_variance["reparam_a"]
    assert v[0] / v[1] == pytest.approx(10, rel=0.4) and v[1] / v[2] == pytest.approx(10, rel=0.6)  # ~1/L


# -- the shipped mnist-z2 (integration) -----------------------------------------------------------


@pytest.fixture(scope="module")
def mnist_z2():
    from explorer.checkpoints import load_checkpoint
    from explorer.data.cache import eval_images

    x, _ = eval_images("mnist", "test", True, 8)
    return load_checkpoint("mnist-z2").eval(), x


@pytest.mark.integration
@pytest.mark.parametrize("index", [0, 2, 3])
def test_the_identity_holds_on_mnist_z2(mnist_z2, index):
    model, x = mnist_z2
    ev = evidence.evidence(model, x[index])
    assert abs(ev.identity_residual) < 0.01  # log p(x) = ELBO + KL(q || p(z|x)), two quadratures
    assert ev.q_mass_on_grid == pytest.approx(1.0, abs=1e-6)
    cell = (ev.z1[1] - ev.z1[0]) * (ev.z2[1] - ev.z2[0])
    assert ev.posterior.sum() * cell == pytest.approx(1.0, abs=0.05)  # the (coarser) picture agrees
    finer = evidence.evidence(model, x[index], grid=2 * evidence.GRID - 1)
    assert finer.log_px == pytest.approx(ev.log_px, abs=0.01)
    assert finer.kl_to_posterior == pytest.approx(ev.kl_to_posterior, abs=0.01)
    double = evidence.evidence(model, x[index], double=True)
    assert double.log_px == pytest.approx(ev.log_px, abs=2e-3)
    means = [ev.l_k[k][0] for k in (1, 10, 100)]
    assert means == sorted(means) and means[0] < means[1] - 1  # L_K rises with K
    for small, big in ((100, 1000), (1000, 5000)):
        assert ev.l_k[big][0] >= ev.l_k[small][0] - 3 * ev.l_k[small][1]
    assert ev.l_k[5000][0] <= ev.log_px + 4 * ev.l_k[5000][1] + 0.01  # a lower bound
    assert abs(ev.l_k[1][0] - ev.elbo) < 4 * ev.l_k[1][1]  # L_1 is the ELBO


@pytest.mark.integration
def test_l_5000_reaches_log_p_x_where_q_covers_the_posterior(mnist_z2):
    model, x = mnist_z2
    for index in (0, 2, 5):
        ev = evidence.evidence(model, x[index])
        assert abs(ev.l_k[5000][0] - ev.log_px) < 0.15


@pytest.mark.integration
def test_quadrature_agrees_with_broad_importance_sampling_where_q_misses_a_mode(mnist_z2):
    """Image 3: q(z|x) sits away from the posterior's main mode, so L_5000 stays 2.5 nats short;
    log p(x) by a broad proposal over the grid's box (200,000 draws) confirms the quadrature."""
    model, x = mnist_z2
    ev = evidence.evidence(model, x[3])
    assert ev.log_px - ev.l_k[5000][0] > 1.0
    centre = torch.tensor([(ev.z1[0] + ev.z1[-1]) / 2, (ev.z2[0] + ev.z2[-1]) / 2])
    scale = torch.tensor([(ev.z1[-1] - ev.z1[0]) / 4, (ev.z2[-1] - ev.z2[0]) / 4])
    draws = 200_000
    z = (centre + scale * torch.randn(draws, 2, generator=torch.Generator().manual_seed(0))).float()
    log_w = evidence.log_joint(model, x[3:4], z).double() - Normal(centre, scale).log_prob(z.double()).sum(1)
    assert (torch.logsumexp(log_w, 0) - math.log(draws)).item() == pytest.approx(ev.log_px, abs=0.1)


@pytest.mark.integration
def test_the_elbo_by_quadrature_agrees_with_estimator_b(mnist_z2):
    from explorer.objectives import elbo_terms

    model, x = mnist_z2
    ev = evidence.evidence(model, x[0])
    torch.manual_seed(0)
    with torch.no_grad():  # 500 estimates of L = 40 draws each
        many = elbo_terms(model, x[:1].expand(500, -1, -1, -1), "analytic", samples=40).elbo.double()
    se = many.std().item() / math.sqrt(len(many))
    assert abs(many.mean().item() - ev.elbo) < 4 * se + 1e-3


@pytest.mark.integration
def test_the_score_function_is_far_noisier_on_mnist_z2(mnist_z2):
    model, x = mnist_z2
    gv = gradients.gradient_variance(model, x[0], samples=(1, 10), groups=50)
    assert min(gv.ratio("score", "reparam_a")) > 20


def test_the_mean_field_picture_draws_q_where_cavi_left_it():
    """At rho = -0.95 ten sweeps leave q's mean far from the optimum (each closes 1 - rho^2 of the
    way); the picture drew q at (0, 0) all the same, beside the path's end and the text's mean."""
    from explorer.theory.figures import mean_field_figure

    mf = mean_field.cavi_gaussian(*mean_field.correlated(-0.95))
    assert np.abs(mf.path[-1]).max() > 0.5  # not converged: the case in point
    q = next(t for t in mean_field_figure(mf).data if t.name.startswith("mean-field q"))
    centre = np.array([np.mean(q.x[:-1]), np.mean(q.y[:-1])])  # the closed ellipse's points
    assert centre == pytest.approx(mf.path[-1], abs=1e-6)
    assert f"after {len(mf.path) - 1} CAVI updates" in q.name


def test_the_kl_picture_shows_both_modes_whatever_their_weights():
    """Modes at +-4, sd 0.2, weight 0.95 on the left: the axis ran around the mean (-3.6) to about
    +3.5 and cut the right mode off; modes that meet were still called "a bimodal target"."""
    from explorer.theory.figures import kl_figure

    fits = divergences.fit_both(divergences.Bimodal(8.0, 0.2, 0.95))
    low, high = kl_figure(fits).layout.xaxis.range
    assert low < -4 - 3 * 0.2 and high > 4 + 3 * 0.2
    met = kl_figure(divergences.fit_both(divergences.Bimodal(0.0, 0.2, 0.95)))
    assert "modes meet" in met.layout.title.text and "bimodal" not in met.layout.title.text
