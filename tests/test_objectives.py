"""The estimators against independent references: torch.distributions, exact identities, and a
brute-force integral over a 1-D latent."""

import math

import pytest
import torch
from torch.distributions import Bernoulli, Independent, Normal, kl_divergence

from explorer.model import VAE, ModelConfig
from explorer.objectives import (
    elbo_terms,
    importance_log_likelihood,
    iwae_bound,
    kl_standard_normal,
    log_normal_diag,
    log_standard_normal,
)


def test_kl_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(7, 5, generator=g, dtype=torch.float64) * 2
    logvar = torch.randn(7, 5, generator=g, dtype=torch.float64)
    q = Independent(Normal(mu, torch.exp(0.5 * logvar)), 1)
    p = Independent(Normal(torch.zeros_like(mu), torch.ones_like(mu)), 1)
    torch.testing.assert_close(kl_standard_normal(mu, logvar), kl_divergence(q, p))
    assert kl_standard_normal(mu, logvar).shape == (7,)
    assert torch.all(kl_standard_normal(torch.zeros(3, 4), torch.zeros(3, 4)) == 0)


def test_log_densities_match_normal_log_prob():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(3, 4, 2, generator=g, dtype=torch.float64)
    mu = torch.randn(4, 2, generator=g, dtype=torch.float64)
    logvar = torch.randn(4, 2, generator=g, dtype=torch.float64)
    ref = Normal(mu, torch.exp(0.5 * logvar)).log_prob(z).sum(-1)
    torch.testing.assert_close(log_normal_diag(z, mu, logvar), ref)
    torch.testing.assert_close(log_standard_normal(z), Normal(0.0, 1.0).log_prob(z).sum(-1))


def test_bernoulli_decoder_log_prob(tiny_model, tiny_batch):
    z = torch.randn(5, 2, dtype=torch.float64)
    dist = tiny_model.decode(z)
    assert dist.mean.shape == (5, 1, 4, 3)
    logits = tiny_model.decoder_params(z).reshape(5, 1, 4, 3)
    ref = Bernoulli(logits=logits).log_prob(tiny_batch).sum((1, 2, 3))
    torch.testing.assert_close(dist.log_prob(tiny_batch), ref)
    torch.testing.assert_close(tiny_model.log_prob(tiny_batch, tiny_model.decoder_params(z)), ref)


def test_bernoulli_log_prob_and_its_gradients_match_bce_with_logits():
    """The written-out Bernoulli likelihood (softplus through exp/log, gradient x - sigmoid(l))
    against PyTorch's BCE with logits: values from far negative to far positive logits, binary
    and grey x, and the gradients of both arguments (gradcheck in float64)."""
    from explorer.model import bernoulli_log_prob

    g = torch.Generator().manual_seed(0)
    logits = torch.cat([torch.linspace(-90, 90, 50).unsqueeze(0), torch.randn(3, 50, generator=g) * 6])
    for x in (torch.bernoulli(torch.full((4, 50), 0.4), generator=g), torch.rand(4, 50, generator=g)):
        reference = -torch.nn.functional.binary_cross_entropy_with_logits(
            logits.double(), x.double(), reduction="none"
        )
        torch.testing.assert_close(
            bernoulli_log_prob(logits, x).double(), reference.sum(-1), rtol=1e-6, atol=1e-4
        )
        lg = logits.double().div(10).requires_grad_()  # moderate logits: finite differences hold
        xg = x.double().requires_grad_()
        assert torch.autograd.gradcheck(bernoulli_log_prob, (lg, xg))
        (bernoulli_log_prob(lg, xg) * torch.arange(1.0, 5.0, dtype=torch.float64)).sum().backward()
        lr = lg.detach().clone().requires_grad_()
        (-torch.nn.functional.binary_cross_entropy_with_logits(lr, x.double(), reduction="none").sum(-1)
         * torch.arange(1.0, 5.0, dtype=torch.float64)).sum().backward()  # fmt: skip
        torch.testing.assert_close(lg.grad, lr.grad)


