"""The model picker shared by every page, and cached loading of models and their encodings."""

from __future__ import annotations

import math
import threading

import streamlit as st
import torch

from explorer.checkpoints import dataset_of, load_checkpoint, pretrained_names, read_config, resolve
from explorer.config import NO_ENCODER, encoder_trained
from explorer.data.cache import eval_images, load_dataset
from explorer.data.record import check_trained_data
from explorer.data.specs import spec
from explorer.errors import ExplorerError
from explorer.evaluate import ACTIVE_UNIT_THRESHOLD, fit_projection
from explorer.explore.derived import Derived, Stale, model_checksum
from explorer.explore.derived import ensure as ensure_derived
from explorer.explore.derived import load as load_derived
from explorer.explore.strangers import StrangerDetector
from explorer.locations import MODEL_FILE
from explorer.model import VAE
from explorer.pictures.images import ScatterPicture
from explorer.pictures.plots import PALETTE
from explorer.train.runfolder import list_runs, runs_root
from explorer.ui.paper import paper_models
from explorer.ui.share import (
    CHOSEN_MODEL,
    MAP,
    PICKED,
    RUN_PREFIX,
    WIDGET_OF,
    publish_view,
    restore_view,
    settle_view,
)
from explorer.ui.widgets import PHONE_WIDTH, load_charts_early

MAP_POINTS = 2000  # encoded test images on the small maps beside uploads, drawings, sliders


def choices() -> list[str]:
    """Shipped model names, then the user's finished or checkpointed runs as ``runs/NAME``, then
    those of ``vae-explorer paper`` as ``runs/paper/FIGURE/NAME``."""
    runs = [f"{RUN_PREFIX}{r}" for r in list_runs() if (runs_root() / r / MODEL_FILE).is_file()]
    return pretrained_names() + runs + paper_models()


def folder_of(choice: str):
    if choice.startswith(RUN_PREFIX):
        return runs_root() / choice[len(RUN_PREFIX) :]
    return resolve(choice)


@st.cache_resource(show_spinner="Loading model...", max_entries=8)
def cached_model(path: str, mtime_ns: int) -> VAE:  # mtime in the key: a retrained run reloads
    torch.set_grad_enabled(False)
    return load_checkpoint(path)


def model_key(choice: str) -> tuple[str, int]:
    """(folder, mtime of its weights): the cache key of everything computed from the model."""
    folder = folder_of(choice)
    try:
        return str(folder), (folder / MODEL_FILE).stat().st_mtime_ns
    except FileNotFoundError:
        raise ExplorerError(f"model {choice!r} is gone ({folder} has no weights); pick another") from None


def load_model(choice: str) -> tuple[VAE, dict]:
    """The model and its config.json; raises ExplorerError with a message for the page (also a
    model whose dataset changed since it was trained: ``DataChanged``, checked at every run)."""
    path, mtime = model_key(choice)
    config = read_config(path)
    check_trained_data(path, dataset_of(config))
    return cached_model(path, mtime), config


PAGES = (  # (script, sidebar label, icon, what it offers: the Home page's list, {a_item} filled in)
    ("app.py", "Home", ":material/home:", ""),
    ("pages/1_Train.py", "Train", ":material/monitoring:", "Train a model and watch its curves live"),
    (
        "pages/2_Latent_space.py",
        "Latent space",
        ":material/scatter_plot:",
        "Latent space: the test set as a map",
    ),
    (
        "pages/3_Manifold.py",
        "Manifold",
        ":material/grid_view:",
        "Manifold: decode the latent grid, drag sliders",
    ),
    ("pages/4_Reconstruct.py", "Reconstruct", ":material/image:", "Reconstruct test images or your uploads"),
    ("pages/5_Draw.py", "Draw", ":material/draw:", "Draw {a_item} and see what the model makes of it"),
    (
        "pages/6_Interpolate.py",
        "Interpolate",
        ":material/linear_scale:",
        "Interpolate: morph one image into another through latent space",
    ),
    (
        "pages/7_Traversals.py",
        "Traversals",
        ":material/swap_horiz:",
        "Traversals: one dimension at a time, attribute vectors, analogies",
    ),
    ("pages/8_Theory.py", "Theory", ":material/function:", "Theory: from EM to AEVB, as live experiments"),
    (
        "pages/9_Paper.py",
        "Paper",
        ":material/science:",
        "Paper: the paper's Figure 2 reproduced, AEVB against wake-sleep",
    ),
)


