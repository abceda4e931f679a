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
- for a dataset of drawings (``reads_ink``), two statistics of the image's ink
  (``explorer.explore.ink``): the share of its ink at full strength and the ink's width. A
  photo of a garment or a shoe shrunk into a digit's box keeps its spread of tones and fills a
  wider area, where a digit is strokes of full ink; the model's own figures alone flagged only
  39% (``mnist-z2``) and 64% (``mnist-z20``) of Fashion-MNIST items uploaded to it, these two
  lift it to over 90% (``bench/README.md``);
- outlier exposure (Hendrycks et al. 2019, "Deep Anomaly Detection with Outlier Exposure"): a
  logistic regression on those seven (or five) numbers, trained to tell the test images from
  synthetic outliers made on the spot (``explorer.explore.outliers``: non-digit marks drawn and
  preprocessed the way the dataset made its images, and noise; for a dataset of drawings, also
  photographed objects: filled, textured garments, bags, shoes and polygons, prepared as an
  upload is). No image of another dataset is ever used to fit it.

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
from PIL import Image

from explorer.explore.ink import INK_STATISTICS, INK_UNITS, ink_statistics
from explorer.explore.outliers import outlier_images
from explorer.model import BATCH, VAE, in_batches
from explorer.objectives import kl_standard_normal