def test_gaussian_decoder_log_prob_matches_normal():
    torch.manual_seed(0)
    model = VAE(ModelConfig(image_shape=(1, 4, 3), hidden=(8,), latent_dim=3, likelihood="gaussian")).double()
    z = torch.randn(6, 3, dtype=torch.float64)
    x = torch.rand(6, 1, 4, 3, dtype=torch.float64)
    mean_logit, logvar = model.decoder_params(z).chunk(2, -1)
    logvar = logvar.clamp(min=model.config.gaussian_min_logvar)
    ref = Normal(torch.sigmoid(mean_logit), torch.exp(0.5 * logvar)).log_prob(x.flatten(1)).sum(-1)
    torch.testing.assert_close(model.decode(z).log_prob(x), ref)
    torch.testing.assert_close(model.log_prob(x, model.decoder_params(z)), ref)
    assert model.decode(z).mean.shape == (6, 1, 4, 3)


def test_l1_equals_the_elbo_of_estimator_a(tiny_model, tiny_batch):
    torch.manual_seed(3)
    l1 = importance_log_likelihood(tiny_model, tiny_batch, k=1)
    torch.manual_seed(3)
    elbo_a = elbo_terms(tiny_model, tiny_batch, "mc", samples=1).elbo
    torch.testing.assert_close(l1, elbo_a)


def test_estimators_a_and_b_agree_in_expectation(tiny_model, tiny_batch):
    torch.manual_seed(0)
    n = 40_000
    a = elbo_terms(tiny_model, tiny_batch, "mc", samples=n)
    b = elbo_terms(tiny_model, tiny_batch, "analytic", samples=n)
    # The KL parts: the Monte Carlo average converges to the analytic KL.
    mu, logvar = tiny_model.encode(tiny_batch)
    z = tiny_model.reparameterize(mu, logvar, n)
    kl_samples = log_normal_diag(z, mu, logvar) - log_standard_normal(z)  # (n, B)
    se = kl_samples.std(0) / math.sqrt(n)
    assert torch.all((a.kl - b.kl).abs() < 5 * se + 1e-9), (a.kl, b.kl, se)
    # The whole bound: A and B agree to within Monte Carlo error.
    assert torch.allclose(a.elbo, b.elbo, atol=0.05), (a.elbo, b.elbo)


def test_lk_does_not_decrease_with_k_on_average(tiny_model, tiny_batch):
    torch.manual_seed(0)
    x = tiny_batch.repeat(40, 1, 1, 1)  # many independent estimates per datapoint
    means = [importance_log_likelihood(tiny_model, x, k).mean().item() for k in (1, 5, 50, 500)]
    assert all(lo < hi for lo, hi in zip(means, means[1:])), means
    elbo = elbo_terms(tiny_model, x, "analytic").elbo.mean().item()
    assert abs(means[0] - elbo) < 0.3, (means[0], elbo)


def test_lk_converges_to_brute_force_log_likelihood():
    """A 2-D latent: log p(x) = log integral p(x|z) p(z) dz by quadrature on a grid, in float64."""
    torch.manual_seed(0)
    model = VAE(ModelConfig(image_shape=(1, 2, 3), hidden=(5,), activation="tanh", latent_dim=2)).double()
    x = torch.bernoulli(torch.full((4, 1, 2, 3), 0.5, dtype=torch.float64))
    axis = torch.linspace(-8, 8, 801, dtype=torch.float64)
    grid = torch.cartesian_prod(axis, axis)  # (G, 2)
    with torch.no_grad():
        params = model.decoder_params(grid.unsqueeze(1))  # (G, 1, D)
        log_joint = model.log_prob(x, params) + log_standard_normal(grid)[:, None]  # (G, B)
        dz = axis[1] - axis[0]
        log_px = torch.logsumexp(log_joint, 0) + 2 * torch.log(dz)
        lk = importance_log_likelihood(model, x, k=20_000, chunk=5000)
        elbo = elbo_terms(model, x, "analytic", samples=20_000).elbo
    torch.testing.assert_close(lk, log_px, atol=0.02, rtol=0)
    assert torch.all(elbo <= log_px + 1e-3)
    assert torch.all(lk >= elbo - 1e-3)


