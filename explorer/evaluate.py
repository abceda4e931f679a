"""Evaluation: the test ELBO and the importance-sampled log-likelihood L_K, batched.

The MNIST likelihood protocol evaluates on the test set binarised once with a fixed seed
(``explorer.data.cache.eval_images``), identical on every machine; the caller loads the images
and passes them in. With grey-level data the "NLL" is not a
normalised likelihood; results carry ``binarized`` so that callers can label them.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass

import torch

from explorer.devices import decoder_floats
from explorer.errors import ExplorerError
from explorer.likelihood.importance import fast_path, importance_log_likelihood_blocked
from explorer.model import BATCH, VAE, in_batches
from explorer.objectives import (
    autoencoder_terms,
    elbo_terms,
    importance_log_likelihood,
    iwae_bound,
    kl_standard_normal,
)

# A mean ELBO below this many nats per pixel (dimension) is a diverged model, not a poor one: a
# uniform guess of a binary pixel costs ln 2 = 0.69 nats, and the Gaussian decoder's log-variance
# floor (-8) bounds its worst pixel near 1,500.
DIVERGED_NATS_PER_DIM = 10_000
EVAL_MEMORY = 2 * 2**30  # bytes of decoder activations one chunk of L_K's samples may hold
ACTIVE_UNIT_THRESHOLD = 0.01  # Burda et al. 2015: a unit is active when Cov_x(E_q[z_j]) > 0.01


@torch.no_grad()
def elbo_per_image(
    model: VAE,
    x: torch.Tensor,
    batch_size: int = BATCH,
    estimator: str = "analytic",
    eps: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image (recon, kl), each (N,) on the CPU, with L = 1 sample per image (``eps`` (N, z):
    the draws to use, else fresh ones)."""

    def terms(xb: torch.Tensor, e: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        t = elbo_terms(model, xb, estimator, eps=None if e is None else e[None])
        return t.recon, t.kl

    return in_batches(model, terms, x, eps, batch_size=batch_size)


def bound_per_image(model: VAE, x: torch.Tensor, eps: torch.Tensor, batch_size: int = BATCH) -> torch.Tensor:
    """The IWAE bound L_K per image (N,) on the CPU, with the given draws ``eps`` (K, N, z): the
    trainer's test figure for the iwae objective (K small; see ``importance_per_image`` for the
    evaluation's K = 5000)."""

    def bound(xb: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        return iwae_bound(model, xb, e.shape[0], e)[0]

    return in_batches(model, bound, x, eps, batch_size=batch_size, dims=(0, 1))


@torch.no_grad()
def importance_per_image(
    model: VAE, x: torch.Tensor, k: int = 5000, budget: int | None = None, progress=None, blocked: bool = True
) -> torch.Tensor:
    """L_K per image (N,) on the CPU. ``budget`` = decoded samples per chunk (memory bound);
    default: what fits in EVAL_MEMORY bytes for this decoder (~160,000 for a 784-512-512 MLP,
    ~5,000 for a conv decoder of 32x32x3 images). ``blocked``: for an MLP decoder with a
    Bernoulli likelihood, decode in cache-sized blocks (``explorer.likelihood.importance``): the same draws
    and figure, faster; False: the plain path of ``explorer.objectives``."""
    budget = budget or max(1, EVAL_MEMORY // (4 * decoder_floats(model.config)))
    batch = max(1, min(len(x), budget // k if k < budget else 1))
    chunk = max(1, budget // batch)

    fast = blocked and fast_path(model)

    def bound(xb: torch.Tensor) -> torch.Tensor:
        if fast:
            out = importance_log_likelihood_blocked(model, xb, k, chunk)
        else:
            out = importance_log_likelihood(model, xb, k, chunk)
        if progress is not None:
            progress(len(xb))
        return out

    return in_batches(model, bound, x, batch_size=batch)


def why_diverged(figures: dict[str, float], pixels: int) -> str | None:
    """Why a run's ``figures`` (train loss, test ELBO, ...: nats per image) say it diverged, in
    words, or None: a figure that is not finite, or a test ELBO below ``DIVERGED_NATS_PER_DIM``
    nats per pixel (``pixels`` per image), what no model that learnt anything scores."""
    floor = -DIVERGED_NATS_PER_DIM * pixels
    broken = {k: v for k, v in figures.items() if not math.isfinite(v)}
    for key in ("test_elbo", "test_recon"):  # the VAE's bound, or an autoencoder's only figure
        if not broken and figures.get(key, 0.0) < floor:
            broken = {key: figures[key]}
    if not broken:
        return None
    named = ", ".join(f"{k.replace('_', ' ')} {v:.4g}" for k, v in broken.items())
    return f"the {named} (not finite, or below {floor:,.0f} nats, what no model that learnt anything scores)"


@torch.no_grad()
def test_figures(model: VAE, x: torch.Tensor, objective: str, samples: int, seed: int, world=None) -> dict:
    """The figures a run logs after each epoch on its test set ``x`` (T, C, H, W): the means of
    the ELBO, its reconstruction term and its KL term (nats per image, L = 1 draw), and with the
    ``iwae`` objective the bound it trains on, L_K with K = ``samples`` (Burda et al. 2015, eq. 8)
    as ``test_bound``. The draws come from their own generator seeded by ``seed``, so they neither
    move the caller's random stream nor depend on how the test set is split: with ``world`` (an
    ``explorer.train.distributed.World``) each process scores its share and the sums are added."""
    rank, size = (world.rank, world.size) if world is not None else (0, 1)
    n, latent = len(x), model.config.latent_dim
    if not model.config.variational:  # an autoencoder's one figure: its reconstruction term
        return _autoencoder_figures(model, x, rank, size, world)
    gen = torch.Generator().manual_seed(seed)
    eps = torch.randn(n, latent, generator=gen)
    lo, hi = rank * n // size, (rank + 1) * n // size
    was_training = model.training
    model.eval()
    recon, kl = elbo_per_image(model, x[lo:hi], eps=eps[lo:hi])
    parts = [(recon - kl).double().sum(), recon.double().sum(), kl.double().sum()]
    names = ["test_elbo", "test_recon", "test_kl"]
    if objective == "iwae":
        draws = torch.randn(samples, n, latent, generator=gen)[:, lo:hi]
        parts.append(bound_per_image(model, x[lo:hi], draws).double().sum())
        names.append("test_bound")
    model.train(was_training)
    sums = torch.stack(parts).to(x.device)
    if world is not None:
        sums = world.sum(sums)
    return dict(zip(names, (sums / n).tolist()))


def _autoencoder_figures(model: VAE, x: torch.Tensor, rank: int, size: int, world) -> dict:
    """``test_figures`` of a deterministic autoencoder: the mean reconstruction term
    log p(x | f(x)) on the clean test images, as ``test_recon`` (nats per image)."""
    n = len(x)
    lo, hi = rank * n // size, (rank + 1) * n // size
    was_training = model.training
    model.eval()
    recon = reconstruction_per_image(model, x[lo:hi]).double().sum()
    model.train(was_training)
    total = recon.to(x.device)
    if world is not None:
        total = world.sum(total[None])[0]
    return {"test_recon": (total / n).item()}


@torch.no_grad()
def reconstruction_per_image(model: VAE, x: torch.Tensor, batch_size: int = BATCH) -> torch.Tensor:
    """A deterministic autoencoder's reconstruction term log p(x | z = f(x)) per image (N,), nats,
    on the CPU (``explorer.objectives.autoencoder_terms``, uncorrupted inputs)."""
    return in_batches(model, lambda xb: autoencoder_terms(model, xb).recon, x, batch_size=batch_size)


def score_key(variational: bool) -> str:
    """The test figure a run is judged by in its metrics: ``test_elbo`` for a VAE, ``test_recon``
    (the reconstruction term, nats per image) for an autoencoder, which has no ELBO."""
    return "test_elbo" if variational else "test_recon"


def score_name(variational: bool) -> str:
    """What the pages call an image's figure: "ELBO" for a VAE, "log p(x|z)" (the reconstruction
    term at z = f(x)) for an autoencoder."""
    return "ELBO" if variational else "log p(x|z)"


@torch.no_grad()
def latent_stats(model: VAE, x: torch.Tensor, batch_size: int = BATCH) -> tuple[torch.Tensor, torch.Tensor]:
    """Per latent dimension: the variance over x of the posterior mean E_q[z_j] (z,), and the mean
    analytic KL(q(z_j|x) || N(0, 1)) (z,), in nats. Both on the CPU. For an autoencoder: the
    variance of its code, and zeros."""

    def means_and_kl(xb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = model.encode(xb)
        if logvar is None:  # an autoencoder: no posterior, no KL
            return mu.double(), torch.zeros_like(mu, dtype=torch.float64)
        per_dim = kl_standard_normal(mu[..., None], logvar[..., None])  # (B, z): each dimension alone
        return mu.double(), per_dim.double()

    mu, kl = in_batches(model, means_and_kl, x, batch_size=batch_size)
    variance = mu.var(0) if len(mu) > 1 else torch.zeros(mu.shape[1], dtype=torch.float64)
    return variance, kl.mean(0)


@dataclass
class Evaluation:
    """What ``evaluate`` measured. An autoencoder (``model`` "ae" or "dae") has no ELBO, KL or
    L_K: those are None, and ``recon`` (with ``recon_se``) is its figure."""

    n: int
    elbo: float | None  # mean test ELBO, nats per image
    elbo_se: float | None  # standard error of that mean
    recon: float  # mean reconstruction term log p(x|z), nats per image
    kl: float | None
    log_likelihood: float | None  # mean L_K, nats per image (None when k = 0)
    log_likelihood_se: float | None
    k: int
    binarized: bool
    seconds: float
    active_units: int  # dimensions with Cov_x(E_q[z_j]) > ACTIVE_UNIT_THRESHOLD
    kl_per_dim: list[float]  # mean KL(q(z_j|x) || N(0, 1)) per dimension, nats
    posterior_mean_variance: list[float]  # Cov_x(E_q[z_j]) per dimension
    likelihood: str = "bernoulli"  # the decoder's p(x|z)
    dims: int = 0  # dimensions per image, C * H * W
    model: str = "vae"  # vae, ae or dae (explorer.config.MODELS)
    recon_se: float | None = None  # standard error of ``recon``

    @property
    def nll(self) -> float | None:
        return None if self.log_likelihood is None else -self.log_likelihood

    @property
    def bits_per_dim(self) -> float | None:
        """The NLL (or, without L_K, the negative ELBO) in bits per dimension, where it is a
        likelihood of the data (see ``bits_per_dim``); None for grey levels under a Bernoulli."""
        if self.elbo is None:  # an autoencoder: no likelihood of the data
            return None
        nats = self.nll if self.nll is not None else -self.elbo
        return bits_per_dim(nats, self.dims, self.likelihood, self.binarized)

    def to_dict(self) -> dict:
        return {**asdict(self), "nll": self.nll, "bits_per_dim": self.bits_per_dim}


def bits_per_dim(nats: float, dims: int, likelihood: str, binarized: bool) -> float | None:
    """A negative log-likelihood of ``nats`` per image of ``dims`` dimensions, in bits per
    dimension: nats / (dims ln 2), the unit of the image-modelling literature (e.g. Salimans et
    al. 2017; Kingma et al. 2016).

    The conventions, per likelihood:
    - ``logistic``: the discretised logistic gives each 8-bit grey level a probability, so the
      figure is exact and needs no dequantisation.
    - ``gaussian``: a density over x = k / 255; it is turned into a probability per grey level by
      the bin's width 1/255 (adding log2 255 = 7.99 bits per dimension). No dequantisation noise is
      added, so this approximates the probability of each bin; it is not a bound.
    - ``bernoulli``: exact on binarised data; None on grey levels, where it is not a likelihood.
    """
    if not dims or nats is None or (likelihood == "bernoulli" and not binarized):
        return None
    bits = nats / (dims * math.log(2))
    return bits + math.log2(255) if likelihood == "gaussian" else bits


def _mean_se(v: torch.Tensor) -> tuple[float, float]:
    v = v.double()
    se = v.std().item() / math.sqrt(len(v)) if len(v) > 1 else float("nan")
    return v.mean().item(), se


def _check_finite(name: str, values: torch.Tensor) -> None:
    """Raise ExplorerError when any per-image figure is NaN or infinite: a diverged model."""
    bad = int((~torch.isfinite(values)).sum())
    if bad:
        raise ExplorerError(
            f"the {name} of {bad:,} of {len(values):,} images is not finite (NaN or infinite): the "
            "model's weights have diverged. Evaluate an earlier checkpoint, or retrain with a lower "
            "learning rate."
        )


def evaluate(
    model: VAE, x: torch.Tensor, k: int = 5000, batch_size: int = BATCH, progress=None, seed: int = 0
) -> Evaluation:
    """ELBO and (for k > 0) L_K over the images x, with standard errors of the means.

    The samples of eps are seeded, so a re-run on the same machine gives the same figures.

    Raises:
        ExplorerError: a figure is not finite for some image (a diverged model).
    """
    torch.manual_seed(seed)
    start = time.perf_counter()
    if not model.config.variational:
        return _evaluate_autoencoder(model, x, batch_size, start)
    recon, kl = elbo_per_image(model, x, batch_size)
    elbo, elbo_se = _mean_se(recon - kl)
    variance, kl_dims = latent_stats(model, x, batch_size)
    _check_finite("ELBO", recon - kl)
    floor = -DIVERGED_NATS_PER_DIM * model.config.pixels
    if elbo < floor:
        raise ExplorerError(
            f"the mean ELBO is {elbo:.4g} nats per image, below {floor:,.0f}, what no model that learnt "
            "anything scores: the model has diverged. Evaluate an earlier checkpoint, or retrain with "
            "a lower learning rate."
        )
    ll = ll_se = None
    if k > 0:
        bound = importance_per_image(model, x, k, progress=progress)
        _check_finite(f"L_{k}", bound)
        ll, ll_se = _mean_se(bound)
    return Evaluation(
        n=len(x),
        elbo=elbo,
        elbo_se=elbo_se,
        recon=recon.double().mean().item(),
        kl=kl.double().mean().item(),
        log_likelihood=ll,
        log_likelihood_se=ll_se,
        k=k,
        binarized=bool(((x == 0) | (x == 1)).all()),
        seconds=time.perf_counter() - start,
        active_units=int((variance > ACTIVE_UNIT_THRESHOLD).sum()),
        kl_per_dim=[round(v, 4) for v in kl_dims.tolist()],
        posterior_mean_variance=[round(v, 4) for v in variance.tolist()],
        likelihood=model.config.likelihood,
        dims=model.config.pixels,
        recon_se=_mean_se(recon)[1],
    )


def _evaluate_autoencoder(model: VAE, x: torch.Tensor, batch_size: int, start: float) -> Evaluation:
    """``evaluate`` for a deterministic autoencoder: its reconstruction term, and the variance of
    its code per dimension (no ELBO, KL or L_K: it has no posterior)."""
    recon = reconstruction_per_image(model, x, batch_size)
    _check_finite("reconstruction term", recon)
    variance, _ = latent_stats(model, x, batch_size)
    mean, se = _mean_se(recon)
    return Evaluation(
        n=len(x), elbo=None, elbo_se=None, recon=mean, kl=None, log_likelihood=None,
        log_likelihood_se=None, k=0, binarized=bool(((x == 0) | (x == 1)).all()),
        seconds=time.perf_counter() - start, active_units=int((variance > ACTIVE_UNIT_THRESHOLD).sum()),
        kl_per_dim=[], posterior_mean_variance=[round(v, 4) for v in variance.tolist()],
        likelihood=model.config.likelihood, dims=model.config.pixels, model=model.config.model, recon_se=se,
    )  # fmt: skip


# -- where the test images sit in latent space: the plane of a run's snapshots and of the maps ------


@torch.no_grad()
def encode_means(model: VAE, x: torch.Tensor, batch_size: int = BATCH) -> torch.Tensor:
    """Posterior means E_q[z|x] (N, z) on the CPU for images x (N, C, H, W) in [0, 1]."""
    return in_batches(model, lambda xb: model.encode(xb)[0], x, batch_size=batch_size)


@dataclass
class Projection:
    """A linear map from latent space to the 2-D plane of the scatter."""

    mean: torch.Tensor  # (z,) subtracted before projecting
    components: torch.Tensor  # (z, 2): columns are the plotted directions
    explained: list[float]  # PCA: fraction of variance along each plotted direction
    kind: str  # "identity" for 2-D models, "pca" otherwise

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        """(N, z) -> (N, 2)."""
        return (z - self.mean) @ self.components


def fit_projection(means: torch.Tensor) -> Projection:
    """Identity for 2-D latents; otherwise PCA of the encoded means (N, z) (top two components;
    from a single code, its direction and another: no variance to explain, 0 each)."""
    dims = means.shape[1]
    if dims <= 2:
        return Projection(torch.zeros(dims), torch.eye(dims, 2), [], "identity")
    centre = means.double().mean(0)
    centred = means.double() - centre
    _, s, vh = torch.linalg.svd(centred, full_matrices=False)
    if vh.shape[0] < 2:  # one test image (a folder of a dozen pictures): the basis completed
        vh = torch.linalg.qr(torch.cat([vh.T, torch.eye(dims, dtype=vh.dtype)], dim=1))[0].T
    variance = torch.cat([s.pow(2), s.new_zeros(2)])[:2]
    total = float(s.pow(2).sum())
    explained = (variance / total).tolist() if total > 0 else [0.0, 0.0]
    comps = vh[:2].T.contiguous()  # (z, 2)
    # Fix the signs so that the picture does not flip between runs of the SVD.
    signs = torch.sign(comps[comps.abs().argmax(0), torch.arange(2)])
    return Projection(centre.float(), (comps * signs).float(), explained, "pca")