STATISTICS = ("distortion", "rate", "complexity", "added ink", *INK_STATISTICS)
UNITS = ("nats", "nats", "bits", "pixels", *INK_UNITS)
REFERENCE_IMAGES, MIN_REFERENCE = 5000, 200  # test images the detector is fitted to (the rest
# stay unseen, for bench/ood.py); a smaller test split is topped up with training images
STRANGER_QUANTILE = 0.96  # strangeness above this quantile of the reference images' is a stranger
COMPONENTS = 8  # of the Gaussian mixture of (ELBO, complexity)
SOURCE = (
    "a logistic regression (outlier exposure, Hendrycks et al. 2019) on the model's ELBO, rate "
    "and added ink (density of states, Morningstar et al. 2021), on the image's PNG size and "
    "how typical that size is for its ELBO (input complexity, Serrà et al. 2020), and on how "
    "much of its ink is at full strength and how wide it is"
)
# Datasets whose models' verdicts bench/ood.py measures and finds within the targets (AUROC >= 0.95
# against other data, <= 5% of the model's own unseen test images flagged; bench/README.md). A
# model of any other dataset gets its percentile but no verdict: the shapes' detectors, measured,
# miss the targets (MISSED); photographs and folders are not measured.
MEASURED_DATASETS = ("mnist", "fashion-mnist")
MISSED = {  # what bench/ood.py measured of the detectors it found short, for the pages' note
    "shapes": "AUROC against uploaded clothing 0.19 for shapes-conv-z8 and 0.94 for "
    "shapes-conv-bce-z8, where 0.95 is asked, and 93-97% of filled discs drawn in bright colours "
    "called strangers by both",
}


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
    """Why a model of ``dataset`` gets no stranger verdict: its detector misses the targets
    (``MISSED``: what bench/ood.py measured), or has not been measured."""
    why = (
        f"bench/ood.py measured the shipped {dataset} models' detectors and they miss the targets "
        f"({MISSED[dataset]})"
        if dataset in MISSED
        else "its detector has not been measured against other data (bench/ood.py measures the "
        "MNIST, Fashion-MNIST and shapes models)"
    )
    return (
        f"No stranger verdict for a model of {dataset}: {why}. The percentile above says how this "
        "image's fit compares."
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
    """The statistics of images x (N, C, H, W) in [0, 1]: (N, 6) float64, columns
    ``STATISTICS``: distortion log p(x | z = mu) and rate KL(q(z|x) || N(0, I)), both in nats
    summed over pixels or latent dimensions (an autoencoder's rate: 0); the PNG size in bits;
    the added ink, the sum over pixels of max(decoder mean - x, 0) at z = mu (what the
    reconstruction draws where the image has nothing); and the ink statistics of
    ``explorer.explore.ink`` (full ink share, ink width in pixels)."""

    def statistics(xb: torch.Tensor) -> torch.Tensor:
        mu, logvar = model.encode(xb)
        distortion = model.log_prob(xb, model.decoder_params(mu))
        rate = torch.zeros_like(distortion) if logvar is None else kl_standard_normal(mu, logvar)
        added = (model.decode(mu).mean - xb).clamp_min(0).flatten(1).sum(1)
        return torch.stack([distortion, rate, added], 1).double()

    stats = in_batches(model, statistics, x, batch_size=batch_size).numpy()
    return np.column_stack([stats[:, :2], png_bits(x), stats[:, 2], ink_statistics(x)])


@dataclass
class Verdict:
    """What the detector says of one image."""

    strangeness: float  # the detector's log-odds that the image is an outlier (higher: stranger)
    percentile: float  # % of the reference images that are at most as strange
    stranger: bool  # strangeness above the detector's threshold
    reasons: tuple[str, ...] = ()  # for a stranger: what made it strange, most first (``REASONS``)


class StrangerDetector:
    """What is typical of a model's own images, and the line beyond which an image is a stranger
    (see the module's docstring). ``fit`` takes the statistics (N, 6) of reference images and of
    synthetic outliers (``image_statistics``); ``strangeness`` and ``verdicts`` judge new ones.
    """

    def __init__(
        self, components: int = COMPONENTS, quantile: float = STRANGER_QUANTILE, ink: bool = True
    ) -> None:
        self.components, self.quantile = components, quantile
        self.ink = ink  # whether the regression reads the ink statistics (``reads_ink``)

    @staticmethod
    def _pair(stats: np.ndarray) -> np.ndarray:
        """(ELBO, complexity) (N, 2) from statistics (N, 6)."""
        return np.column_stack([stats[:, 0] - stats[:, 1], stats[:, 2]])

    def fit(self, stats: np.ndarray, outliers: np.ndarray) -> StrangerDetector:
        """Fit the density to reference statistics (N, 6), the regression to them against the
        outliers' (M, 6), and set the threshold.

        Raises:
            ValueError: fewer than 2 reference images, no outliers, statistics that are not
                finite (a diverged model), or not one column per ``STATISTICS``.
        """
        from sklearn.linear_model import LogisticRegression
        from sklearn.mixture import GaussianMixture
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        stats = np.asarray(stats, dtype=np.float64)
        outliers = np.asarray(outliers, dtype=np.float64)
        if stats.ndim != 2 or outliers.ndim != 2 or {stats.shape[1], outliers.shape[1]} != {len(STATISTICS)}:
            raise ValueError(f"statistics must have {len(STATISTICS)} columns ({', '.join(STATISTICS)})")
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
        """What the regression sees (N, 7): ELBO, rate, complexity, added ink, the density score
        of (ELBO, complexity), and where it reads ink, the full ink share and the ink width."""
        stats = np.atleast_2d(np.asarray(stats, dtype=np.float64))
        ink = stats[:, 4:] if self.ink else stats[:, :0]
        return np.column_stack([stats[:, 0] - stats[:, 1], stats[:, 1:4], self.density_score(stats), ink])

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
        """A ``Verdict`` per row of statistics (N, 6), a stranger's with its ``reasons``."""
        strange = self.strangeness(stats)
        pct = 100.0 * np.searchsorted(self.reference, strange, side="right") / len(self.reference)
        out = [Verdict(float(s), float(p), bool(s > self.threshold)) for s, p in zip(strange, pct)]
        for verdict, row in zip(out, np.atleast_2d(stats)):
            if verdict.stranger and np.isfinite(row).all():
                verdict.reasons = self.reasons(row)
        return out

    def reasons(self, stats: np.ndarray, top: int = 2) -> tuple[str, ...]:
        """What pushes one image's statistics (6,) towards "stranger" most, in words
        (``explorer.explore.reasons.strongest``)."""
        from explorer.explore.reasons import strongest

        fitted = self.regression  # scikit-learn's pipeline, or as restored (detector_store)
        mean, scale, coef = (
            (fitted.mean, fitted.scale, fitted.coef)
            if hasattr(fitted, "coef")
            else (fitted[0].mean_, fitted[0].scale_, fitted[-1].coef_)
        )
        z = (self.features(stats[None])[0] - mean) / scale
        names = ["ELBO", "rate", "complexity", "added ink", "density", *(INK_STATISTICS if self.ink else ())]
        return strongest(names, coef[0], z, top)


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
    return StrangerDetector(ink=reads_ink(dataset)).fit(
        image_statistics(model, reference), image_statistics(model, outlier_images(dataset))
    )


def reads_ink(dataset: str) -> bool:
    """Whether a detector for ``dataset`` reads the ink statistics: for a dataset of drawings (the
    "ink" convention, MNIST) they tell strokes from photographed objects; for Fashion-MNIST,
    measured, they cost the verdict on uploaded digits (AUROC 0.93 against 0.97 without them),
    and photographs are not drawings."""
    from explorer.data.specs import spec

    return spec(dataset).convention.kind == "ink"


def stranger_message(verdict: Verdict, a_item: str = "a digit") -> str | None:
    """A plain-words warning for a stranger, with what made it strange when known, else None;
    ``a_item``: "a digit", "an image"."""
    if not verdict.stranger:
        return None
    why = (  # of the picture as prepared for the model (a photo may come out as a bar or a blob)
        f" What made it strange, most (in the prepared picture the model reads): "
        f"{'; and '.join(verdict.reasons)}."
        if verdict.reasons
        else ""
    )
    return (
        f"This does not look like the training data: it is stranger than {verdict.percentile:.1f}% "
        f"of the test images (the warning starts at {100 * STRANGER_QUANTILE:.0f}%). It may not be "
        f"{a_item}, or be one made unlike the training images (a flat silhouette where they are "
        "photographs, a photo where they are pen strokes); whatever its ELBO, the reconstruction and "
        "its place in latent space say little about it." + why
    )


# -- judging images against a model's test set ------------------------------------------------------

FEW_TEST_IMAGES = 100  # below this many test images, a rank is said as a count, not a percentage


def rank_words(percentile: float, count: int) -> str:
    """ "higher than P% of the test images" for ``percentile`` (0-100) among ``count`` test images:
    with one decimal from 1,000 images, none from 100, and below ``FEW_TEST_IMAGES`` as how many of
    them ("higher than 6 of the 7 test images"; "none of"/"all"; among one, "at or above the one
    test image's", which may be that image's own); ``count`` 0: not known, as a percentage. The
    ends are said in words ("higher than all 10,000 test images", not "100.0%"), and a share that
    rounds to an end is said as "over 99.9%" or "under 0.1%"."""
    if count == 1:  # a folder of a dozen pictures may hold one
        return "at or above the one test image's" if percentile >= 100 else "below the one test image's"
    if 0 < count < FEW_TEST_IMAGES:
        below = round(percentile * count / 100.0)
        if below == 0:
            return f"higher than none of the {count} test images"
        if below == count:
            return f"higher than all {count} test images"
        return f"higher than {below} of the {count} test images"
    digits = 0 if 0 < count < 1000 else 1
    said, step = f"{percentile:.{digits}f}", 10.0**-digits
    the = f"{count:,} test images" if count else "test images"
    if percentile >= 100:  # not "100.0% of"
        return f"higher than all {the}" if count else "higher than all the test images"
    if percentile <= 0:
        return f"higher than none of the {the}"
    if float(said) >= 100:  # 99.96 rounds to 100.0, which it is not
        return f"higher than over {100 - step:.{digits}f}% of the test images"
    if float(said) <= 0:
        return f"higher than under {step:.{digits}f}% of the test images"
    return f"higher than {said}% of the test images"


@dataclass
class Judgement:
    """What VAE Explorer says of one image under one model."""

    elbo: float  # nats, one draw of eps with a fixed seed (as for the test images it is ranked among)
    elbo_percentile: float  # % of the test images whose ELBO is at or below this one's
    verdict: Verdict
    test_count: int = 0  # how many test images it is ranked among (0: not said)

    def ranked(self) -> str:
        """Where the image's ELBO falls among the test images', in words: "higher than 85.7% of the
        test images", or, among fewer than ``FEW_TEST_IMAGES``, as a count ("higher than 6 of the
        7 test images"), where a percentage would claim a precision the test set does not have."""
        return rank_words(self.elbo_percentile, self.test_count)

    def to_dict(self, key: str = "elbo") -> dict:
        """The fields of ``vae-explorer reconstruct --json``: the image's figure under ``key``
        (elbo; an autoencoder's reconstruction term under its own name), percentile (of that
        figure), test_images (how many it is ranked among), score (strangeness),
        score_percentile, stranger, reasons (a stranger's: what made it strange, most first;
        empty for others)."""
        return {
            key: round(self.elbo, 4),
            "percentile": round(self.elbo_percentile, 2),
            "test_images": self.test_count,
            "score": round(self.verdict.strangeness, 4),
            "score_percentile": round(self.verdict.percentile, 2),
            "stranger": self.verdict.stranger,
            "reasons": list(self.verdict.reasons),
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
        count = len(self.test_elbo)
        return [Judgement(e, self.elbo_percentile(e), v, count) for e, v in zip(elbos, verdicts)]
