"""The VAE of Kingma & Welling (AEVB, 2013): an encoder q_phi(z|x) = N(mu, diag(sigma^2)) and a
decoder p_theta(x|z); the prior is p(z) = N(0, I).

Two networks (``ModelConfig.arch``): ``mlp``, the paper's fully connected layers, and ``conv``,
stride-2 convolutions (each halves height and width) before the hidden layers in the encoder and
transposed convolutions after them in the decoder, for images of any C x H x W. Three
likelihoods (``ModelConfig.likelihood``): Bernoulli (logits) for binary or grey images; Gaussian
with a learned variance per pixel (the paper's appendix C.2, as for Frey Face); and the discretised
logistic of 8-bit images (Salimans et al. 2017, PixelCNN++, one component; Kingma et al. 2016).

API (as in pytorch/examples' vae): ``encode(x) -> (mu, logvar)``, ``reparameterize``,
``decode(z) -> Distribution`` over images.

The same class holds the two deterministic baselines (``ModelConfig.model``): the autoencoder
(Hinton & Salakhutdinov 2006) and the denoising autoencoder (Vincent et al. 2008). Their encoder
gives a code z = f(x) and no variance: ``encode`` returns (z, None), and the decoder and its
likelihood are the VAE's, so that the reconstruction term is the same figure for all three.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.distributions import Bernoulli, Distribution, Independent, Normal, constraints
from torch.nn import functional as F

from explorer.config import ModelConfig

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh}
MAX_LEVEL = 255  # the top of an 8-bit image's 256 grey levels, which are k / 255, k = 0..255
LOGISTIC_MIN_LOG_SCALE = -7.0  # floor on the logistic's log-scale (PixelCNN++'s)


def _mlp(sizes: list[int], activation: str) -> nn.Sequential:
    """Linear layers with the activation after each one (the output head is added separately)."""
    layers: list[nn.Module] = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        layers += [nn.Linear(n_in, n_out), ACTIVATIONS[activation]()]
    return nn.Sequential(*layers)


def conv_sizes(height: int, width: int, layers: int) -> list[tuple[int, int]]:
    """(H, W) before and after each of ``layers`` stride-2 convolutions (kernel 4, padding 1:
    floor(H / 2)); the decoder retraces them in reverse."""
    sizes = [(height, width)]
    for _ in range(layers):
        sizes.append((sizes[-1][0] // 2, sizes[-1][1] // 2))
    return sizes


def _conv_encoder(config: ModelConfig) -> nn.Sequential:
    """x (B, C, H, W) -> features (B, hidden[-1]): the convolutions, flattened, then the hidden
    layers."""
    c, h, w = config.image_shape
    widths, act = [c, *config.channels], ACTIVATIONS[config.activation]
    layers: list[nn.Module] = []
    for c_in, c_out in zip(widths[:-1], widths[1:]):
        layers += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), act()]  # (B, c_out, H/2, W/2)
    last_h, last_w = conv_sizes(h, w, len(config.channels))[-1]
    features = config.channels[-1] * last_h * last_w
    return nn.Sequential(*layers, nn.Flatten(), *_mlp([features, *config.hidden], config.activation))


class _ConvDecoder(nn.Module):
    """z (N, z_dim) -> (N, out_channels, H, W): the hidden layers, a linear map to the smallest
    feature map, then transposed convolutions (kernel 4, stride 2, padding 1, each doubling H and
    W, plus one row or column where the encoder's halving dropped one); the last one, without an
    activation, is the output head."""

    def __init__(self, config: ModelConfig, out_channels: int) -> None:
        super().__init__()
        _, h, w = config.image_shape
        sizes = conv_sizes(h, w, len(config.channels))
        act, channels = ACTIVATIONS[config.activation], list(config.channels)
        self.start = (channels[-1], *sizes[-1])  # (C_n, H_n, W_n)
        features = math.prod(self.start)
        self.dense = _mlp([config.latent_dim, *reversed(config.hidden), features], config.activation)
        layers: list[nn.Module] = []
        outs = [*reversed(channels[:-1]), out_channels]
        for i, (c_in, c_out) in enumerate(zip(reversed(channels), outs)):
            (h_in, w_in), (h_out, w_out) = sizes[-1 - i], sizes[-2 - i]
            pad = (h_out - 2 * h_in, w_out - 2 * w_in)  # 0 or 1 each
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, output_padding=pad), act()]
        self.up = nn.Sequential(*layers[:-1])  # no activation after the output head

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.up(self.dense(z).view(-1, *self.start))


class VAE(nn.Module):
    """The encoder and decoder of ``config`` (see the module's docstring)."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        d, z, hidden = config.pixels, config.latent_dim, list(config.hidden)
        per_pixel = 1 if config.likelihood == "bernoulli" else 2  # logits, or (location, log-scale)
        code = 2 * z if config.variational else z  # (mu, logvar), or an autoencoder's code
        if config.arch == "conv":
            self.encoder = _conv_encoder(config)
            self.enc_head = nn.Linear(hidden[-1], code)  # -> (mu, logvar)
            self.decoder = _ConvDecoder(config, per_pixel * config.image_shape[0])
            self.dec_head = None  # the decoder's last transposed convolution
        else:  # the paper's MLP (its parameter names are those of every checkpoint shipped)
            self.encoder = _mlp([d, *hidden], config.activation)
            self.enc_head = nn.Linear(hidden[-1], code)
            self.decoder = _mlp([z, *reversed(hidden)], config.activation)
            self.dec_head = nn.Linear(hidden[0], per_pixel * d)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x (B, C, H, W) in [0, 1] -> mu (B, z), logvar (B, z) of q(z|x); for the deterministic
        autoencoders (``config.variational`` false) the code z (B, z) and None."""
        h = self.encoder(x if self.config.arch == "conv" else x.flatten(1))
        if not self.config.variational:
            return self.enc_head(h), None
        mu, logvar = self.enc_head(h).chunk(2, dim=-1)
        return mu, logvar

    @staticmethod
    def reparameterize(
        mu: torch.Tensor,
        logvar: torch.Tensor | None,
        samples: int | None = None,
        eps: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """z = mu + sigma * eps, eps ~ N(0, I). With ``samples`` = L: shape (L, B, z). ``eps`` of
        that shape may be given (drawn elsewhere, e.g. for a whole batch split across processes).
        An autoencoder's code (``logvar`` None) is returned as it is, repeated L times."""
        if logvar is None:
            return mu if samples is None else mu.expand(samples, *mu.shape)
        std = torch.exp(0.5 * logvar)
        if eps is None:
            shape = mu.shape if samples is None else (samples, *mu.shape)
            eps = torch.randn(shape, dtype=mu.dtype, device=mu.device)
        return mu + std * eps

    def decoder_params(self, z: torch.Tensor) -> torch.Tensor:
        """Raw decoder output for z (..., z_dim), flat per image in (C, H, W) order: logits
        (..., D); or (..., 2D), D location logits then D log-variances (Gaussian) or log-scales
        (logistic)."""
        if self.dec_head is None:  # conv: the transposed convolutions want (N, z_dim)
            out = self.decoder(z.reshape(-1, z.shape[-1]))  # (N, channels, H, W)
            return out.reshape(*z.shape[:-1], -1)
        return self.dec_head(self.decoder(z))

    def log_prob(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """log p(x|z) in nats, summed over pixels: x (B, C, H, W) and params (..., B, out) from
        ``decoder_params`` broadcast together; returns (..., B). The same figure as
        ``decode(z).log_prob(x)``, without building a Distribution (``bernoulli_log_prob``)."""
        x = x.flatten(1)
        if self.config.likelihood == "bernoulli":
            return bernoulli_log_prob(*torch.broadcast_tensors(params, x))
        if self.config.likelihood == "logistic":
            return discretized_logistic_log_prob(x, *self._logistic(params)).sum(-1)
        mean, logvar = self._gaussian(params)
        return log_normal_diag(x, mean, logvar)

    def _gaussian(self, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean_logit, logvar = params.chunk(2, dim=-1)
        return torch.sigmoid(mean_logit), logvar.clamp(min=self.config.gaussian_min_logvar)

    def _logistic(self, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        loc_logit, log_scale = params.chunk(2, dim=-1)
        return torch.sigmoid(loc_logit), log_scale.clamp(min=LOGISTIC_MIN_LOG_SCALE)

    def decode(self, z: torch.Tensor) -> Distribution:
        """p(x|z) for z (B, z_dim): a Distribution over images whose ``.mean`` is (B, C, H, W) and
        whose ``.log_prob(x)`` is per image (B,) in nats."""
        params = self.decoder_params(z)
        shape = (*params.shape[:-1], *self.config.image_shape)
        if self.config.likelihood == "bernoulli":
            base = Bernoulli(logits=params.reshape(shape), validate_args=False)
        elif self.config.likelihood == "logistic":
            loc, log_scale = self._logistic(params)
            base = DiscretizedLogistic(loc.reshape(shape), log_scale.reshape(shape))
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


PAPER_INIT_STD = 0.01  # Kingma & Welling 2013, Section 5: "initialized by random sampling from N(0, 0.01)"


@torch.no_grad()
def init_paper(
    model: nn.Module, generator: torch.Generator | None = None, std: float = PAPER_INIT_STD
) -> None:
    """Draw every parameter (weights and biases) of ``model`` from N(0, std^2), in place: the
    paper's initialisation for its experiments (Section 5). The paper writes N(0, 0.01); we read
    0.01 as the standard deviation, as the usual N(mean, sd) shorthand of experiment sections does
    (the variance reading, sd 0.1, is the other one). Draws on the CPU from ``generator``, so the
    same seed gives the same weights on every device."""
    for p in model.parameters():
        p.copy_(torch.randn(p.shape, generator=generator) * std)


LOG_2PI = math.log(2 * math.pi)


def log_normal_diag(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag(exp(logvar))), summed over the last dim; broadcasts (L, B, z) with (B, z).
    The Gaussian decoder's p(x|z) (over pixels) and q(z|x) in ``explorer.objectives`` (over z)."""
    return -0.5 * (LOG_2PI + logvar + (z - mu).pow(2) * torch.exp(-logvar)).sum(-1)


def softplus_sum(logits: torch.Tensor, spare: torch.Tensor | None = None) -> torch.Tensor:
    """sum_d softplus(l_d) over the last axis: logits (..., D) -> (...), as
    sum max(l, 0) + sum log(1 + e^-|l|); ``logits`` is left as it is, ``spare`` (the logits' shape,
    overwritten) saves an allocation.

    Written with ``log`` rather than ``log1p`` (which ``F.softplus`` and BCE-with-logits call): on
    CPUs PyTorch vectorises ``exp`` and ``log`` but not ``log1p`` (the figures: bench/README.md,
    L_K). 1 + e^-|l| lies in [1, 2], so ``log`` loses at most one rounding
    (6e-8 in float32) per value to ``log1p``: under 1e-4 nats over 784 pixels, the size of float32
    summation's own error (tests/test_importance.py checks it against float64 softplus).
    """
    spare = torch.empty_like(logits) if spare is None else spare
    torch.abs(logits, out=spare).neg_().exp_().add_(1.0).log_()
    near_zero = spare.sum(-1)
    return near_zero + torch.clamp_min(logits, 0.0, out=spare).sum(-1)


class _BernoulliLogProb(torch.autograd.Function):
    """sum_d x_d l_d - softplus(l_d), with its gradient (x - sigmoid(l)) written out: one
    vectorised pass each way instead of BCE-with-logits' ``log1p``."""

    @staticmethod
    def forward(ctx, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(logits, x)
        return torch.linalg.vecdot(logits, x) - softplus_sum(logits)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        logits, x = ctx.saved_tensors
        g = grad.unsqueeze(-1)
        grad_logits = (x - torch.sigmoid(logits)).mul_(g) if ctx.needs_input_grad[0] else None
        grad_x = logits * g if ctx.needs_input_grad[1] else None
        return grad_logits, grad_x


def bernoulli_log_prob(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """log p(x|z) = sum_d x_d log sigmoid(l_d) + (1 - x_d) log sigmoid(-l_d) in nats, summed over
    the last axis: logits and x (..., D) of the same shape -> (...). For grey x in [0, 1] it is the
    negative binary cross-entropy, as in Kingma & Welling (2014, appendix C.1). The same figure as
    ``-F.binary_cross_entropy_with_logits(l, x, reduction="none").sum(-1)`` within float32
    rounding, with gradients for both arguments (once differentiable).
    """
    return _BernoulliLogProb.apply(logits, x)


def discretized_logistic_log_prob(
    x: torch.Tensor, loc: torch.Tensor, log_scale: torch.Tensor
) -> torch.Tensor:
    """log P(x) in nats, elementwise, of 8-bit data x = k / 255 (k = 0..255) under a logistic of
    location ``loc`` and scale exp(``log_scale``) discretised to 256 bins of width 1/255 centred on
    the grey levels, the first and last bins reaching to -inf and +inf (Salimans et al. 2017,
    PixelCNN++, eq. 2, on [0, 1] instead of [-1, 1]). The masses of the 256 bins sum to 1, so this
    is a probability, not a density: no dequantisation is needed for bits per dimension.
    Where a bin's mass underflows float32 the density at its centre times its width is used."""
    half = 0.5 / MAX_LEVEL
    centred = x - loc
    inv_scale = torch.exp(-log_scale)
    plus, minus = inv_scale * (centred + half), inv_scale * (centred - half)
    log_cdf_plus = plus - F.softplus(plus)  # log sigmoid(plus): the lowest bin, from -inf
    log_one_minus_cdf_minus = -F.softplus(minus)  # log(1 - sigmoid(minus)): the highest, to +inf
    mass = torch.sigmoid(plus) - torch.sigmoid(minus)
    mid = inv_scale * centred
    log_density_mid = mid - log_scale - 2.0 * F.softplus(mid)
    inner = torch.where(mass > 1e-5, torch.log(mass.clamp(min=1e-12)), log_density_mid - math.log(MAX_LEVEL))
    return torch.where(x < half, log_cdf_plus, torch.where(x > 1 - half, log_one_minus_cdf_minus, inner))


class DiscretizedLogistic(Distribution):
    """Per-element discretised logistic over the 256 grey levels k / 255 (see
    ``discretized_logistic_log_prob``); ``mean`` is the location clamped to [0, 1] (the
    distribution's mean up to the edge bins), samples are on the grid."""

    arg_constraints = {"loc": constraints.real, "log_scale": constraints.real}
    support = constraints.unit_interval
    has_rsample = False

    def __init__(self, loc: torch.Tensor, log_scale: torch.Tensor) -> None:
        self.loc, self.log_scale = torch.broadcast_tensors(loc, log_scale)
        super().__init__(self.loc.shape, validate_args=False)

    @property
    def mean(self) -> torch.Tensor:
        return self.loc.clamp(0.0, 1.0)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        return discretized_logistic_log_prob(value, self.loc, self.log_scale)

    @torch.no_grad()
    def sample(self, sample_shape: tuple = ()) -> torch.Tensor:
        shape = self._extended_shape(torch.Size(sample_shape))
        u = torch.rand(shape, dtype=self.loc.dtype, device=self.loc.device).clamp(1e-6, 1 - 1e-6)
        x = self.loc + torch.exp(self.log_scale) * (torch.log(u) - torch.log1p(-u))
        return (x.clamp(0.0, 1.0) * MAX_LEVEL).round() / MAX_LEVEL


# Running a model over a dataset a batch at a time: bounded memory for any number of images.
BATCH = 1000  # images per forward pass when a model runs over a dataset


@torch.no_grad()
def in_batches(
    model: VAE,
    fn: Callable[..., torch.Tensor | tuple[torch.Tensor, ...]],
    *tensors: torch.Tensor | None,
    batch_size: int = BATCH,
    dims: Sequence[int] | None = None,
) -> torch.Tensor | tuple[torch.Tensor, ...]:
    """``fn`` applied to consecutive slices of ``tensors``, its outputs joined on the CPU.

    Each tensor is cut into slices of ``batch_size`` along its dimension in ``dims`` (default 0
    for all; the first tensor's length there sets the count), moved to the model's device, and
    handed to ``fn`` in order (a None stays None). ``fn`` returns a tensor of (B, ...) or a
    tuple of them; each is concatenated along dimension 0. No images: ``fn`` runs once on the
    empty slices, so the result has the right shape and type with length 0. Gradients are off.
    """
    dims = list(dims) if dims is not None else [0] * len(tensors)
    device = next(model.parameters()).device
    n = tensors[0].shape[dims[0]]
    outs = []
    for start in range(0, max(n, 1), batch_size):
        size = min(batch_size, n - start)
        parts = [None if t is None else t.narrow(d, start, size).to(device) for t, d in zip(tensors, dims)]
        out = fn(*parts)
        outs.append(tuple(o.cpu() for o in out) if isinstance(out, tuple) else out.cpu())
    if isinstance(outs[0], tuple):
        return tuple(torch.cat(column) for column in zip(*outs))
    return torch.cat(outs)
