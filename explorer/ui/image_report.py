"""What the pages show of one image: input, reconstruction and draws from q(z|x), its ELBO as a
percentile of the test set's, and whether it is a stranger to the model (Reconstruct, Draw,
Interpolate, and a clicked dot on the Latent space page); and the Reconstruct page's gallery."""

from __future__ import annotations

import math

import numpy as np
import streamlit as st
import torch

from explorer.data.specs import spec
from explorer.evaluate import score_name
from explorer.explore.latent import COLOUR_LOST, ELBO_DRAWS, LITTLE_KEPT, colour_kept, likeness
from explorer.explore.posterior import deterministic, posterior, posterior_samples
from explorer.explore.strangers import (
    STRANGER_QUANTILE,
    Reference,
    source,
    stranger_message,
    unmeasured_note,
    verdict_measured,
)
from explorer.model import VAE
from explorer.pictures.images import make_grid, png_bytes
from explorer.pictures.photos import ground_levels, ground_note
from explorer.pictures.plots import posterior_bars as bars
from explorer.theory.estimate import ElboEstimate, elbo_estimate
from explorer.ui.explore import neighbours_panel
from explorer.ui.models import cached_model, stranger_detector, test_elbo, test_images
from explorer.ui.widgets import chart, phone_columns

SAMPLES = 8  # draws from q(z|x) shown beside the mean


