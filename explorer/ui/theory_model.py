"""The Theory page's two tabs that run on the user's own model: the identity
log p(x) = ELBO + KL(q(z|x) || p(z|x)) on one test image (``explorer.theory.evidence``), and why
AEVB reparameterises, the variance of the two gradient estimators (``explorer.theory.gradients``)."""

from __future__ import annotations

import numpy as np
import streamlit as st
import torch

from explorer.data.cache import binarize_picture
from explorer.model import VAE
from explorer.pictures.images import make_grid, png_bytes
from explorer.theory import evidence, figures, gradients
from explorer.ui.models import cached_model, data_space_test_set
from explorer.ui.widgets import chart, uploaded_image

SOURCES = ("test image", "upload", "drawing")  # the drawing: the Draw page's, once there is one

# -- the model-dependent tabs -------------------------------------------------------------------


def _image(model: VAE, dataset: str, config: dict, key: str) -> tuple[np.ndarray, int | None] | None:
    """The image the tab runs on, chosen as a test image by number, an upload or the Draw page's
    drawing (where it fits the model), in the model's data space (binarised once with the
    evaluation's fixed seed for a model of binarised data), shown small. Returns (the image
    (C, H, W), its test index or None), or None with a message shown (no upload yet, or one that
    cannot be prepared)."""
    binarized = evidence.data_space_binarized(config)
    drawing = st.session_state.get("drawing")
    fits = isinstance(drawing, torch.Tensor) and tuple(drawing.shape) == tuple(model.config.image_shape)
    left, right = st.columns([2, 3], vertical_alignment="center")
    source = left.radio("Image", SOURCES if fits else SOURCES[:2], horizontal=True, key=f"{key}-source")
    index, fixed = None, " (binarised, fixed seed)" if binarized else ""
    if source == "test image":
        test = data_space_test_set(dataset, binarized)
        index = int(left.number_input("Test image", 0, len(test) - 1, 0, key=key))
        x, caption = test[index], f"test image #{index}{fixed}"
    else:
        if source == "drawing":
            x, name = drawing, "your drawing"
        else:
            hint = "Upload an image: it is prepared the way the dataset's own images were."
            uploaded = uploaded_image(left, dataset, f"{key}-upload", hint)
            if uploaded is None:
                return None
            x, name = uploaded
        x, caption = (binarize_picture(x) if binarized else x), f"{name}{fixed}"
    right.image(png_bytes(make_grid(x[None], 1), scale=3), output_format="PNG", caption=caption)
    return x.numpy(), index


def _absent(model: VAE, what: str) -> bool:
    """Say why the tab's experiment is absent for an autoencoder; True when it is."""
    if model.config.variational:
        return False
    st.info(
        f"This model is an autoencoder: its encoder gives one code, with no q(z|x) and no prior it was "
        f"fitted to, so there is no ELBO, no posterior to compare with and {what}. Pick a VAE in the "
        "sidebar."
    )
    return True


@st.cache_data(max_entries=64, show_spinner="Integrating over the latent space...")
def _evidence(path: str, mtime_ns: int, image: np.ndarray) -> evidence.Evidence:
    """The identity's figures for one image (C, H, W) in the model's data space, within the page's
    time budget (the K of L_K reached in it)."""
    model = cached_model(path, mtime_ns)
    return evidence.evidence(model, torch.from_numpy(image), budget=evidence.BUDGET)