def test_estimator_is_validated(tiny_model, tiny_batch):
    with pytest.raises(ValueError, match="estimator"):
        elbo_terms(tiny_model, tiny_batch, "exact")
    with pytest.raises(ValueError, match="k must be"):
        importance_log_likelihood(tiny_model, tiny_batch, k=0)


def test_beta_weights_only_the_kl_term(tiny_model, tiny_batch):
    torch.manual_seed(0)
    terms = elbo_terms(tiny_model, tiny_batch)
    assert torch.isclose(terms.loss(1.0), -terms.elbo.mean())
    assert torch.isclose(terms.loss(0.0), -terms.recon.mean())
    assert torch.isclose(terms.loss(2.0) - terms.loss(1.0), terms.kl.mean())


def test_iwae_bound_is_l_k_and_its_parts_are_the_elbos(tiny_model, tiny_batch):
    torch.manual_seed(5)
    bound, terms = iwae_bound(tiny_model, tiny_batch, samples=7)
    torch.manual_seed(5)  # the same draws
    torch.testing.assert_close(bound, importance_log_likelihood(tiny_model, tiny_batch, k=7))
    mu, logvar = tiny_model.encode(tiny_batch)
    torch.testing.assert_close(terms.kl, kl_standard_normal(mu, logvar))
    eps = torch.randn(1, *mu.shape, dtype=mu.dtype)
    one, _ = iwae_bound(tiny_model, tiny_batch, 1, eps)  # K = 1 is estimator A's ELBO
    torch.testing.assert_close(one, elbo_terms(tiny_model, tiny_batch, "mc", 1, eps).elbo)


def test_iwae_bound_is_tighter_than_the_elbo_on_average(tiny_model, tiny_batch):
    torch.manual_seed(0)
    x = tiny_batch.repeat(400, 1, 1, 1)
    elbo = elbo_terms(tiny_model, x, "analytic").elbo.mean()
    l5, l50 = (iwae_bound(tiny_model, x, k)[0].mean() for k in (5, 50))
    assert elbo < l5 < l50


def test_iwae_gradient_weights_each_draw_by_its_normalised_importance_weight(tiny_model, tiny_batch):
    """With the draws z_k held fixed, the decoder's gradient of L_K is
    sum_k w~_k grad log p(x|z_k) (Burda et al., eq. 14): the bound's weighting, not a plain mean."""
    x, k = tiny_batch[:1], 6
    eps = torch.randn(k, 1, tiny_model.config.latent_dim, dtype=torch.float64)
    decoder = [p for n, p in tiny_model.named_parameters() if n.startswith("dec")]
    assert decoder
    bound, _ = iwae_bound(tiny_model, x, k, eps)
    got = torch.autograd.grad(bound.sum(), decoder)
    mu, logvar = tiny_model.encode(x)
    z = tiny_model.reparameterize(mu, logvar, k, eps).detach()
    log_px = tiny_model.log_prob(x, tiny_model.decoder_params(z))[:, 0]  # (K,)
    log_w = log_px + log_standard_normal(z)[:, 0] - log_normal_diag(z, mu, logvar)[:, 0]
    weights = torch.softmax(log_w.detach(), 0)
    expected = torch.autograd.grad((weights * log_px).sum(), decoder, retain_graph=True)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b)
    plain = torch.autograd.grad(log_px.mean(), decoder)
    assert not torch.allclose(got[-1], plain[-1])  # the weights are not uniform here