def samples_picture(
    model: VAE, x: torch.Tensor, mu: torch.Tensor, sigma: torch.Tensor, scale: int = 3
) -> bytes:
    """One PNG: the input, the decoded posterior mean, then SAMPLES decoded draws of q(z|x), in
    rows of (2 + SAMPLES) / 2 (one row of ten drew each image a third of a column wide: too small
    to see); an autoencoder: the input and its reconstruction only."""
    mean_image = model.decode(mu[None].to(next(model.parameters()).device)).mean.cpu()
    if deterministic(sigma):
        row = torch.cat([x.reshape(1, *mean_image.shape[1:]), mean_image])
        return png_bytes(make_grid(row, len(row)), scale=scale)
    _, draws = posterior_samples(model, mu, sigma, SAMPLES)
    row = torch.cat([x.reshape(1, *draws.shape[1:]), mean_image, draws])
    return png_bytes(make_grid(row, (len(row) + 1) // 2), scale=scale)


GALLERY_COLUMNS = 8  # test images per row on the Reconstruct page
PHONE_COLUMNS = 4  # and on a phone (stacked one per row, they put the upload box 2,700 px down)


def _photos(dataset: str) -> bool:
    """Whether ``dataset``'s uploads are kept as pictures (shapes, photographs, folders), not
    redrawn on black as MNIST's and Fashion-MNIST's are (so their ground is the user's)."""
    return spec(dataset).convention.kind == "photo"


@st.cache_data(max_entries=8, show_spinner=False)
def test_ground_levels(dataset: str) -> np.ndarray:
    """``photos.ground_levels`` of ``dataset``'s test images (N,), once per dataset."""
    return ground_levels(test_images(dataset)[0].numpy())


def no_verdict(key: tuple[str, int], dataset: str) -> str | None:
    """Why the model at ``key`` gives no stranger verdict, or None where it gives one: a dataset
    whose detector bench/ood.py found short, or a model whose encoder was never trained (Monte
    Carlo EM), through which every figure the verdict reads is made."""
    from explorer.checkpoints import read_config
    from explorer.config import encoder_trained

    if not encoder_trained(read_config(key[0])):
        return (
            "No stranger verdict: this model's encoder was never trained (Monte Carlo EM learns the "
            "decoder alone), and every figure the verdict reads is made through it."
        )
    return None if verdict_measured(dataset) else unmeasured_note(dataset)


def ranking_words(score: str) -> str:
    """What the pages' quick ``score`` figure of an image is, and why the Theory page's and
    ``vae-explorer evidence``'s can differ from it (a newcomer found test image #2890 at -93.0
    nats here and -102.5 there)."""
    if score != score_name(True):  # an autoencoder: one code, no eps, no Theory-page identity
        return (
            f"This {score} is the figure the test images are ranked by: on the image's own pixel levels, "
            "at its code z = f(x) (an autoencoder draws no eps: the figure is exact)."
        )
    return (
        f"This {score} is the figure the test images are ranked by: on the image's own pixel levels, the "
        f"mean of {ELBO_DRAWS} draws of eps shared by every image. The Theory page's identity, "
        "Interpolate and `vae-explorer evidence` score an image in the model's data space (binarised, "
        "for a Bernoulli decoder, as evaluation binarises it), exactly or with a stated standard "
        "error: their figure can differ from this one by a few nats either way."
    )


def reconstruction_gallery(rec, picked: torch.Tensor, labels: torch.Tensor, names) -> None:
    """Test images ``picked`` (k,), reconstructed in ``rec`` (a Reconstruction of those k images,
    in that order), each above its reconstruction with its index, label and ELBO (an
    autoencoder: log p(x|z)) under it, in rows of ``GALLERY_COLUMNS``."""
    score = "ELBO" if rec.variational else "log p(x|z)"
    kept = colour_kept(rec.inputs, rec.outputs)
    alike = float(likeness(rec.inputs, rec.outputs).mean())
    if alike < LITTLE_KEPT:  # the colour note's reason would not hold: the shapes are lost too
        st.info(
            f"These reconstructions keep little of their images: their grey levels correlate {alike:.2f} "
            "with the inputs', where a trained model's reach 0.8 to 0.99. The model has learnt little "
            "of them yet: train it longer, or on more images."
        )
    elif kept is not None and kept < COLOUR_LOST:
        st.info(
            f"This model decodes colour as grey: its reconstructions keep {kept:.0%} of these "
            "images' colour. Its decoder has a scale of its own, so what the code does not carry can "
            "be called noise, and the hue was cheaper to call noise than to encode in z (the KL term "
            "charges for every unit used). A decoder without a learned scale (Bernoulli, as "
            "shapes-conv-bce-z8) keeps the colour."
        )
    phone_columns("gallery", PHONE_COLUMNS)
    gallery = st.container(key="gallery")
    for start in range(0, len(picked), GALLERY_COLUMNS):
        row = list(enumerate(picked.tolist()))[start : start + GALLERY_COLUMNS]
        for column, (j, i) in zip(gallery.columns(GALLERY_COLUMNS), row):
            k = int(labels[i])
            column.image(
                png_bytes(make_grid(torch.stack([rec.inputs[j], rec.outputs[j]]), 1), scale=3),
                caption=f"#{i} · {names[k] if names else k} · {score} {float(rec.elbo[j]):.1f}",
                output_format="PNG",
            )
    st.caption(ranking_words(score))


def reference(path: str, mtime_ns: int, dataset: str) -> Reference:
    """The test set as the yardstick of an image the user gives: per-image ELBO and the stranger
    detector, both cached per model."""
    return Reference(test_elbo(path, mtime_ns, dataset), stranger_detector(path, mtime_ns, dataset))


POSTERIOR_AS_TEXT = 4  # latent sizes up to this are written out; wider ones drawn as bars


def posterior_bars(mu: torch.Tensor, sigma: torch.Tensor, key: str) -> None:
    """One image's q(z|x): its mean and standard deviation, in words for a few dimensions and
    as bars with error bars for more; an autoencoder's code (``sigma`` zeros) as its values."""
    if deterministic(sigma):
        if len(mu) <= POSTERIOR_AS_TEXT:
            st.markdown(f"code z = f(x): ({', '.join(f'{v:.2f}' for v in mu.tolist())})")
            return
        st.caption(f"The code z = f(x) over its {len(mu)} dimensions (an autoencoder's: no spread)")
        chart(st, bars(mu.tolist(), sigma.tolist()), key=f"posterior-{key}")
        return
    if len(mu) <= POSTERIOR_AS_TEXT:
        z = ", ".join(f"{v:.2f}" for v in mu.tolist())
        spread = ", ".join(f"{v:.2f}" for v in sigma.tolist())
        st.markdown(f"q(z|x): mean ({z}), standard deviation ({spread})")
        return
    st.caption(f"q(z|x) over its {len(mu)} dimensions: mean, with one standard deviation either side")
    chart(st, bars(mu.tolist(), sigma.tolist()), key=f"posterior-{key}")


@st.cache_data(max_entries=64, show_spinner=False)
def _elbo_estimate(path: str, mtime_ns: int, image: np.ndarray) -> ElboEstimate:
    """One image's (C, H, W, in the model's data space) ELBO with its error, once per model and image."""
    return elbo_estimate(cached_model(path, mtime_ns), torch.from_numpy(image))


def verdict_line(
    model: VAE, x: torch.Tensor, key: tuple[str, int], dataset: str, scored: tuple[torch.Tensor, str]
) -> None:
    """One image's ELBO, its percentile and stranger verdict in a line, with the warning for a
    stranger: for places that show the image small (the ends of an interpolation). The ELBO is
    ``explorer.theory.estimate``'s (exact, or with its standard error) on ``scored``: (the image
    in the model's data space, those words), the Theory page's figure; the percentile ranks x as
    the test images are ranked (their own pixel levels, ``ELBO_DRAWS`` shared draws of eps)."""
    judged = reference(*key, dataset).judge(model, x[None])[0]
    score = score_name(model.config.variational)
    est = _elbo_estimate(*key, scored[0].numpy())
    if not math.isfinite(judged.elbo) or not math.isfinite(est.elbo):
        st.error(f"The model's {score} for this image is not finite: its weights have diverged.")
        return
    figure = f"{score} {est.elbo:.2f}" + (f" ± {est.se:.2f}" if est.se else "") + " nats"
    drawn = "at its code"
    if model.config.variational:
        drawn = f"with {ELBO_DRAWS} draws of eps shared by every image"
    ranked = (
        f"The percentile ranks the image as the test images are ranked: on its own pixel levels, "
        f"{drawn} ({judged.elbo:.1f} nats for this one)."
    )
    verdict, why_none = judged.verdict, no_verdict(key, dataset)
    if why_none:
        st.markdown(f"{figure} ({judged.ranked()}); no stranger verdict", help=f"{ranked} {why_none}")
    else:
        st.markdown(
            f"{figure} ({judged.ranked()}); "
            f"stranger than {verdict.percentile:.0f}% of them: "
            + ("**a stranger**" if verdict.stranger else "typical enough"),
            help=f"{ranked} Strangeness says whether the image is like the training data, which the "
            f"{score} alone cannot. It is {source(score)}.",
        )
    theory = "shows this figure" if est.nodes else "estimates the same ELBO (its L_1, with its own error)"
    theory = f"; the Theory page's identity {theory}" if model.config.variational else ""
    st.caption(f"The {score}: {est.words()}, on {scored[1]}{theory}.")
    warning = None if why_none else stranger_message(verdict, spec(dataset).a_item)
    if warning:
        st.warning(warning, icon=":material/help:")


def image_report(
    model: VAE, x: torch.Tensor, key: tuple[str, int], dataset: str, name: str, explain: bool = True
):
    """Show one image the user gave (upload or drawing): input, reconstruction and draws from its
    posterior, its ELBO as a percentile of the test set's, and whether it is a stranger to the
    model (with the reason, and a warning when it is); ``explain``: with the words on what
    strangeness measures (the first of several images only). Returns (mu, sigma) of q(z|x) for
    the caller's scatter."""
    mu, sigma = (v[0] for v in posterior(model, x[None]))
    ground = ground_note(x.numpy(), test_ground_levels(dataset), dataset) if _photos(dataset) else None
    judged = reference(*key, dataset).judge(model, x[None])[0]
    score = score_name(model.config.variational)
    draws = (
        f" | {SAMPLES} draws z ~ q(z|x) (in two rows)"
        if model.config.variational
        else " (an autoencoder: no draws)"
    )
    st.image(
        samples_picture(model, x, mu, sigma),
        caption=f"{name}: input | reconstruction ({'posterior mean' if model.config.variational else 'code'})"
        + draws,
        output_format="PNG",
    )
    if ground:
        st.info(ground, icon=":material/contrast:")
    if not math.isfinite(judged.elbo):
        st.error(
            f"The model's {score} for this image is not finite: its weights have diverged. "
            "Pick another model."
        )
        return mu, sigma
    verdict, why_none = judged.verdict, no_verdict(key, dataset)
    if why_none:
        st.markdown(f"{score} **{judged.elbo:.2f}** nats: {judged.ranked()}.", help=ranking_words(score))
        st.caption(why_none)
        return _rest_of_report(model, key, dataset, x, mu, sigma, name)
    st.markdown(
        f"{score} **{judged.elbo:.2f}** nats: {judged.ranked()}.  \n"
        f"Stranger than **{verdict.percentile:.1f}%** of the test images: "
        f"{'**a stranger**' if verdict.stranger else 'typical enough'} "
        f"(the warning starts at {100 * STRANGER_QUANTILE:.0f}%)",
        help=ranking_words(score),
    )
    if explain:  # under the first of several images only: the same words under each read as noise
        st.caption(
            f"Strangeness says whether the image is like the training data, which the {score} alone "
            f"cannot: a model can give images of another kind a higher {score} than its own. It "
            f"measures {source(score)}."
        )
    warning = stranger_message(verdict, spec(dataset).a_item)
    if warning:
        st.warning(warning, icon=":material/help:")
    return _rest_of_report(model, key, dataset, x, mu, sigma, name)


def _rest_of_report(model: VAE, key: tuple[str, int], dataset: str, x, mu, sigma, name: str):
    """Below the verdict: the posterior's bars and the nearest test images; returns (mu, sigma)."""
    posterior_bars(mu, sigma, name)
    with st.expander(f"Nearest test images to {name}"):
        neighbours_panel(model, key, dataset, x, mu, names=list(spec(dataset).label_names) or None)
    return mu, sigma