def navigation() -> None:
    """Links to every page at the top of the sidebar (Streamlit's own list is switched off in
    .streamlit/config.toml because it would name the home page after its file)."""
    load_charts_early(st.sidebar)
    for path, label, icon, _ in PAGES:
        st.sidebar.page_link(path, label=label, icon=icon)
    st.sidebar.divider()
    # A page link's label wraps instead of being cut with an ellipsis (on a phone, the Home
    # page's longer offers ran off the screen).
    # On a phone a toast ("Test image #1408: ...") opens at the top, over the page's title: there it
    # opens at the bottom.
    st.sidebar.html(
        "<style>[data-testid=stPageLink] span, [data-testid=stPageLink] p, [data-testid=stPageLink] "
        "[data-testid=stMarkdownContainer] { white-space: normal; overflow: visible; } "
        f"@media (max-width: {PHONE_WIDTH}px) {{ [data-testid=stToastContainer] "
        "{ top: auto !important; bottom: 1rem !important; } }</style>"
    )


def model_picker(options: list[str] | None = None) -> str | None:
    """The sidebar: page links, then a select box of ``options`` (default ``choices()``: shipped
    models and runs), remembered across pages."""
    navigation()
    options = choices() if options is None else options
    if not options:
        st.sidebar.error("No models found in pretrained/ or runs/. Train one on the Train page.")
        return None
    default = "mnist-z2" if "mnist-z2" in options else options[0]
    restore_view(options, default)
    current = st.session_state.get(CHOSEN_MODEL, default)
    if current not in options:
        st.warning(
            f"There is no model {current!r} here (a link from another machine, or a removed run); "
            f"showing {default} instead."
        )
        picked = st.session_state.get(PICKED)  # a clicked test image in the link: kept (ui/share.py)
        if picked and picked[0] == current:
            st.session_state[PICKED] = (default, picked[1])
    index = options.index(current) if current in options else options.index(default)
    choice = st.sidebar.selectbox(
        "Model", options, index=index, key=WIDGET_OF[CHOSEN_MODEL],
        help="Shipped models, then your runs in runs/",
    )  # fmt: skip
    st.session_state[CHOSEN_MODEL] = choice
    return choice


def model_or_stop(stop: bool = True) -> tuple[str, VAE, dict]:
    """Picker + load, or an explanation and st.stop(): the guard at the top of each page (``stop``
    False: a model that cannot be shown is said, and (choice, None, None) returned)."""
    choice = model_picker(options := choices())  # a folder listing, once a run: picker's and address's
    if choice is None:
        st.info("No model to explore yet: train one on the Train page.")
        st.stop()
    try:
        model, config = load_model(choice)
    except ExplorerError as exc:
        st.error(f"Cannot show model {choice!r}: {exc}")
        return (choice, None, None) if not stop else st.stop()
    if not encoder_trained(config):
        st.warning(NO_ENCODER.replace("NAME", choice.removeprefix(RUN_PREFIX)))  # as the CLI names it
    dataset = dataset_of(config)
    settle_view(
        choice, model.config.latent_dim, lambda: len(test_images(dataset)[1]),
        lambda beside: _beside_refusal(beside, choice, dataset),
    )  # fmt: skip
    publish_view(choice, wide=model.config.latent_dim > 2, models=options)
    st.sidebar.caption(
        "The address bar holds this view (model, map, density, clicked image): copy it to share."
    )
    return choice, model, config


def _beside_refusal(beside: str, choice: str, dataset: str) -> str | None:
    """Why the model ``beside`` cannot be shown beside ``choice`` (a model of ``dataset``), or
    None: "Beside it" takes another model of the same dataset."""
    if beside == choice:
        return f"that is the model shown; Beside it takes another model of {dataset}"
    other = dataset_of_choice(beside)  # (None: unreadable; the address named a model here)
    if other is not None and other != dataset:
        return f"a model of {other}, and Beside it takes models of {dataset}, as {choice} is"
    return None


def dataset_of_choice(choice: str) -> str | None:
    """The dataset the picker's ``choice`` was trained on, or None where its config cannot be read."""
    try:
        return dataset_of(read_config(folder_of(choice)))
    except (ExplorerError, OSError, ValueError, KeyError):
        return None


def label_names(config: dict) -> list[str] | None:
    """The class names of the model's dataset (built-in or added), or None."""
    try:
        described = spec(dataset_of(config))
    except ValueError:
        return None
    return list(described.label_names) if described.label_names else None