def identity_ui(choice: str, model: VAE, key: tuple[str, int], dataset: str, config: dict) -> None:
    """log p(x) = ELBO + KL(q(z|x) || p(z|x)) on the chosen model and image, and L_K against K."""
    st.latex(  # a term a line: on one line they ran off a phone's screen
        r"\begin{gathered}\log p_\theta(x) = \mathrm{ELBO} + \mathrm{KL}\big(q_\phi(z|x)\|"
        r"p_\theta(z|x)\big) \\ \mathrm{ELBO} = \mathbb E_{q_\phi}\big[\log p_\theta(x, z)"
        r" - \log q_\phi(z|x)\big]\end{gathered}"
    )
    st.latex(
        r"\begin{gathered}\mathcal L_K = \mathbb E\left[\log \tfrac1K \textstyle\sum_{k=1}^K "
        r"\frac{p_\theta(x, z_k)}{q_\phi(z_k|x)}\right], \\ \mathrm{ELBO} = \mathcal L_1 \le "
        r"\mathcal L_K \le \mathcal L_{K+1} \le \log p_\theta(x)\end{gathered}"
    )
    st.markdown(
        "The ELBO falls short of the evidence by exactly how far the encoder's $q(z|x)$ is from the true "
        "posterior. With a 2-D latent space both sides can be computed on a grid, so the identity can be "
        "checked on your own model; the importance-weighted bounds $\\mathcal L_K$ (Burda et al. 2015) "
        "close the gap as $K$ grows, as long as the draws of $q(z|x)$ reach all of the posterior's mass: "
        "where $q$ misses one of its modes, $\\mathcal L_K$ stays below $\\log p(x)$ at every $K$ shown, and "
        "its standard error cannot tell (no draw has seen the missing mass)."
    )
    if _absent(model, "no bound on log p(x) to tighten"):
        return
    chosen = _image(model, dataset, config, "identity-image")
    if chosen is None:
        return
    image, index = chosen
    ev = _evidence(*key, image)
    ks = tuple(sorted(ev.l_k))
    _identity_table(ev, ks, model.config.latent_dim)
    left, right = st.columns([3, 2])
    chart(left, figures.bounds_figure(ev), key="identity-bounds")
    rows = [{"K": k, "L_K (nats)": v, "standard error": se} for k, (v, se) in sorted(ev.l_k.items())]
    right.dataframe(
        rows,
        hide_index=True,
        column_config={
            c: st.column_config.NumberColumn(format="%.4f") for c in ("L_K (nats)", "standard error")
        },
    )
    right.caption(
        "Each L_K is the mean over disjoint groups of K draws from one pool of q(z|x) draws (standard error "
        "across groups; the delta method where fewer than 10 groups)."
    )
    if max(ks) < max(evidence.KS):
        every = (
            f" All of them: `vae-explorer evidence {choice} --index {index}`." if index is not None else ""
        )
        right.caption(
            f"K up to {max(ks):,} here: larger K would take the page past {evidence.BUDGET:g} s on this "
            f"machine with this decoder.{every}"
        )


def _identity_table(ev, ks, latent_dim: int) -> None:
    """The identity's terms beside the true posterior (a 2-D latent space, by quadrature), or why
    only the bounds L_K can be shown."""
    if ev.log_px is not None:
        left, right = st.columns([3, 2])
        chart(left, figures.posterior_figure(ev), key="identity-posterior")
        total = ev.elbo + ev.kl_to_posterior
        right.markdown(
            f"| | nats |\n|---|---:|\n| log p(x), quadrature | **{ev.log_px:.4f}** |\n"
            f"| ELBO | {ev.elbo:.4f} |\n| KL(q(z\\|x) ‖ p(z\\|x)), on the grid | {ev.kl_to_posterior:.4f} |\n"
            f"| ELBO + KL | **{total:.4f}** |\n| difference | {ev.identity_residual:.1e} |\n"
            f"| the grid's own error (halved) | {ev.quadrature_error:.1e} |\n"
            f"| L_{max(ks)} | {ev.l_k[max(ks)][0]:.4f} ± {ev.l_k[max(ks)][1]:.4f} |"
        )
        right.caption(
            f"ELBO = E_q[log p(x|z)] {ev.recon:.4f} − KL(q ‖ p(z)) {ev.kl_prior:.4f}. q's mean "
            f"({ev.mu[0]:.3f}, {ev.mu[1]:.3f}), sd ({ev.sigma[0]:.4f}, {ev.sigma[1]:.4f}). Computed in "
            f"{ev.seconds:.2f} s."
        )
    else:
        st.info(
            f"log p(x) by quadrature, the true posterior and KL(q ‖ p(z|x)) need a 2-D latent space: a grid "
            f"of 81 points per axis over this model's {latent_dim} dimensions would be "
            f"81^{latent_dim} decodes. Here: the bounds L_K, which approach log p(x) from below."
        )


