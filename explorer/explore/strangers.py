"""Strangers: is an image like the ones the model was trained on?

The ELBO alone cannot say. Deep generative models give *higher* likelihoods to simpler images
from other datasets (Nalisnick et al. 2019, "Do deep generative models know what they don't
know?"): a VAE trained on Fashion-MNIST scores MNIST digits above its own test images. The
verdict here combines three published remedies, chosen by measurement (``bench/ood.py``):

- statistics of the model beyond the ELBO, as in density-of-states estimation (Morningstar et
  al. 2021, "Density of States Estimation for Out-of-Distribution Detection", DoSE): the ELBO,
  its rate KL(q(z|x) || p(z)), and the ink the reconstruction adds where the image has none;
- the input-complexity correction of Serrà et al. 2020 ("Input complexity and out-of-distribution
  detection with likelihood-based generative models"): the image's size in bits as a lossless
  PNG. How typical the *pair* (ELBO, complexity) is enters as its density under a Gaussian
  mixture fitted to the test images' pairs (8 components, full covariances);
- outlier exposure (Hendrycks et al. 2019, "Deep Anomaly Detection with Outlier Exposure"): a
  logistic regression on those five numbers, trained to tell the test images from synthetic
  outliers made on the spot (non-digit marks drawn and preprocessed the way the dataset made
  its images, and noise). No image of another dataset is ever used to fit it.

The *strangeness* is the regression's log-odds; an image is a stranger above the
``STRANGER_QUANTILE`` quantile of the reference images' strangeness (the first
``REFERENCE_IMAGES`` of the test set), so about 4% of the dataset's own images are flagged, by
design. The ELBO here is deterministic: log p(x | z = E_q[z|x]) - KL(q(z|x) || p(z)), in nats.
scikit-learn provides the mixture and the regression.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from explorer.model import BATCH, VAE, in_batches
from explorer.objectives import kl_standard_normal

STATISTICS = ("distortion", "rate", "complexity", "added ink")
UNITS = ("nats", "nats", "bits", "pixels")
REFERENCE_IMAGES, MIN_REFERENCE = 5000, 200  # test images the detector is fitted to (the rest
# stay unseen, for bench/ood.py); a smaller test split is topped up with training images
STRANGER_QUANTILE = 0.96  # strangeness above this quantile of the reference images' is a stranger
COMPONENTS = 8  # of the Gaussian mixture of (ELBO, complexity)
OUTLIER_MARKS, OUTLIER_NOISE, OUTLIER_SEED = 300, 100, 11  # the synthetic outliers it is shown
SOURCE = (
    "a logistic regression (outlier exposure, Hendrycks et al. 2019) on the model's ELBO, rate "
    "and added ink (density of states, Morningstar et al. 2021) and on the image's PNG size and "
    "how typical that size is for its ELBO (input complexity, Serrà et al. 2020)"
)
# Datasets whose models' verdicts bench/ood.py measures and finds within the targets (AUROC >= 0.95
# against other data, <= 5% of the model's own unseen test images flagged; bench/README.md). A
# model of any other dataset (the shapes, photographs, a folder) gets its strangeness but no
# verdict: on the shapes it called a plain red disc a stranger (99.5%).
MEASURED_DATASETS = ("mnist", "fashion-mnist")


def source(score: str = "ELBO") -> str:
    """What strangeness measures, naming the model's own ``score`` ("ELBO", or an autoencoder's
    "log p(x|z)", which has no rate: its code has no posterior)."""
    if score == "ELBO":
        return SOURCE
    return SOURCE.replace("the model's ELBO, rate", f"the model's {score}").replace(
        "for its ELBO", f"for its {score}"
    )


def verdict_measured(dataset: str) -> bool:
    """Whether VAE Explorer states a stranger verdict for a model of ``dataset`` (see
    MEASURED_DATASETS)."""
    return dataset in MEASURED_DATASETS


def unmeasured_note(dataset: str) -> str:
    """Why a model of ``dataset`` gets no stranger verdict."""
    return (
        f"No stranger verdict for a model of {dataset}: its detector has not been measured against "
        "other data (bench/ood.py measures the MNIST and Fashion-MNIST models), and on the shapes it "
        "called clear shapes strangers. The percentile above says how this image's fit compares."
    )


def png_bits(x: torch.Tensor) -> np.ndarray:
    """Lossless (PNG, Pillow's best compression) size in bits of each image x (N, C, H, W) in
    [0, 1], quantised to 8 bits: the complexity estimate of Serrà et al. 2020. Returns (N,)."""
    images = (x.detach().cpu().clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    images = np.moveaxis(images, 1, -1)
    out = np.empty(len(images))
    for i, a in enumerate(images):
        buf = io.BytesIO()
        Image.fromarray(a[..., 0] if a.shape[-1] == 1 else a).save(buf, format="PNG", optimize=True)
        out[i] = 8 * len(buf.getvalue())
    return out


@torch.no_grad()
def image_statistics(model: VAE, x: torch.Tensor, batch_size: int = BATCH) -> np.ndarray:
    """The statistics of images x (N, C, H, W) in [0, 1]: (N, 4) float64, columns
    ``STATISTICS``: distortion log p(x | z = mu) and rate KL(q(z|x) || N(0, I)), both in nats
    summed over pixels or latent dimensions (an autoencoder's rate: 0); the PNG size in bits;
    and the added ink, the sum over pixels of max(decoder mean - x, 0) at z = mu (what the
    reconstruction draws where the image has nothing)."""

    def statistics(xb: torch.Tensor) -> torch.Tensor:
        mu, logvar = model.encode(xb)
        distortion = model.log_prob(xb, model.decoder_params(mu))
        rate = torch.zeros_like(distortion) if logvar is None else kl_standard_normal(mu, logvar)
        added = (model.decode(mu).mean - xb).clamp_min(0).flatten(1).sum(1)
        return torch.stack([distortion, rate, added], 1).double()

    stats = in_batches(model, statistics, x, batch_size=batch_size).numpy()
    return np.column_stack([stats[:, :2], png_bits(x), stats[:, 2]])


@dataclass
class Verdict:
    """What the detector says of one image."""

    strangeness: float  # the detector's log-odds that the image is an outlier (higher: stranger)
    percentile: float  # % of the reference images that are at most as strange
    stranger: bool  # strangeness above the detector's threshold


class StrangerDetector:
    """What is typical of a model's own images, and the line beyond which an image is a stranger
    (see the module's docstring). ``fit`` takes the statistics (N, 4) of reference images and of
    synthetic outliers (``image_statistics``); ``strangeness`` and ``verdicts`` judge new ones.
    """

    def __init__(self, components: int = COMPONENTS, quantile: float = STRANGER_QUANTILE) -> None:
        self.components, self.quantile = components, quantile

    @staticmethod
    def _pair(stats: np.ndarray) -> np.ndarray:
        """(ELBO, complexity) (N, 2) from statistics (N, 4)."""
        return np.column_stack([stats[:, 0] - stats[:, 1], stats[:, 2]])

    def fit(self, stats: np.ndarray, outliers: np.ndarray) -> StrangerDetector:
        """Fit the density to reference statistics (N, 4), the regression to them against the
        outliers' (M, 4), and set the threshold.

        Raises:
            ValueError: fewer than 20 reference images per mixture component, no outliers, or
                statistics that are not finite (a diverged model).
        """
        from sklearn.linear_model import LogisticRegression
        from sklearn.mixture import GaussianMixture
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        stats = np.asarray(stats, dtype=np.float64)
        outliers = np.asarray(outliers, dtype=np.float64)
        if len(stats) < 2:
            raise ValueError(f"need at least 2 reference images, got {len(stats)}")
        components = max(1, min(self.components, len(stats) // 20))  # 20 images per component
        if len(outliers) == 0:
            raise ValueError("need outliers to fit the detector")
        if not np.isfinite(stats).all():
            raise ValueError("the reference statistics are not finite: the model's outputs are NaN or inf")
        outliers = outliers[np.isfinite(outliers).all(1)]
        pair = self._pair(stats)
        self.mean, self.scale = pair.mean(0), pair.std(0) + 1e-9
        self.mixture = GaussianMixture(
            components, covariance_type="full", reg_covar=1e-4, random_state=0
        ).fit((pair - self.mean) / self.scale)
        self.regression = make_pipeline(
            StandardScaler(), LogisticRegression(class_weight="balanced", max_iter=5000)
        ).fit(
            np.vstack([self.features(stats), self.features(outliers)]),
            np.r_[np.zeros(len(stats)), np.ones(len(outliers))],
        )
        self.reference = np.sort(self.strangeness(stats))
        self.threshold = float(np.quantile(self.reference, self.quantile))
        return self

    def density_score(self, stats: np.ndarray) -> np.ndarray:
        """-log density (N,) of the (ELBO, complexity) pairs under the fitted mixture, in
        standardised units (higher: less typical)."""
        pair = self._pair(np.atleast_2d(np.asarray(stats, dtype=np.float64)))
        return -self.mixture.score_samples((pair - self.mean) / self.scale)

    def features(self, stats: np.ndarray) -> np.ndarray:
        """What the regression sees (N, 5): ELBO, rate, complexity, added ink, and the density
        score of (ELBO, complexity)."""
        stats = np.atleast_2d(np.asarray(stats, dtype=np.float64))
        return np.column_stack(
            [stats[:, 0] - stats[:, 1], stats[:, 1], stats[:, 2], stats[:, 3], self.density_score(stats)]
        )

    def strangeness(self, stats: np.ndarray) -> np.ndarray:
        """The regression's log-odds (N,) that each image is an outlier; +inf for statistics that
        are not finite (a stranger by any measure)."""
        stats = np.atleast_2d(np.asarray(stats, dtype=np.float64))
        finite = np.isfinite(stats).all(1)
        out = np.full(len(stats), np.inf)
        if finite.any():
            out[finite] = self.regression.decision_function(self.features(stats[finite]))
        return out

    def verdicts(self, stats: np.ndarray) -> list[Verdict]:
        """A ``Verdict`` per row of statistics (N, 4)."""
        strange = self.strangeness(stats)
        pct = 100.0 * np.searchsorted(self.reference, strange, side="right") / len(self.reference)
        return [Verdict(float(s), float(p), bool(s > self.threshold)) for s, p in zip(strange, pct)]


def outlier_images(
    dataset: str, marks: int = OUTLIER_MARKS, noise: int = OUTLIER_NOISE, seed: int = OUTLIER_SEED
) -> torch.Tensor:
    """Synthetic outliers for ``dataset`` (marks + noise, C, H, W): non-digit marks drawn at
    140 pixels and preprocessed the way the dataset made its images (those that preprocessing
    refuses, as at 4x4 pixels where a thin mark vanishes, are left out), then noise. Seeded."""
    from explorer.data.specs import spec
    from explorer.data.uploads import preprocess_image
    from explorer.errors import ImageError

    shape = spec(dataset).image_shape
    drawn = [torch.zeros((0, *shape))]
    for _, image in synthetic_marks(marks, seed, size=140):
        try:
            drawn.append(preprocess_image(image, dataset)[None])
        except ImageError:
            continue
    prepared = noise_pictures(noise, seed, dataset)
    return torch.cat([*drawn, noise_images(noise, seed, shape), prepared])


def noise_pictures(n: int, seed: int, dataset: str) -> torch.Tensor:
    """Up to ``n`` pictures of noise as a user would upload them (80 to 240 pixels a side:
    uniform, Gaussian, salt and pepper; grey or colour as the dataset is), prepared the way
    ``dataset`` made its images. Pictures that preprocessing refuses (as noise) are left out."""
    from explorer.data.specs import spec
    from explorer.data.uploads import preprocess_image
    from explorer.errors import ImageError

    rng = np.random.default_rng(seed + 1)
    channels = spec(dataset).image_shape[0]
    out = []
    for i in range(n):
        h, w = (int(v) for v in rng.integers(80, 241, 2))
        shape = (h, w) if channels == 1 else (h, w, 3)
        if i % 3 == 0:
            levels = rng.uniform(0, 1, shape)
        elif i % 3 == 1:
            levels = np.clip(rng.normal(rng.uniform(0.3, 0.7), rng.uniform(0.1, 0.3), shape), 0, 1)
        else:
            levels = (rng.uniform(0, 1, shape) < rng.uniform(0.05, 0.5)).astype(float)
        try:
            out.append(preprocess_image(Image.fromarray((levels * 255).astype(np.uint8)), dataset))
        except ImageError:
            continue
    return torch.stack(out) if out else torch.zeros((0, *spec(dataset).image_shape))


def fit_detector(model: VAE, x: torch.Tensor, dataset: str) -> StrangerDetector:
    """A detector for ``model`` fitted on the first ``REFERENCE_IMAGES`` of the in-distribution
    images x (N, C, H, W) (grey levels in [0, 1]: the dataset's test set) against synthetic
    outliers for ``dataset``; a test split under MIN_REFERENCE images (a small folder) is topped
    up with training images, which the model has seen: a rougher verdict."""
    reference = x[:REFERENCE_IMAGES]
    if len(reference) < MIN_REFERENCE:
        from explorer.data.cache import load_dataset

        train = load_dataset(dataset, "train").images[: MIN_REFERENCE - len(reference)]
        reference = torch.cat([reference, train.float() / 255.0])
    return StrangerDetector().fit(
        image_statistics(model, reference), image_statistics(model, outlier_images(dataset))
    )


def stranger_message(verdict: Verdict, a_item: str = "a digit") -> str | None:
    """A plain-words warning for a stranger, else None; ``a_item``: "a digit", "an image"."""
    if not verdict.stranger:
        return None
    return (
        f"This does not look like the training data: it is stranger than {verdict.percentile:.1f}% "
        f"of the test images (the warning starts at {100 * STRANGER_QUANTILE:.0f}%). It may not be "
        f"{a_item}; whatever its ELBO, the reconstruction and its place in latent space say little "
        "about it."
    )


# -- probes for measuring the detector (bench/ood.py, tests) --------------------------------------

# Glyphs that no reader takes for a digit; left out: those that look like one (O, o, I, l, S, s,
# Z, z, B, b, g, q, G, and the strokes L, T, J, f, r, y, !, ? that a digit model reads as 1, 7, 9).
MARK_GLYPHS = "AEFHKMNPRWXYaehkmnpwx%@*&#"
MARK_KINDS = ("letter", "plus", "cross", "square", "triangle", "star", "lines", "scribble", "silhouette")


def synthetic_marks(n: int, seed: int = 0, size: int = 280) -> list[tuple[str, Image.Image]]:
    """``n`` pictures of non-digit marks (letters, plus and cross signs, squares, triangles,
    stars, parallel lines, random scribbles, filled and shaded silhouettes), each (kind, a
    greyscale ``size`` x ``size`` PIL image), dark on light or light on dark, in a random stroke
    width and slant. Seeded."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        kind = MARK_KINDS[i % len(MARK_KINDS)]
        dark_on_light = bool(rng.random() < 0.5)
        paper, ink = (255, 0) if dark_on_light else (0, 255)
        image = Image.new("L", (size, size), paper)
        _draw_mark(image, kind, ink, rng)
        out.append((kind, image.rotate(rng.uniform(-20, 20), fillcolor=paper)))
    return out


def _draw_mark(image: Image.Image, kind: str, ink: int, rng: np.random.Generator) -> None:
    """Draw one mark of ``kind`` (one of MARK_KINDS) in grey level ``ink`` on the square
    ``image``, in a random size and stroke width from ``rng``."""
    size = image.size[0]
    draw = ImageDraw.Draw(image)
    width = int(rng.integers(size // 35, size // 10))
    c, r = size / 2, rng.uniform(0.2, 0.4) * size
    if kind == "letter":
        font = ImageFont.load_default(size=int(rng.uniform(0.55, 0.8) * size))
        draw.text((c, c), str(rng.choice(list(MARK_GLYPHS))), font=font, fill=ink, anchor="mm")
    elif kind == "plus":
        draw.line([(c - r, c), (c + r, c)], fill=ink, width=width)
        draw.line([(c, c - r), (c, c + r)], fill=ink, width=width)
    elif kind == "cross":
        draw.line([(c - r, c - r), (c + r, c + r)], fill=ink, width=width)
        draw.line([(c - r, c + r), (c + r, c - r)], fill=ink, width=width)
    elif kind == "square":
        fill = ink if rng.random() < 0.3 else None
        draw.rectangle(
            [c - r, c - r * rng.uniform(0.5, 1), c + r, c + r], outline=ink, width=width, fill=fill
        )
    elif kind == "triangle":
        draw.polygon([(c, c - r), (c + r, c + r), (c - r, c + r)], outline=ink, width=width)
    elif kind == "star":
        points = [
            (c + (r if k % 2 == 0 else 0.4 * r) * math.sin(k * math.pi / 5),
             c - (r if k % 2 == 0 else 0.4 * r) * math.cos(k * math.pi / 5))
            for k in range(10)
        ]  # fmt: skip
        draw.polygon(points, outline=ink, width=width)
    elif kind == "silhouette":  # a filled, shaded shape: an object rather than a stroke
        corners = int(rng.integers(4, 10))
        angles = np.sort(rng.uniform(0, 2 * math.pi, corners))
        radii = r * rng.uniform(0.6, 1.3, corners)
        outline = [(c + q * math.cos(a), c + q * math.sin(a)) for q, a in zip(radii, angles)]
        shade = Image.new("L", image.size, 0)
        ImageDraw.Draw(shade).polygon(outline, fill=255)
        levels = rng.uniform(0.3, 1.0) * np.linspace(rng.uniform(0.4, 1), 1, size)[None, :]
        texture = np.clip(levels + rng.normal(0, 0.08, (size, size)), 0, 1)
        fill = (texture * 255).astype(np.uint8) if ink == 255 else (255 - texture * 255).astype(np.uint8)
        image.paste(Image.fromarray(fill), mask=shade)
    elif kind == "lines":
        for _ in range(int(rng.integers(2, 5))):
            y = rng.uniform(0.15, 0.85) * size
            end = y + rng.uniform(-0.15, 0.15) * size
            draw.line([(0.1 * size, y), (0.9 * size, end)], fill=ink, width=width)
    else:  # a scribble: a random walk of 6 to 15 points, joined smoothly
        p = rng.uniform(0.2, 0.8, 2) * size
        points = [tuple(p)]
        for _ in range(int(rng.integers(5, 15))):
            p = np.clip(p + rng.normal(0, 0.18 * size, 2), 0.07 * size, 0.93 * size)
            points.append(tuple(p))
        draw.line(points, fill=ink, width=width, joint="curve")


def noise_images(n: int, seed: int = 0, shape: tuple[int, int, int] = (1, 28, 28)) -> torch.Tensor:
    """``n`` images (n, C, H, W) of noise in [0, 1], four kinds in turn: uniform, Gaussian
    (mean 0.5, sd 0.25, clipped), sparse salt (20% white) and smooth blobs. Seeded."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, *shape))
    for i in range(n):
        kind = i % 4
        if kind == 0:
            a = rng.random(shape)
        elif kind == 1:
            a = np.clip(rng.normal(0.5, 0.25, shape), 0, 1)
        elif kind == 2:
            a = (rng.random(shape) < 0.2).astype(float)
        else:
            coarse = rng.random((shape[0], max(2, shape[1] // 5), max(2, shape[2] // 5)))
            a = torch.nn.functional.interpolate(
                torch.from_numpy(coarse)[None], size=shape[1:], mode="bicubic", align_corners=False
            )[0].numpy()
            a = (a - a.min()) / max(a.max() - a.min(), 1e-9)
        out[i] = a
    return torch.from_numpy(out.astype(np.float32))


# -- judging images against a model's test set ------------------------------------------------------


@dataclass
class Judgement:
    """What VAE Explorer says of one image under one model."""

    elbo: float  # nats, one draw of eps with a fixed seed (as for the test images it is ranked among)
    elbo_percentile: float  # % of the test images whose ELBO is at or below this one's
    verdict: Verdict

    def to_dict(self, key: str = "elbo") -> dict:
        """The fields of ``vae-explorer reconstruct --json``: the image's figure under ``key``
        (elbo; an autoencoder's reconstruction term under its own name), percentile (of that
        figure), score (strangeness), score_percentile, stranger."""
        return {
            key: round(self.elbo, 4),
            "percentile": round(self.elbo_percentile, 2),
            "score": round(self.verdict.strangeness, 4),
            "score_percentile": round(self.verdict.percentile, 2),
            "stranger": self.verdict.stranger,
        }


class Reference:
    """A model's test set as the yardstick for new images: its per-image ELBO and the stranger
    detector fitted on its statistics."""

    def __init__(self, test_elbo: torch.Tensor, detector: StrangerDetector) -> None:
        self.test_elbo = np.sort(test_elbo.double().numpy())  # (N,)
        self.detector = detector

    @classmethod
    def of(cls, model: VAE, test_x: torch.Tensor, dataset: str) -> Reference:
        """Measure ``model`` on its test images (N, C, H, W) in [0, 1] of ``dataset``."""
        from explorer.explore.latent import reconstruct

        return cls(reconstruct(model, test_x).elbo, fit_detector(model, test_x, dataset))

    def elbo_percentile(self, elbo: float) -> float:
        """% of the test images whose ELBO is at or below ``elbo`` (NaN for a NaN ELBO)."""
        if math.isnan(elbo):
            return math.nan
        return 100.0 * np.searchsorted(self.test_elbo, elbo, side="right") / len(self.test_elbo)

    def judge(self, model: VAE, x: torch.Tensor) -> list[Judgement]:
        """A ``Judgement`` for each image x (N, C, H, W) in [0, 1]."""
        from explorer.explore.latent import reconstruct

        elbos = reconstruct(model, x).elbo.tolist()
        verdicts = self.detector.verdicts(image_statistics(model, x))
        return [Judgement(e, self.elbo_percentile(e), v) for e, v in zip(elbos, verdicts)]