@st.cache_resource(show_spinner="Loading the test set...", max_entries=4)
def test_images(dataset: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Grey-level test images (N, C, H, W) float in [0, 1] and labels, shared by all sessions."""
    data = load_dataset(dataset, "test")
    return data.images.float().div_(255.0), data.labels  # in place: one 31 MB array for MNIST, not two


def map_points_words(dataset: str) -> str:
    """How many encoded test images the small maps beside uploads, drawings and sliders show, in
    words: "2,000 encoded test images", or as many as a smaller test set holds ("1 encoded test
    image" for a folder of a dozen pictures)."""
    n = min(MAP_POINTS, len(test_images(dataset)[1]))
    return f"{n:,} encoded test image{'' if n == 1 else 's'}"


@st.cache_resource(max_entries=4, show_spinner="Binarising the test set...")
def data_space_test_set(dataset: str, binarized: bool) -> torch.Tensor:
    """The test images (N, C, H, W) in a model's data space: binarised once with the evaluation's
    fixed seed (``eval_images``) for a model of binarised data, else grey levels in [0, 1]."""
    return eval_images(dataset, "test", binarized)[0]


WHILE_MEASURING = {  # the spinner while a part of explorer.explore.derived is measured (then stored)
    "codes": "Encoding the test set",
    "elbo": "Scoring each test image (ELBO)",
    "units": "Measuring each latent dimension",
    "detector": "Measuring what is typical of the test set",
    "densities": "Mapping the aggregate posterior",
}


@st.cache_resource(show_spinner=False, max_entries=8)
def _derived_store(path: str, mtime_ns: int) -> tuple[threading.Lock, dict]:
    """The figures stored beside the model (``explorer.explore.derived``), read once per process, and the
    lock under which a missing part is measured (one session measures; the others wait)."""
    try:
        figures = load_derived(path, model_checksum(path))
    except Stale:
        figures = None
    return threading.Lock(), {"figures": figures}


def derived_figures(path: str, mtime_ns: int, part: str = "codes") -> Derived:
    """The model's test-set figures with ``part`` (one of ``explorer.explore.derived.PARTS``) in them:
    read from beside the model in milliseconds, or measured once, stored there and shared by
    every session (read-only)."""
    lock, holder = _derived_store(path, mtime_ns)
    figures = holder["figures"]
    if figures is not None and figures.has(part):
        return figures
    if not lock.acquire(blocking=False):  # another session measures: say so while waiting for it
        # (the page stood blank for the minute another tab's t-SNE fit took)
        with st.spinner(f"{_measuring(part)} Another tab started it: waiting for it to end.", show_time=True):
            lock.acquire()
    try:
        figures = holder["figures"]
        if figures is None or not figures.has(part):
            with st.spinner(_measuring(part), show_time=True):
                figures = ensure_derived(path, cached_model(path, mtime_ns), (part,), known=figures)
            holder["figures"] = figures
    finally:
        lock.release()
    return figures


def _measuring(part: str) -> str:
    """What the spinner says while ``part`` of a model's stored figures is measured."""
    if part in WHILE_MEASURING:
        return f"{WHILE_MEASURING[part]}: once, then it is stored beside the model..."
    from explorer.explore.projections import NAMES

    return (
        f"Fitting a {NAMES[part]} map of the test codes ({FIT_COST[part]}; once per model: "
        "it is stored beside the model for every page and every later start)..."
    )


def encoded_test_set(path: str, mtime_ns: int, dataset: str) -> torch.Tensor:
    """Posterior means (N, z) of the test set under the model at ``path`` (shared: read only)."""
    return derived_figures(path, mtime_ns).codes


@st.cache_resource(show_spinner=False, max_entries=8)
def latent_map(path: str, mtime_ns: int, dataset: str):
    """(posterior means (N, z), their 2-D projection, test labels): what the scatters plot."""
    means = encoded_test_set(path, mtime_ns, dataset)
    return means, fit_projection(means), test_images(dataset)[1]


MAP_KEY = MAP  # session state: the map of a wide latent space (explorer.explore.projections.METHODS)
# 10,000 codes fitted on the 2-core host: bench/README.md idle; beside other work, load 1.5-3.6, 2026-12-08
MAP_COST = (
    "shipped models come with both; a run's take 32 s (t-SNE) and 9 s (UMAP; 44 s the first in a "
    "process) for 10,000 codes on an idle 2-core CPU, 79 s and 55 s measured beside other work"
)
FIT_COST = {
    "tsne": "32 s on an idle 2-core CPU, 79 s measured beside other work",
    "umap": "9 s on an idle 2-core CPU, 44 s the first in a process, 55 s measured beside other work",
}


@st.cache_resource(show_spinner=False, max_entries=8)
def nonlinear_map(path: str, mtime_ns: int, dataset: str, method: str):
    """A t-SNE or UMAP map of the model's encoded test set: the one stored beside the model, or
    fitted once (``explorer.explore.projections.fit_nonlinear``), stored there, and shared by every session.
    New points are placed at the median place of their nearest fitted codes."""
    from explorer.explore.projections import NonlinearProjection

    figures = derived_figures(path, mtime_ns, method)
    points = figures.maps[method].numpy()
    return NonlinearProjection(method, figures.codes, None, points, figures.seconds.get(method, 0.0))


def chosen_map(path: str, mtime_ns: int, dataset: str):
    """(codes (N, z), the map chosen on the Latent space page for wide models, test labels): PCA
    unless t-SNE or UMAP was picked there; 2-D models are always drawn as they are."""
    means, projection, labels = latent_map(path, mtime_ns, dataset)
    method = st.session_state.get(MAP_KEY, "pca")
    if projection.kind == "identity" or method == "pca":
        return means, projection, labels
    from explorer.explore.projections import MIN_CODES, NAMES

    if len(means) < MIN_CODES:  # a small folder's test set: PCA, said once where the map is drawn
        st.info(f"{len(means)} test codes are too few for a {NAMES[method]} map (it needs {MIN_CODES}): PCA.")
        return means, projection, labels
    return means, nonlinear_map(path, mtime_ns, dataset, method), labels


@st.cache_resource(max_entries=8)
def scatter_picture(path: str, mtime_ns: int, dataset: str) -> ScatterPicture:
    """The Manifold page's small map: MAP_POINTS encoded test images, drawn once per model."""
    means, projection, labels = latent_map(path, mtime_ns, dataset)
    points = projection(means[:MAP_POINTS])
    # every test code's place, not only the dots drawn: an autoencoder's far clusters (mnist-ae-z2's
    # 1s, beyond +-50) included, and for a 2-D model the sliders' whole reach (slider_reach), so the
    # star stays on the map (it stopped at +-91 while the sliders went on to +-115)
    lim = (
        max(map_reach(means), float(math.ceil(projection(means).abs().max())))
        if len(means)
        else map_reach(means)
    )
    return ScatterPicture(points, labels[:MAP_POINTS], list(PALETTE), lim=lim)


def map_reach(means: torch.Tensor) -> float:
    """How far the small maps and the latent sliders reach: +/-4 (the prior's 4 sigma) unless the
    codes (N, z) spread further (an autoencoder's), then their largest |z| at the 99.5th
    percentile, rounded up."""
    spread = float(means.abs().quantile(0.995)) if len(means) else 0.0
    return 4.0 if spread <= 4.0 else float(math.ceil(spread))


def slider_reach(path: str, mtime_ns: int, dataset: str) -> float:
    """How far each latent slider reaches on the Manifold page, +/- this many units of z, whether
    the point is decoded in the browser or on the server: ``map_reach`` of the test codes, widened
    to take in every test code along every axis (an autoencoder's far codes, mnist-ae-z2's past
    +-90, included: the sliders stopped at its 99.5th percentile, +-50)."""
    means = latent_map(path, mtime_ns, dataset)[0]
    farthest = float(math.ceil(means.abs().max())) if len(means) else 0.0
    return max(map_reach(means), farthest)


def latent_activity(path: str, mtime_ns: int, dataset: str) -> tuple[list[float], list[float], list[bool]]:
    """Per latent dimension over the test set: mean KL(q(z_j|x) || N(0, 1)) in nats, the variance
    of the posterior means, and whether the unit is active (Burda et al.: variance above
    ``ACTIVE_UNIT_THRESHOLD``)."""
    figures = derived_figures(path, mtime_ns, "units")
    variance = figures.variance.tolist()
    return figures.kl.tolist(), variance, [v > ACTIVE_UNIT_THRESHOLD for v in variance]


def stranger_detector(path: str, mtime_ns: int, dataset: str) -> StrangerDetector:
    """The model's stranger detector, fitted on its test set's first images (stored beside it)."""
    return derived_figures(path, mtime_ns, "detector").detector


def test_elbo(path: str, mtime_ns: int, dataset: str) -> torch.Tensor:
    """Per-image ELBO (N,) of the test set in nats (``explorer.explore.latent.reconstruct``; an
    autoencoder: log p(x|z)), stored beside the model."""
    return derived_figures(path, mtime_ns, "elbo").elbo
