"""The convolutional network for any C x H x W, and the likelihoods of continuous and 8-bit data
checked against torch.distributions and a direct sum over the 256 bins."""

import math

import pytest
import torch
from torch.distributions import AffineTransform, Normal, SigmoidTransform, TransformedDistribution, Uniform

from explorer.config import ModelConfig
from explorer.evaluate import bits_per_dim, evaluate
from explorer.model import MAX_LEVEL, VAE, discretized_logistic_log_prob


@pytest.mark.parametrize("shape", [(3, 32, 32), (1, 28, 28), (1, 28, 20), (3, 17, 9), (3, 64, 48)])
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian", "logistic"])
def test_conv_vae_maps_every_shape_back_to_itself(shape, likelihood):
    torch.manual_seed(0)
    config = ModelConfig(
        arch="conv", image_shape=shape, channels=(4, 8), hidden=(16,), latent_dim=3, likelihood=likelihood
    )
    model = VAE(config)
    x = torch.rand(5, *shape)
    mu, logvar = model.encode(x)
    assert mu.shape == logvar.shape == (5, 3)
    z = model.reparameterize(mu, logvar, samples=4)  # (L, B, z)
    params = model.decoder_params(z)
    per_pixel = 1 if likelihood == "bernoulli" else 2
    assert params.shape == (4, 5, per_pixel * math.prod(shape))
    assert model.log_prob(x, params).shape == (4, 5)
    decoded = model.decode(mu)
    assert decoded.mean.shape == (5, *shape)
    # the fused log-density and the Distribution's agree
    assert torch.allclose(decoded.log_prob(x), model.log_prob(x, model.decoder_params(mu)), atol=1e-3)
    assert model.sample(2).shape == (2, *shape)


def test_the_mlp_keeps_the_parameter_names_of_the_shipped_checkpoints():
    names = set(VAE(ModelConfig(hidden=(8,), latent_dim=2)).state_dict())
    assert names == {"encoder.0.weight", "encoder.0.bias", "enc_head.weight", "enc_head.bias",
                     "decoder.0.weight", "decoder.0.bias", "dec_head.weight", "dec_head.bias"}  # fmt: skip


def test_too_many_convolutions_for_the_image_are_refused():
    with pytest.raises(ValueError, match="3 stride-2 convolutions halve 4 pixels to nothing; use at most 2"):
        ModelConfig(arch="conv", image_shape=(1, 4, 4), channels=(8, 16, 32))
    ModelConfig(arch="mlp", image_shape=(1, 4, 4), channels=(8, 16, 32))  # channels: conv only


def _logistic_cdf(v, loc, scale):
    """The logistic distribution's CDF, built from torch.distributions (uniform through the
    inverse sigmoid, then scaled and shifted)."""
    logistic = TransformedDistribution(
        Uniform(torch.zeros_like(loc), torch.ones_like(loc)),
        [SigmoidTransform().inv, AffineTransform(loc, scale)],
    )
    return logistic.cdf(v.clamp(-1e6, 1e6))


@pytest.mark.parametrize("loc,log_scale", [(0.5, -3.0), (0.02, -4.5), (0.97, -2.0), (0.3, 0.5), (1.4, -6.0)])
def test_discretized_logistic_is_a_probability_over_the_256_levels(loc, log_scale):
    levels = torch.arange(MAX_LEVEL + 1, dtype=torch.float64) / MAX_LEVEL
    loc_t = torch.full_like(levels, loc)
    log_scale_t = torch.full_like(levels, log_scale)
    logp = discretized_logistic_log_prob(levels, loc_t, log_scale_t)
    assert torch.logsumexp(logp, 0).item() == pytest.approx(0.0, abs=1e-6)  # the bins sum to 1
    # each bin's mass is the logistic's CDF difference across it; the ends reach to -inf, +inf
    half = 0.5 / MAX_LEVEL
    upper = torch.where(levels > 1 - half, torch.tensor(math.inf, dtype=torch.float64), levels + half)
    lower = torch.where(levels < half, torch.tensor(-math.inf, dtype=torch.float64), levels - half)
    scale = torch.exp(log_scale_t)
    mass = _logistic_cdf(upper, loc_t, scale) - _logistic_cdf(lower, loc_t, scale)
    big = mass > 1e-5  # where float64 differences are exact enough to compare
    assert torch.allclose(logp[big].exp(), mass[big], rtol=1e-6, atol=1e-9)


def test_discretized_logistic_stays_finite_where_a_bin_underflows():
    x = torch.tensor([0.5])
    logp = discretized_logistic_log_prob(x, torch.tensor([0.1]), torch.tensor([-7.0]))  # 400 scales away
    assert torch.isfinite(logp).all() and logp.item() < -300


def test_gaussian_likelihood_matches_torch_normal():
    torch.manual_seed(1)
    model = VAE(ModelConfig(image_shape=(1, 3, 2), hidden=(4,), latent_dim=2, likelihood="gaussian")).double()
    x, z = torch.rand(4, 1, 3, 2, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64)
    params = model.decoder_params(z)
    mean_logit, logvar = params.chunk(2, -1)
    logvar = logvar.clamp(min=model.config.gaussian_min_logvar)
    expected = Normal(torch.sigmoid(mean_logit), torch.exp(0.5 * logvar)).log_prob(x.flatten(1)).sum(-1)
    assert torch.allclose(model.log_prob(x, params), expected)


def test_bits_per_dim_conventions():
    d = 3 * 32 * 32
    assert bits_per_dim(d * math.log(2), d, "logistic", False) == pytest.approx(1.0)  # exact, no shift
    assert bits_per_dim(d * math.log(2), d, "gaussian", False) == pytest.approx(1.0 + math.log2(255))
    assert bits_per_dim(100.0, 784, "bernoulli", True) == pytest.approx(100 / (784 * math.log(2)))
    assert bits_per_dim(100.0, 784, "bernoulli", False) is None  # grey levels: not a likelihood


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian", "logistic"])
def test_the_importance_weighted_bound_works_for_every_likelihood(likelihood):
    from explorer.objectives import importance_log_likelihood, log_weights

    torch.manual_seed(2)
    config = ModelConfig(arch="conv", image_shape=(3, 8, 8), channels=(4,), hidden=(8,), latent_dim=2,
                         likelihood=likelihood)  # fmt: skip
    model = VAE(config)
    x = torch.randint(0, 256, (6, 3, 8, 8)).float() / 255
    torch.manual_seed(3)
    log_w = log_weights(model, x, 64)  # (K, B)
    torch.manual_seed(3)
    bound = importance_log_likelihood(model, x, 64)
    assert torch.allclose(bound, torch.logsumexp(log_w, 0) - math.log(64))
    # on the same draws L_K is at least their mean log-weight, the ELBO's estimate (Jensen)
    assert (bound >= log_w.mean(0) - 1e-4).all() and (bound > log_w.mean(0)).any()
    result = evaluate(model, x, k=64)
    expected = bits_per_dim(-result.log_likelihood, 3 * 8 * 8, likelihood, result.binarized)
    assert result.bits_per_dim == expected and (expected is None) == (likelihood == "bernoulli")
