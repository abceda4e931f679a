"""Wake-sleep (Hinton, Dayan, Frey & Neal 1995) as the paper's Figure 2 runs it: each phase's
gradient against a hand-written reference, a run that raises its bound, and its settings' checks."""

from __future__ import annotations

import math

import pytest
import torch

from explorer.config import ModelConfig, TrainConfig, check_combination
from explorer.model import VAE, init_paper
from explorer.objectives import dream, wake_sleep_losses
from explorer.train.steps import Loss, step_noise


def _tiny(likelihood: str = "bernoulli", seed: int = 0) -> VAE:
    torch.manual_seed(seed)
    config = ModelConfig(
        latent_dim=2, hidden=(5,), activation="tanh", likelihood=likelihood, image_shape=(1, 2, 3)
    )
    return VAE(config).double()


def _grads(model: VAE, loss: torch.Tensor) -> dict[str, torch.Tensor]:
    model.zero_grad(set_to_none=True)
    loss.backward()
    return {
        n: (p.grad.clone() if p.grad is not None else torch.zeros_like(p))
        for n, p in model.named_parameters()
    }


def _reference_phases(model: VAE, x, eps, z_sleep, noise):
    """Each phase's loss built on its own, from first principles (no code shared with
    ``wake_sleep_losses`` but the networks): wake = -mean log p(x|z) at a fixed z drawn from q;
    sleep = -mean log q(z|x) at a fixed dream."""
    d = model.config.pixels
    with torch.no_grad():
        h = model.encoder(x.flatten(1))
        mu, logvar = model.enc_head(h).chunk(2, -1)
        z = mu + torch.exp(0.5 * logvar) * eps[0]
    params = model.dec_head(model.decoder(z))
    if model.config.likelihood == "bernoulli":
        wake = -torch.distributions.Bernoulli(logits=params).log_prob(x.flatten(1)).sum(-1).mean()
    else:
        mean, lv = torch.sigmoid(params[:, :d]), params[:, d:].clamp(min=model.config.gaussian_min_logvar)
        wake = -torch.distributions.Normal(mean, torch.exp(0.5 * lv)).log_prob(x.flatten(1)).sum(-1).mean()
    with torch.no_grad():
        p = model.dec_head(model.decoder(z_sleep))
        if model.config.likelihood == "bernoulli":
            x_dream = (noise < torch.sigmoid(p)).double()
        else:
            m, lv = torch.sigmoid(p[:, :d]), p[:, d:].clamp(min=model.config.gaussian_min_logvar)
            x_dream = m + torch.exp(0.5 * lv) * noise
    mu_s, logvar_s = model.enc_head(model.encoder(x_dream)).chunk(2, -1)
    sleep = -torch.distributions.Normal(mu_s, torch.exp(0.5 * logvar_s)).log_prob(z_sleep).sum(-1).mean()
    return wake, sleep


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_each_phase_reaches_its_own_parameters_with_the_reference_gradient(likelihood):
    model = _tiny(likelihood)
    gen = torch.Generator().manual_seed(1)
    x = (torch.rand(4, 1, 2, 3, generator=gen, dtype=torch.float64) < 0.5).double()
    eps = torch.randn(1, 4, 2, generator=gen, dtype=torch.float64)
    z_sleep = torch.randn(4, 2, generator=gen, dtype=torch.float64)
    noise = (torch.rand if likelihood == "bernoulli" else torch.randn)(
        4, 6, generator=gen, dtype=torch.float64
    )

    phases = wake_sleep_losses(model, x, eps, z_sleep, noise)
    wake_ref, sleep_ref = _reference_phases(model, x, eps, z_sleep, noise)
    assert phases.wake.item() == pytest.approx(wake_ref.item(), rel=1e-12)
    assert phases.sleep.item() == pytest.approx(sleep_ref.item(), rel=1e-12)

    wake_g, sleep_g = _grads(model, wake_ref), _grads(model, sleep_ref)
    ours = _grads(model, phases.wake + phases.sleep)  # one backward, as the training step does
    for name in ours:
        torch.testing.assert_close(ours[name], wake_g[name] + sleep_g[name], rtol=1e-10, atol=1e-12)
        if name.startswith(("encoder", "enc_head")):  # phi: only the sleep phase
            assert torch.count_nonzero(wake_g[name]) == 0
            assert torch.count_nonzero(sleep_g[name]) > 0
        else:  # theta: only the wake phase
            assert torch.count_nonzero(sleep_g[name]) == 0
            assert torch.count_nonzero(wake_g[name]) > 0