@st.cache_data(max_entries=64, show_spinner="Measuring the gradient estimators...")
def _gradients(path: str, mtime_ns: int, image: np.ndarray) -> gradients.GradientVariance:
    """The estimators' variances for one image (C, H, W) in the model's data space, measured over
    the largest pool of draws that fits the page's time budget."""
    model = cached_model(path, mtime_ns)
    return gradients.gradient_variance(model, torch.from_numpy(image), budget=gradients.BUDGET)


def reparam_ui(model: VAE, key: tuple[str, int], dataset: str, config: dict) -> None:
    """Gradient variance: score function against the reparameterised estimators A and B."""
    st.latex(
        r"\begin{aligned}\nabla_\phi \mathbb E_{q_\phi}[f(z)] &= \underbrace{\mathbb E_{q_\phi}\left[f(z)\,"
        r"\nabla_\phi \log q_\phi(z|x)\right]}_{\text{score function (REINFORCE)}} \\ &= "
        r"\underbrace{\mathbb E_{\varepsilon}\left[\nabla_\phi f(\mu_\phi + "
        r"\sigma_\phi\odot\varepsilon)\right]}_{\text{reparameterised, } \varepsilon\sim\mathcal N(0,I)}"
        r"\end{aligned}"
    )
    st.markdown(
        "Both are unbiased gradients of the ELBO with respect to the encoder's parameters φ. The score "
        "function uses only the *value* of f(z) = log p(x, z) − log q(z|x); the reparameterised one "
        "follows z through the decoder and uses f's *gradient*. Kingma & Welling (section 2.2) call the "
        'first "the usual (naïve) Monte Carlo gradient estimator", with "very high variance": here is how '
        "high, on your model, at equal numbers of draws L. Estimator B (section 2.3) takes the KL term "
        "analytically."
    )
    if _absent(model, "no expectation over q(z|x) to differentiate"):
        return
    chosen = _image(model, dataset, config, "reparam-image")
    if chosen is None:
        return
    gv = _gradients(*key, chosen[0])
    left, right = st.columns([3, 2])
    chart(left, figures.variance_figure(gv), key="reparam-figure")
    score_over_a, a_over_b = gv.ratio("score", "reparam_a"), gv.ratio("reparam_a", "reparam_b")
    rows = [
        {"L": s, "score / A": r1, "A / B": r2, "score": v, "A": a}
        for s, r1, r2, v, a in zip(
            gv.samples, score_over_a, a_over_b, gv.encoder_variance["score"], gv.encoder_variance["reparam_a"]
        )
    ]
    formats = {"score / A": "%.1f", "A / B": "%.3f", "score": "%.3e", "A": "%.3e"}
    right.dataframe(
        rows,
        hide_index=True,
        column_config={k: st.column_config.NumberColumn(format=f) for k, f in formats.items()},
    )
    ratio = float(np.median(score_over_a))
    right.markdown(
        f"The score function's gradient is **{ratio:,.0f}×** as variable as the reparameterised one: it "
        f"needs about {ratio:,.0f} times the draws for the same precision."
    )
    right.caption(
        f"Total variance of the gradient over every encoder parameter (tr JᵀCJ, J = d(μ, log σ²)/dφ), "
        f"measured over {gv.draws:,} draws in disjoint groups of L. Per-draw variance of the ELBO's value: "
        f"estimator A {gv.value_variance['A']:.3g}, B {gv.value_variance['B']:.3g} nats². {gv.seconds:.2f} s."
    )
    _mean_gradients(gv, model.config.latent_dim)


def _mean_gradients(gv, latent_dim: int) -> None:
    """Each estimator's mean gradient with respect to the first two posterior means, with its
    standard error: the three agree (all are unbiased)."""
    dims = min(2, latent_dim)
    means = [
        {
            "estimator": gradients.NAMES[name],
            **{
                f"dELBO/dμ{j + 1}": f"{gv.mean_gradient[name][j]:.3f} ± {gv.mean_gradient_se[name][j]:.3f}"
                for j in range(dims)
            },
        }
        for name in gradients.ESTIMATORS
    ]
    st.caption(
        "All three are unbiased: their means over every draw differ by noise the size of their "
        "standard errors."
    )
    st.dataframe(means, hide_index=True)
