"""The VAE of Kingma & Welling (AEVB, 2013): an MLP encoder q_phi(z|x) = N(mu, diag(sigma^2)) and an
MLP decoder p_theta(x|z), Bernoulli (logits) for binary or grey images, Gaussian (mean and
log-variance heads) for continuous data such as Frey Face. The prior is p(z) = N(0, I).

API (as in pytorch/examples' vae): ``encode(x) -> (mu, logvar)``, ``reparameterize``,
``decode(z) -> Distribution`` over images.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.distributions import Bernoulli, Distribution, Independent, Normal

from explorer.config import ModelConfig

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh}


def _mlp(sizes: list[int], activation: str) -> nn.Sequential:
    """Linear layers with the activation after each one (the output head is added separately)."""
    layers: list[nn.Module] = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(n_in, n_out), ACTIVATIONS[activation]()]
    return nn.Sequential(*layers)


class VAE(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        d, z, hidden = config.pixels, config.latent_dim, list(config.hidden)
        self.encoder = _mlp([d, *hidden], config.activation)
        self.enc_head = nn.Linear(hidden[-1], 2 * z)  # -> (mu, logvar)
        self.decoder = _mlp([z, *reversed(hidden)], config.activation)
        out = d if config.likelihood == "bernoulli" else 2 * d  # logits, or (mean, logvar)
        self.dec_head = nn.Linear(hidden[0], out)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, C, H, W) in [0, 1] -> mu (B, z), logvar (B, z) of q(z|x)."""
        h = self.encoder(x.flatten(1))
        mu, logvar = self.enc_head(h).chunk(2, dim=-1)
        return mu, logvar

    @staticmethod
    def reparameterize(
        mu: torch.Tensor, logvar: torch.Tensor, samples: int | None = None, eps: torch.Tensor | None = None
    ) -> torch.Tensor:
        """z = mu + sigma * eps, eps ~ N(0, I). With ``samples`` = L: shape (L, B, z). ``eps`` of
        that shape may be given (drawn elsewhere, e.g. for a whole batch split across processes)."""
        std = torch.exp(0.5 * logvar)
        if eps is None:
            shape = mu.shape if samples is None else (samples, *mu.shape)
            eps = torch.randn(shape, dtype=mu.dtype, device=mu.device)
        return mu + std * eps

    def decoder_params(self, z: torch.Tensor) -> torch.Tensor:
        """Raw decoder output for z (..., z_dim): logits (..., D), or mean-logit and logvar (..., 2D)."""
        return self.dec_head(self.decoder(z))

    def log_prob(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """log p(x|z) in nats, summed over pixels: x (B, C, H, W) and params (..., B, out) from
        ``decoder_params`` broadcast together; returns (..., B). The same figure as
        ``decode(z).log_prob(x)``, without building a Distribution (fused BCE with logits)."""
        x = x.flatten(1)
        if self.config.likelihood == "bernoulli":
            logits, x = torch.broadcast_tensors(params, x)
            return -nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)
        mean, logvar = self._gaussian(params)
        return _gaussian_log_density(x, mean, logvar)

    def _gaussian(self, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean_logit, logvar = params.chunk(2, dim=-1)
        return torch.sigmoid(mean_logit), logvar.clamp(min=self.config.gaussian_min_logvar)

    def decode(self, z: torch.Tensor) -> Distribution:
        """p(x|z) for z (B, z_dim): a Distribution over images whose ``.mean`` is (B, C, H, W) and
        whose ``.log_prob(x)`` is per image (B,) in nats."""
        params = self.decoder_params(z)
        shape = (*params.shape[:-1], *self.config.image_shape)
        if self.config.likelihood == "bernoulli":
            base = Bernoulli(logits=params.reshape(shape), validate_args=False)
        else:
            mean, logvar = self._gaussian(params)
            base = Normal(mean.reshape(shape), torch.exp(0.5 * logvar).reshape(shape), validate_args=False)
        return Independent(base, 3, validate_args=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Reconstruction mean for x, with the posterior (mu, logvar): the usual VAE forward."""
        mu, logvar = self.encode(x)
        return self.decode(self.reparameterize(mu, logvar)).mean, mu, logvar

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n images (n, C, H, W) in [0, 1]: the decoder's mean at z ~ p(z)."""
        device = next(self.parameters()).device
        z = torch.randn(n, self.config.latent_dim, generator=generator, device="cpu").to(device)
        return self.decode(z).mean


def _gaussian_log_density(x: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(x; mean, exp(logvar)) summed over the last dim."""
    log2pi = 1.8378770664093453
    return -0.5 * (log2pi + logvar + (x - mean) ** 2 * torch.exp(-logvar)).sum(-1)
