"""One image's ELBO as a page states it, with its error: exact where it is cheap (a 2-D latent
space: E_q[log p(x|z)] by the rectangle rule of ``evidence.expected_recon``, the Theory page's
own figure), else SGVB estimator B's mean over K draws of eps (Kingma & Welling 2013, eq. 7)
with its standard error, K grown until that error is small or the time allowed is spent. One
draw of eps (or a few shared by every image, as the test set's ranking uses) is off by nats on
a single image; this figure is what the identity log p(x) = ELBO + KL(q || p(z|x)) uses."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from explorer.model import VAE
from explorer.objectives import autoencoder_terms, kl_standard_normal
from explorer.theory.evidence import RECON_NODES, expected_recon

TARGET_SE = 0.15  # nats: the Monte Carlo estimate stops growing once its standard error is below this
CHUNK = 250  # draws of eps decoded at once
MAX_DRAWS = 4000  # K at most
# A cap for a slow decoder (a convolutional one), per image: the draws made by then are kept and
# their standard error stated. At 1 s the Interpolate page's two ends took its first view on the
# shapes models to 2.0-2.2 s (bench/pages.py); at 0.25 s: 750-1,250 draws, 0.23 nats.
SECONDS = 0.25


@dataclass(frozen=True)
class ElboEstimate:
    """One image's ELBO in nats and how it was computed."""

    elbo: float  # nats
    se: float  # nats: the Monte Carlo standard error (0 for the quadrature)
    draws: int  # K, the draws of eps averaged (0 for the quadrature)
    nodes: int  # points per axis of the quadrature's rule (0 for Monte Carlo)

    def words(self) -> str:
        """How the figure was made, for a caption: "exact: quadrature over z on 41 x 41 points" or
        "the mean of K = 1,000 draws of eps, standard error 0.04 nats"."""
        if self.nodes:
            return f"exact: quadrature over z on {self.nodes} x {self.nodes} points"
        if not self.draws:
            return "the reconstruction term at the code z = f(x) (an autoencoder: no draws)"
        return f"the mean of K = {self.draws:,} draws of eps, standard error {self.se:.2f} nats"


@torch.no_grad()
def elbo_estimate(
    model: VAE, x: torch.Tensor, seed: int = 0, target_se: float = TARGET_SE, seconds: float = SECONDS
) -> ElboEstimate:
    """The ELBO of one image x (C, H, W) in nats, given in the data space it is to be scored in
    (binarised for a model of binarised data, as ``evidence.evidence`` takes it), as
    E_q[log p(x|z)] - KL(q(z|x) || p(z)) with the KL analytic (estimator B's terms): by quadrature
    for a 2-D latent (the Theory page's figure), else the mean of log p(x|z_k) over draws
    z_k = mu + sigma * eps_k from ``seed``, in chunks of ``CHUNK`` until the standard error is below
    ``target_se`` nats, ``MAX_DRAWS`` are made or ``seconds`` have passed (at least one chunk).
    An autoencoder's figure is its reconstruction term log p(x | z = f(x)) (no draws, error 0)."""
    start = time.perf_counter()
    weight = next(model.parameters())
    xb = x[None].to(weight.device, weight.dtype)
    if not model.config.variational:
        return ElboEstimate(float(autoencoder_terms(model, xb).recon[0]), 0.0, 0, 0)
    mu, logvar = model.encode(xb)
    kl = float(kl_standard_normal(mu, logvar))
    sigma = torch.exp(0.5 * logvar)
    if mu.shape[1] == 2:
        return ElboEstimate(expected_recon(model, xb, mu[0], sigma[0]) - kl, 0.0, 0, RECON_NODES)
    generator = torch.Generator().manual_seed(seed)
    terms: list[torch.Tensor] = []
    while True:
        eps = torch.randn(CHUNK, mu.shape[1], generator=generator).to(mu.device, mu.dtype)
        terms.append(model.log_prob(xb, model.decoder_params(mu + sigma * eps)).double().cpu())  # (CHUNK,)
        recon = torch.cat(terms)
        se = float(recon.std() / math.sqrt(len(recon)))
        if se < target_se or len(recon) >= MAX_DRAWS or time.perf_counter() - start > seconds:
            return ElboEstimate(float(recon.mean()) - kl, se, len(recon), 0)