def test_the_reported_bound_is_the_elbo_of_the_wake_draw():
    model = _tiny()
    gen = torch.Generator().manual_seed(2)
    x = (torch.rand(3, 1, 2, 3, generator=gen, dtype=torch.float64) < 0.5).double()
    eps = torch.randn(1, 3, 2, generator=gen, dtype=torch.float64)
    phases = wake_sleep_losses(model, x, eps, torch.zeros(3, 2, dtype=torch.float64),
                               torch.rand(3, 6, generator=gen, dtype=torch.float64))  # fmt: skip
    mu, logvar = model.encode(x)
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    kl = torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0)).sum(-1)
    torch.testing.assert_close(phases.terms.kl, kl.detach())
    wake_ref, _ = _reference_phases(model, x, eps, torch.zeros(3, 2, dtype=torch.float64),
                                    torch.rand(3, 6, dtype=torch.float64))  # fmt: skip
    assert phases.terms.recon.mean().item() == pytest.approx(-wake_ref.item(), rel=1e-12)
    assert torch.all(phases.terms.elbo <= 0)


def test_dreams_are_drawn_from_the_decoder_not_its_mean():
    model = _tiny().float()
    z = torch.zeros(20000, 2)
    u = torch.rand(20000, 6, generator=torch.Generator().manual_seed(3))
    x = dream(model, z, u)
    assert set(x.unique().tolist()) <= {0.0, 1.0}  # samples, not probabilities
    p = torch.sigmoid(model.decoder_params(z[:1])).detach().reshape(1, 1, 2, 3)
    assert torch.allclose(x.mean(0, keepdim=True), p, atol=0.02)  # Bernoulli(p) on average


def test_step_noise_carries_the_sleep_draws_only_for_wake_sleep():
    model = _tiny().float()
    aevb = step_noise(model, TrainConfig(), 7, torch.device("cpu"))
    ws = step_noise(model, TrainConfig(algorithm="wake-sleep"), 7, torch.device("cpu"))
    assert [t.shape for t in aevb] == [(1, 7, 2)]
    assert [t.shape for t in ws] == [(1, 7, 2), (7, 2), (7, 6)]
    assert 0 <= ws[2].min() and ws[2].max() < 1  # uniforms for a Bernoulli decoder


def test_wake_sleep_training_raises_the_bound():
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    protos = (torch.rand(4, 1, 4, 4, generator=gen) < 0.5).float()
    data = protos[torch.randint(0, 4, (400,), generator=gen)]
    flip = torch.rand(data.shape, generator=gen) < 0.05
    data = torch.where(flip, 1 - data, data)
    config = ModelConfig(latent_dim=2, hidden=(32,), activation="tanh", image_shape=(1, 4, 4))
    model = VAE(config)
    init_paper(model, torch.Generator().manual_seed(0))
    cfg = TrainConfig(algorithm="wake-sleep", optimizer="adagrad", lr=0.05)
    loss_fn = Loss(model, cfg)
    opt = torch.optim.Adagrad(model.parameters(), lr=0.05)

    def bound() -> float:
        return -loss_fn(data, torch.zeros(1, len(data), 2), *step_noise(model, cfg, len(data), "cpu")[1:])[1][
            0
        ].item()

    before = bound()
    for _step in range(600):
        x = data[torch.randint(0, 400, (50,))]
        loss, _ = loss_fn(x, *step_noise(model, cfg, 50, "cpu"))
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = bound()
    assert math.isfinite(after) and after > before + 2.0, (before, after)


def test_settings_that_mean_nothing_for_wake_sleep_are_refused():
    with pytest.raises(ValueError, match="--objective elbo --samples 1"):
        TrainConfig(algorithm="wake-sleep", objective="iwae", samples=5)
    with pytest.raises(ValueError, match="no KL weight"):
        TrainConfig(algorithm="wake-sleep", beta=2.0)
    with pytest.raises(ValueError, match="--model vae"):
        check_combination(ModelConfig(model="ae"), TrainConfig(algorithm="wake-sleep"))
    with pytest.raises(ValueError, match="bernoulli and gaussian"):
        check_combination(ModelConfig(likelihood="logistic"), TrainConfig(algorithm="wake-sleep"))
    check_combination(ModelConfig(), TrainConfig(algorithm="wake-sleep"))  # a VAE: accepted


def test_paper_initialisation_draws_every_parameter_from_n_0_001():
    model = VAE(ModelConfig(latent_dim=3, hidden=(500,), activation="tanh"))
    init_paper(model, torch.Generator().manual_seed(0))
    values = torch.cat([p.detach().flatten() for p in model.parameters()])
    assert abs(values.mean().item()) < 1e-4
    assert values.std().item() == pytest.approx(0.01, rel=0.01)
    assert all(p.abs().max() < 0.07 for p in model.parameters())  # biases too, not PyTorch's zeros
