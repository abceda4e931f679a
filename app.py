"""VAE Explorer, home page: what a VAE is, the chosen model's card, samples, and the way in.

Run with ``make run`` (``python -m explorer.ui.serve``, which imports what the pages need before the
server starts; ``streamlit run app.py`` works too).
"""

import streamlit as st
import torch

from explorer.checkpoints import dataset_of
from explorer.data.specs import spec
from explorer.pictures.images import make_grid, png_bytes
from explorer.ui.beside import describe
from explorer.ui.model_card import model_card
from explorer.ui.models import PAGES, model_or_stop
from explorer.ui.theory import IDEAS

AUTOENCODER_SAMPLES = (
    "These samples are not the data's: an autoencoder was never asked to put its codes where "
    "N(0, I) puts its mass, so kinds whose codes lie far out never appear, and draws that fall in "
    "the gaps between its clusters decode to blends. A VAE's KL term pulls each q(z|x) towards "
    "the prior, so its samples come from where its decoder was trained, in the data's proportions."
)

st.set_page_config(page_title="VAE Explorer", layout="wide")
choice, model, config = model_or_stop()
dataset, dims = dataset_of(config), model.config.latent_dim
item = spec(dataset).item
st.title("VAE Explorer")
st.caption("Auto-Encoding Variational Bayes (Kingma & Welling, 2013), to train, look at and play with.")

left, right = st.columns([3, 2], gap="large")
with left:
    st.markdown(
        "A **variational autoencoder** learns a generative model of images: a latent code "
        "$z \\sim \\mathcal N(0, I)$ is decoded into a distribution $p_\\theta(x\\mid z)$ over images. "
        "An encoder $q_\\phi(z\\mid x) = \\mathcal N(\\mu, \\operatorname{diag}\\sigma^2)$ guesses "
        "which codes could have produced an image. Both networks are trained together by maximising the "
        "evidence lower bound (ELBO) on $\\log p_\\theta(x)$:"
    )
    st.latex(
        # two lines: one would run off a phone's screen
        r"\begin{aligned}\mathcal L(x) &= \mathbb E_{q_\phi(z|x)}\left[\log p_\theta(x\mid z)\right] \\"
        r" &{}- D_{KL}\left(q_\phi(z\mid x)\,\|\,p(z)\right) \le \log p_\theta(x)\end{aligned}"
    )
    st.markdown(
        "The expectation is estimated with samples made differentiable by the "
        "**reparameterisation trick**, so ordinary stochastic gradients train both networks:"
    )
    st.latex(r"z = \mu_\phi(x) + \sigma_\phi(x) \odot \varepsilon, \qquad \varepsilon \sim \mathcal N(0, I)")
    if (config.get("train") or {}).get("algorithm") == "wake-sleep":
        st.info(
            "**This model was trained by the wake-sleep algorithm** (Hinton, Dayan, Frey & Neal "
            "1995), not by the ELBO's gradients: its decoder by wake-phase steps on log p(x|z) + "
            "log p(z) with z ~ q(z|x) from data, its encoder (the recognition model) by sleep-phase "
            "steps on log q(z|x) for pairs (z, x) dreamt from the model; no reparameterisation. Its "
            "ELBO above is still the measure, as the paper's Figure 2 plots it (the Paper page).",
            icon=":material/compare:",
        )
    if not model.config.variational:
        kind = "a denoising autoencoder" if model.config.model == "dae" else "a plain autoencoder"
        st.info(
            f"**This model is {kind}**, the VAE's baseline: its encoder gives one code z = f(x), no "
            "q(z|x), and it is trained on reconstruction alone"
            + (" of the clean image from a corrupted copy (Vincent et al. 2008)"
               if model.config.model == "dae" else " (Hinton & Salakhutdinov 2006)")
            + ". There is no KL term, no ELBO and no prior it was fitted to; the pages show its codes "
            "and reconstructions, and leave out ellipses and draws. Show it beside a VAE on the Latent "
            "space and Manifold pages (sidebar: *Beside it*).",
            icon=":material/compare:",
        )  # fmt: skip
    if dims == 2:
        st.markdown(
            f"With a 2-D latent space you can *see* what the model learnt: where each {item} lives, "
            "what lies between them, and what the model makes of your own pictures."
        )
    else:
        st.markdown(
            f"This model's latent space has {dims} dimensions; the maps show the two directions "
            f"along which its {item}s vary most (principal components), and the sliders reach every "
            "dimension."
        )
    st.subheader("Explore")
    for path, _, icon, offer in PAGES[1:]:
        if "Draw" in path and spec(dataset).convention.kind == "photo":
            offer = "Draw: for models of drawings (MNIST, Fashion-MNIST)"
        st.page_link(path, label=offer.format(a_item=spec(dataset).a_item), icon=icon)
    st.subheader("The theory, live")
    for tab, what in IDEAS:
        if tab == "The identity" and not model.config.variational:  # an autoencoder has no ELBO
            what = "log p(x) = ELBO + KL(q ‖ p(z|x)), on a VAE (this autoencoder has no ELBO)"
        st.page_link("pages/8_Theory.py", label=what, icon=":material/function:", query_params={"tab": tab})

with right:
    card = model_card(choice, config)
    st.subheader(f"Model: {choice}")
    st.markdown(  # in words: the metrics below cut long names
        f"Dataset **{dataset}** &nbsp;·&nbsp; latent size **{dims}** &nbsp;·&nbsp; "
        f"**{describe(model, config)}**"
    )
    a, b = st.columns(2)
    if not model.config.variational:
        recon = f"{card['recon']:.2f}" if card["recon"] is not None else "n/a"
        a.metric("Test log p(x|z) (nats)", recon, help="The reconstruction term at the code z = f(x): "
                 "an autoencoder has no ELBO or NLL")  # fmt: skip
    else:
        a.metric("Test ELBO (nats)", f"{card['elbo']:.2f}" if card["elbo"] is not None else "n/a")
    if card.get("bits_per_dim") is not None:  # 8-bit data: the unit of the literature
        b.metric(card["bits_label"], f"{card['bits_per_dim']:.3f}")
    elif model.config.variational:
        b.metric(card["nll_label"], f"{card['nll']:.2f}" if card["nll"] is not None else "n/a")
    if card["fid"] is not None:
        (b if not model.config.variational else a).metric(
            card["fid"][1], f"{card['fid'][0]:.2f}", help=card["fid"][2]
        )
    st.caption(card["note"])
    if card["evidence"] is not None:
        st.caption(card["evidence"])
    seed = st.number_input("Sample seed", min_value=0, value=0, step=1)
    samples = model.sample(36, torch.Generator().manual_seed(int(seed))).cpu()
    st.image(
        png_bytes(make_grid(samples, 6), scale=3),
        caption="Samples: decoder means at z ~ N(0, I)",
        output_format="PNG",
    )
    if not model.config.variational:
        st.warning(AUTOENCODER_SAMPLES, icon=":material/help:")
