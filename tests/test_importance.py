"""The blocked L_K (explorer.likelihood.importance) against the plain one (explorer.objectives) on the same
seeds: the same draws, the same figure."""

import pytest
import torch

from explorer.likelihood.importance import fast_path, log_weights_blocked
from explorer.model import VAE, ModelConfig
from explorer.objectives import log_weights


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("grey", [False, True])
def test_blocked_log_weights_equal_the_plain_ones(activation, grey, monkeypatch):
    import explorer.likelihood.importance as importance

    monkeypatch.setattr(importance, "BLOCK_ROWS", 37)  # blocks that do not divide the draws evenly
    torch.manual_seed(0)
    model = VAE(
        ModelConfig(image_shape=(1, 6, 5), hidden=(16, 12), latent_dim=3, activation=activation)
    ).eval()
    g = torch.Generator().manual_seed(1)
    x = torch.rand(7, 1, 6, 5, generator=g)
    x = x if grey else torch.bernoulli(x, generator=g)
    with torch.no_grad():
        torch.manual_seed(5)
        plain = log_weights(model, x, 250, chunk=60)
        torch.manual_seed(5)
        blocked = log_weights_blocked(model, x, 250, chunk=60)
    assert blocked.shape == (250, 7)
    torch.testing.assert_close(blocked, plain, rtol=1e-5, atol=1e-4)


def test_only_mlp_bernoulli_vaes_take_the_blocked_path():
    assert fast_path(VAE(ModelConfig(hidden=(8,))))
    assert not fast_path(VAE(ModelConfig(hidden=(8,), likelihood="gaussian")))
    assert not fast_path(VAE(ModelConfig(hidden=(8,), model="ae")))
    conv = ModelConfig(arch="conv", image_shape=(1, 8, 8), channels=(4,), hidden=(8,))
    assert not fast_path(VAE(conv))
    with pytest.raises(ValueError, match="MLP decoders with a Bernoulli"):
        log_weights_blocked(VAE(conv), torch.rand(2, 1, 8, 8), 10)


@pytest.mark.integration
def test_the_evaluations_l_k_is_unchanged_on_the_shipped_model():
    """mnist-z2, K = 5000 on 8 test images: the blocked path within 0.01 nats of the plain one."""
    from explorer.checkpoints import load_checkpoint
    from explorer.data.cache import eval_images
    from explorer.evaluate import importance_per_image

    model = load_checkpoint("mnist-z2").eval()
    x, _ = eval_images("mnist", limit=8)
    torch.manual_seed(0)
    plain = importance_per_image(model, x, 5000, blocked=False)
    torch.manual_seed(0)
    blocked = importance_per_image(model, x, 5000)
    assert (blocked - plain).abs().max().item() < 0.01


def test_the_softplus_sum_matches_float64_softplus_over_the_whole_range():
    """exp/log in place of log1p: within float32 summation error of float64 softplus, from logits
    far below zero (where the term is e^l, tiny) to far above (where it is l), and the buffer and
    logits it overwrites are not read back wrongly."""
    from explorer.model import softplus_sum as _softplus_sum

    logits = torch.cat([torch.linspace(-120, 120, 784).unsqueeze(0), torch.randn(5, 784) * 8])
    exact = torch.nn.functional.softplus(logits.double()).sum(-1)
    got = _softplus_sum(logits.clone(), torch.empty_like(logits))
    assert got.dtype == torch.float32 and got.shape == (6,)
    torch.testing.assert_close(got.double(), exact, rtol=1e-6, atol=1e-3)
    far_below = torch.full((1, 784), -30.0)  # each term e^-30 ~ 1e-13: lost to rounding, harmlessly
    assert abs(_softplus_sum(far_below.clone(), torch.empty_like(far_below)).item()) < 1e-9
