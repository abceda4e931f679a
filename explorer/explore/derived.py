"""What the pages need of a model's test set, computed once per model and stored beside it.

A model's first view used to redo, in every server process, work whose answer only changes when
the model does: encoding the test set, its per-image ELBO, the KL and variance of each latent
unit, the stranger detector, the aggregate posterior's density maps and, for wide latent spaces,
the t-SNE and UMAP maps. ``compute`` does each part (``PARTS``) once; ``save`` writes them into
``FOLDER`` beside the weights (a shipped model ships them: ``vae-explorer derive NAME``; a run
writes them when training finishes); ``load`` reads them back in milliseconds and refuses files
that are not the model's; ``ensure`` adds a missing part (a page that needs only the codes does
not wait for the detector).

The files, this module's format and no other's:

- ``derived/derived.json``: the format version, the SHA-256 of the model's ``model.safetensors``
  the figures were computed from, the dataset and its test-set size, the SHA-256 of the arrays
  file, the few scalars, and the seconds each part took to compute;
- ``derived/derived.safetensors``: the arrays (codes (N, z) float32, ELBO (N,), per-unit KL and
  variance (z,), the detector's fitted parameters, density maps (G, G), map places (N, 2)).

A detector fitted on other statistics than ``strangers.STATISTICS`` (derived.json names them), or
density maps of another ``density.ESTIMATOR``, are left out when the files are read, and
``ensure`` computes that part again alone.

Both are written atomically (the arrays first, the JSON that names their checksum last), so a
reader sees the old pair, the new pair, or a pair whose checksums disagree, which is refused and
recomputed. Pure PyTorch/NumPy/scikit-learn; no Streamlit.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from explorer.explore.density import ESTIMATOR, DensityMap, aggregate_maps
from explorer.explore.detector_store import DETECTOR_ARRAYS, detector_arrays, detector_from_arrays
from explorer.explore.strangers import STATISTICS, StrangerDetector
from explorer.locations import MODEL_FILE

FORMAT = 1  # bump when what is stored, or how, changes: older files are then recomputed
FOLDER = "derived"
META = "derived.json"
ARRAYS = "derived.safetensors"
MAPS = ("tsne", "umap")  # the nonlinear maps a wide model may store
PARTS = ("codes", "elbo", "units", "detector", "densities", *MAPS)
UNITS_ON = {True: "binarised", False: "grey levels"}  # the test images a model's units are measured on
CORE = PARTS[:5]  # what training writes and every page may need; the maps take a minute each
WHAT = {  # each part in words, for whoever waits while it is measured (the Train page, the log)
    "codes": "codes",
    "elbo": "ELBO of each image",
    "units": "KL of each latent unit",
    "detector": "stranger detector",
    "densities": "density maps",
    "tsne": "t-SNE map",
    "umap": "UMAP map",
}


class Stale(Exception):
    """The derived files are missing, damaged, of another format, or of another model: the
    message says which. Callers recompute; nobody shows it to a person as an error."""


@dataclass
class Derived:
    """A model's test-set figures (see the module's docstring); a part not computed is None."""

    dataset: str
    codes: torch.Tensor | None = None  # (N, z) posterior means E_q[z|x] (an autoencoder: codes)
    elbo: torch.Tensor | None = None  # (N,) per-image ELBO, nats (``latent.reconstruct``; AE: log p(x|z))
    kl: torch.Tensor | None = None  # (z,) mean KL(q(z_j|x) || N(0, 1)) in nats ("units"; AE: zeros)
    variance: torch.Tensor | None = None  # (z,) variance over the test set of each posterior mean
    units_on: str | None = None  # what "units" measured: "binarised" or "grey levels" (as evaluate scores)
    densities: dict[str, DensityMap] | None = None  # "prior": the Prior tab's; "map": over the
    # whole scatter, for its contours ({} for an autoencoder, which has no posterior)
    maps: dict[str, torch.Tensor] = field(default_factory=dict)  # "tsne"/"umap": places (N, 2)
    seconds: dict[str, float] = field(default_factory=dict)  # what each part took to compute
    _detector: StrangerDetector | None = field(default=None, repr=False)
    _stored_detector: tuple[dict, dict] | None = field(default=None, repr=False)  # its arrays, scalars

    @property
    def detector(self) -> StrangerDetector | None:
        """The stranger detector; one read from the files is restored on its first use."""
        if self._detector is None and self._stored_detector is not None:
            self._detector = detector_from_arrays(*self._stored_detector)  # the arrays stay, to save
        return self._detector

    @detector.setter
    def detector(self, value: StrangerDetector | None) -> None:
        self._detector, self._stored_detector = value, None

    def has(self, part: str) -> bool:
        """Whether ``part`` (one of ``PARTS``) is here; a 2-D model has every map (it is drawn as
        it is)."""
        if part in MAPS:
            return part in self.maps or (self.codes is not None and self.codes.shape[1] <= 2)
        if part == "detector":
            return self._detector is not None or self._stored_detector is not None
        return getattr(self, {"units": "kl"}.get(part, part)) is not None


def model_checksum(folder: str | os.PathLike) -> str:
    """SHA-256 (hex) of the model's weights file in ``folder``: what the derived files name."""
    with open(Path(folder) / MODEL_FILE, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


# -- computing ------------------------------------------------------------------------------------


def test_images(dataset: str) -> torch.Tensor:
    """The dataset's test images (N, C, H, W) as grey levels in [0, 1], as the pages use them."""
    from explorer.data.cache import load_dataset

    return load_dataset(dataset, "test").images.float() / 255.0


def _timed(seconds: dict, name: str, work, report: Callable[[str], None] | None = None):
    """``work()``, its seconds kept in ``seconds[name]``; ``report(name)`` first, when given."""
    if report is not None:
        report(name)
    start = time.perf_counter()
    out = work()
    seconds[name] = round(time.perf_counter() - start, 3)
    return out


@torch.no_grad()
def compute(
    model,
    dataset: str,
    parts=CORE,
    x: torch.Tensor | None = None,
    into: Derived | None = None,
    report: Callable[[str], None] | None = None,
    binarized: bool = False,
) -> Derived:
    """The ``parts`` (of ``PARTS``) of ``model``'s figures over ``dataset``'s test images x (N, C,
    H, W) in [0, 1] (default: loaded), added to ``into`` (default: new); parts already there are
    kept. The maps take a minute each for 10,000 codes on a 2-core CPU (only for z > 2).
    ``report(part)`` is called as each part starts (to say what is being measured).
    ``binarized``: the model is scored on binarised images (its run binarised them): its units are
    measured on the test set binarised as ``vae-explorer evaluate`` does, so that the two agree on
    which units are active (on grey levels, a unit near the threshold came out otherwise).

    Raises:
        ValueError: an unknown part.
    """
    from explorer.data.cache import eval_images
    from explorer.evaluate import fit_projection, latent_stats
    from explorer.explore.latent import encode_means, reconstruct
    from explorer.explore.strangers import fit_detector

    unknown = set(parts) - set(PARTS)
    if unknown:
        raise ValueError(f"unknown parts {sorted(unknown)}: use {', '.join(PARTS)}")
    model = model.eval()
    out = into if into is not None else Derived(dataset)
    todo = [p for p in PARTS if p in parts and not out.has(p)]
    if todo and x is None:
        x = test_images(dataset)
    if out.codes is None and ({"codes", "densities"} & set(todo) or set(MAPS) & set(todo)):
        out.codes = _timed(out.seconds, "codes", lambda: encode_means(model, x), report)
    if "elbo" in todo:
        out.elbo = _timed(out.seconds, "elbo", lambda: reconstruct(model, x).elbo.float(), report)
    if "units" in todo:
        on = eval_images(dataset, "test", binarized=True)[0] if binarized else x
        out.variance, out.kl = (
            v.double() for v in _timed(out.seconds, "units", lambda: latent_stats(model, on), report)
        )
        out.units_on = UNITS_ON[binarized]
    if "detector" in todo:
        out.detector = _timed(out.seconds, "detector", lambda: fit_detector(model, x, dataset), report)
    if "densities" in todo:
        projection = fit_projection(out.codes)
        out.densities = (
            _timed(out.seconds, "densities", lambda: aggregate_maps(model, x, projection, out.codes), report)
            if model.config.variational
            else {}
        )
    for kind in MAPS:
        if kind in todo:
            if report is not None:
                report(kind)
            add_map(out, kind)
    return out


def add_map(derived: Derived, kind: str) -> None:
    """Fit the t-SNE or UMAP map (``kind``) of the codes and keep its places (N, 2) in ``derived``
    (a 2-D latent space is drawn as it is: nothing to fit)."""
    from explorer.explore.projections import fit_nonlinear

    if kind not in MAPS:
        raise ValueError(f"unknown map {kind!r}: use one of {', '.join(MAPS)}")
    if derived.has(kind):
        return
    fitted = fit_nonlinear(kind, derived.codes)
    derived.maps[kind] = fitted.points
    derived.seconds[kind] = round(fitted.seconds, 3)


# -- the files -------------------------------------------------------------------------------------


def folder_of(model_folder: str | os.PathLike) -> Path:
    """Where a model's derived files live: ``MODEL_FOLDER/derived``."""
    return Path(model_folder) / FOLDER


def _arrays(derived: Derived) -> dict[str, np.ndarray]:
    arrays = {}
    for name in ("codes", "elbo", "kl", "variance"):
        value = getattr(derived, name)
        if value is not None:
            arrays[name] = value.numpy()
    if derived._stored_detector is not None:  # as it was read: the same arrays again
        arrays.update(derived._stored_detector[0])
    elif derived.detector is not None:
        arrays.update(detector_arrays(derived.detector))
    for name, dmap in (derived.densities or {}).items():
        arrays.update({f"density.{name}.xs": dmap.xs, f"density.{name}.ys": dmap.ys,
                       f"density.{name}.aggregate": dmap.aggregate.astype(np.float32),
                       f"density.{name}.prior": dmap.prior.astype(np.float32),
                       f"density.{name}.holes": dmap.holes.astype(np.uint8)})  # fmt: skip
    for kind, points in derived.maps.items():
        arrays[f"map.{kind}"] = points.float().numpy()
    return {k: np.ascontiguousarray(v) for k, v in arrays.items()}


def _detector_scalars(derived: Derived) -> dict | None:
    if derived._stored_detector is not None:
        return derived._stored_detector[1]
    found = derived.detector
    if found is None:
        return None
    fitted_on = int(found.regression[0].n_samples_seen_)  # the reference images and outliers
    return {"components": found.components, "quantile": found.quantile, "threshold": found.threshold,
            "fitted_on": fitted_on, "statistics": list(STATISTICS), "ink": found.ink}  # fmt: skip


def save(model_folder: str | os.PathLike, derived: Derived, checksum: str | None = None) -> Path:
    """Write ``derived`` beside the model in ``model_folder`` (``FOLDER``), naming the weights'
    ``checksum`` (default: computed now); returns the folder. Atomic per file, the JSON last.

    Raises:
        OSError: the folder cannot be written (a read-only install: callers may go on without).
    """
    from safetensors.numpy import save as to_bytes

    from explorer.checkpoints import atomic_write

    checksum = checksum or model_checksum(model_folder)
    out = folder_of(model_folder)
    out.mkdir(exist_ok=True)
    blob = to_bytes(_arrays(derived))
    meta = {
        "format": FORMAT,
        "model_sha256": checksum,
        "arrays_sha256": hashlib.sha256(blob).hexdigest(),
        "dataset": derived.dataset,
        "test_images": None if derived.codes is None else len(derived.codes),
        "parts": [p for p in PARTS if derived.has(p) and (p not in MAPS or p in derived.maps)],
        "detector": _detector_scalars(derived),
        "densities": None if derived.densities is None else {
            name: {"prior_centre": list(d.prior_centre), "hole_mass": d.hole_mass}
            for name, d in derived.densities.items()},
        "density_estimator": ESTIMATOR,
        "units_on": derived.units_on,
        "seconds": derived.seconds,
    }  # fmt: skip
    atomic_write(out / ARRAYS, blob)
    atomic_write(out / META, (json.dumps(meta, indent=1) + "\n").encode())
    return out


def load(model_folder: str | os.PathLike, checksum: str | None = None) -> Derived:
    """The derived figures stored beside the model in ``model_folder``, checked against the
    weights' ``checksum`` (default: computed now) and against their own.

    Raises:
        Stale: missing files, another format, another model's figures, or a damaged file.
    """
    from safetensors.numpy import load as from_bytes

    out = folder_of(model_folder)
    try:
        meta = json.loads((out / META).read_text())
        blob = (out / ARRAYS).read_bytes()
    except FileNotFoundError:
        raise Stale(f"no derived files in {out}") from None
    except (OSError, ValueError) as exc:
        raise Stale(f"{out / META} cannot be read: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise Stale(f"{out / META} is of another format (not {FORMAT})")
    if meta.get("model_sha256") != (checksum or model_checksum(model_folder)):
        raise Stale(f"{out} holds the figures of other weights than {Path(model_folder) / MODEL_FILE}")
    if meta.get("arrays_sha256") != hashlib.sha256(blob).hexdigest():
        raise Stale(f"{out / ARRAYS} is damaged or not the one {META} names")
    try:
        return _derived_from(meta, from_bytes(blob))
    except Exception as exc:  # a checksummed file of this format that still does not parse
        raise Stale(f"{out} does not hold what format {FORMAT} stores: {exc}") from None


def _derived_from(meta: dict, arrays: dict[str, np.ndarray]) -> Derived:
    parts = set(meta["parts"])
    tensor = lambda name: torch.from_numpy(arrays[name]) if name in arrays else None  # noqa: E731
    out = Derived(meta["dataset"], tensor("codes"), tensor("elbo"), tensor("kl"), tensor("variance"))
    if "detector" in parts and meta["detector"].get("statistics") != list(STATISTICS):
        parts.discard("detector")  # fitted on other statistics than image_statistics gives: refit
    if meta.get("density_estimator") != ESTIMATOR:
        parts.discard("densities")  # drawn by another estimator of q(z): drawn again
    if meta.get("units_on") not in UNITS_ON.values():  # measured on grey levels whatever the model
        parts.discard("units")
        out.kl = out.variance = None
    out.units_on = meta.get("units_on")
    if "detector" in parts:
        stored = {k: v for k, v in arrays.items() if k.startswith("detector.")}
        if set(stored) != set(DETECTOR_ARRAYS):
            raise ValueError(f"the detector's arrays are not {', '.join(DETECTOR_ARRAYS)}")
        out._stored_detector = stored, dict(meta["detector"])
    if "densities" in parts:
        out.densities = {}
        for name, scalars in meta["densities"].items():
            part = {k: arrays[f"density.{name}.{k}"] for k in ("xs", "ys", "aggregate", "prior", "holes")}
            out.densities[name] = DensityMap(
                part["xs"], part["ys"], part["aggregate"].astype(np.float64),
                part["prior"].astype(np.float64), part["holes"].astype(bool),
                tuple(scalars["prior_centre"]), float(scalars["hole_mass"]),
            )  # fmt: skip
    out.maps = {kind: torch.from_numpy(arrays[f"map.{kind}"]) for kind in MAPS if kind in parts}
    out.seconds = dict(meta.get("seconds") or {})
    if not all(out.has(p) for p in parts):
        raise ValueError(f"parts {sorted(p for p in parts if not out.has(p))} are named but not stored")
    return out


def ensure(
    model_folder: str | os.PathLike, model=None, parts=CORE, known: Derived | None = None,
    report: Callable[[str], None] | None = None, must_store: bool = False,
) -> Derived:  # fmt: skip
    """The model's derived figures with at least ``parts``: read from beside the model (or
    ``known``, figures of this model already read), the missing parts computed and the whole
    written back; a folder that cannot be written keeps nothing, and the figures are returned
    all the same (unless ``must_store``). ``model``: the loaded model, if the caller has it;
    ``report``: as ``compute`` takes it.

    Raises:
        ExplorerError: with ``must_store`` (``vae-explorer derive``, a run's last stage), the
            figures could not be written (a full disk, a read-only folder), saying why.
        DataChanged: the model's dataset is not the one it was trained on any more.
    """
    from explorer.cards import run_binarizes
    from explorer.checkpoints import dataset_of, load_checkpoint, read_config
    from explorer.data.record import check_trained_data
    from explorer.errors import ExplorerError

    checksum = model_checksum(model_folder)
    derived = known
    if derived is None:
        try:
            derived = load(model_folder, checksum)
        except Stale:
            derived = Derived(dataset_of(read_config(model_folder)))
    check_trained_data(model_folder, derived.dataset)  # stored figures of its own data, or none
    config = read_config(model_folder)
    likelihood = (config.get("model") or {}).get("likelihood", "bernoulli")
    binarized = run_binarizes(config, derived.dataset, likelihood)
    if derived.units_on not in (None, UNITS_ON[binarized]):
        derived.kl = derived.variance = derived.units_on = None  # measured on other images than it scores
    if all(derived.has(p) for p in parts):
        return derived
    model = model if model is not None else load_checkpoint(model_folder)
    derived = compute(model, derived.dataset, parts, into=derived, report=report, binarized=binarized)
    try:
        save(model_folder, derived, checksum)
    except OSError as exc:
        if must_store:  # `derive`, a run's last stage: said, never "stored" (a full disk said 0.00 MB)
            full = {errno.ENOSPC: "the disk is full", errno.EDQUOT: "the disk quota is used up"}
            raise ExplorerError(
                f"the derived figures could not be stored in {folder_of(model_folder)} "
                f"({full.get(exc.errno, exc.strerror or str(exc))}); the "
                f"model itself is kept: make room and run 'vae-explorer derive {model_folder}'"
            ) from None
        # a read-only install (the app's shipped models): the figures serve this process only
    return derived
