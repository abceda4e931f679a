"""A fitted stranger detector (``explorer.explore.strangers.StrangerDetector``) as arrays, to store
beside a model (``explorer.explore.derived``) and to restore without scikit-learn."""

from __future__ import annotations

import numpy as np

from explorer.explore.strangers import StrangerDetector


def detector_arrays(detector: StrangerDetector) -> dict[str, np.ndarray]:
    """The fitted detector's parameters: its standardisation of (ELBO, complexity), the mixture's
    weights, means, covariances and precision factors, the regression's scaler and coefficients,
    and the reference images' sorted strangeness."""
    mixture = detector.mixture
    scaler, regression = detector.regression[0], detector.regression[-1]
    return {
        "detector.mean": detector.mean,
        "detector.scale": detector.scale,
        "detector.weights": mixture.weights_,
        "detector.means": mixture.means_,
        "detector.covariances": mixture.covariances_,
        "detector.precisions_cholesky": mixture.precisions_cholesky_,
        "detector.scaler_mean": scaler.mean_,
        "detector.scaler_scale": scaler.scale_,
        "detector.scaler_var": scaler.var_,
        "detector.coef": regression.coef_,
        "detector.intercept": regression.intercept_,
        "detector.reference": detector.reference,
    }


DETECTOR_ARRAYS = tuple(f"detector.{name}" for name in (
    "mean", "scale", "weights", "means", "covariances", "precisions_cholesky", "scaler_mean",
    "scaler_scale", "scaler_var", "coef", "intercept", "reference"))  # fmt: skip


def detector_from_arrays(arrays: dict[str, np.ndarray], scalars: dict) -> StrangerDetector:
    """A ``StrangerDetector`` restored from ``detector_arrays``, judging as the fitted one did:
    its mixture's log density and its regression's log-odds are computed here in NumPy from the
    stored parameters, the formulas of scikit-learn's ``GaussianMixture.score_samples`` (full
    covariances) and ``StandardScaler`` + ``LogisticRegression.decision_function``, so reading a
    detector does not import scikit-learn (seconds on a 2-core CPU)."""
    a = {k.removeprefix("detector."): v for k, v in arrays.items()}
    detector = StrangerDetector(scalars["components"], scalars["quantile"], scalars.get("ink", True))
    detector.mean, detector.scale = a["mean"], a["scale"]
    detector.mixture = _Mixture(a["weights"], a["means"], a["precisions_cholesky"])
    detector.regression = _Regression(a["scaler_mean"], a["scaler_scale"], a["coef"], a["intercept"])
    detector.reference, detector.threshold = a["reference"], float(scalars["threshold"])
    return detector


class _Mixture:
    """A fitted Gaussian mixture (K components, full covariances) as its log density."""

    def __init__(self, weights: np.ndarray, means: np.ndarray, precisions_cholesky: np.ndarray) -> None:
        self.log_weights, self.means, self.chol = np.log(weights), means, precisions_cholesky

    def score_samples(self, x: np.ndarray) -> np.ndarray:
        """log p(x) (N,) of points x (N, D): log sum_k w_k N(x; m_k, S_k), with S_k^-1 = L_k L_k^T."""
        y = np.einsum("nd,kde->nke", x, self.chol) - np.einsum("kd,kde->ke", self.means, self.chol)[None]
        log_det = np.log(np.diagonal(self.chol, axis1=1, axis2=2)).sum(1)  # (K,)
        log_prob = -0.5 * (x.shape[1] * np.log(2 * np.pi) + (y**2).sum(2)) + log_det + self.log_weights
        top = log_prob.max(1, keepdims=True)
        return (top + np.log(np.exp(log_prob - top).sum(1, keepdims=True)))[:, 0]


class _Regression:
    """A fitted standardisation and binary logistic regression as their log-odds."""

    def __init__(self, mean: np.ndarray, scale: np.ndarray, coef: np.ndarray, intercept: np.ndarray) -> None:
        self.mean, self.scale, self.coef, self.intercept = mean, scale, coef, intercept

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        """Log-odds (N,) of features x (N, F)."""
        return (((x - self.mean) / self.scale) @ self.coef.T + self.intercept).ravel()
