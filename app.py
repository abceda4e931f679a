"""VAE Explorer, home page: the shipped model, samples from its prior and its latent manifold.

Run with ``make run`` (or ``streamlit run app.py``).
"""

import streamlit as st
import torch

from explorer.errors import ExplorerError
from explorer.images import latent_grid, make_grid, png_bytes
from explorer.ui.models import load_model, model_picker

st.set_page_config(page_title="VAE Explorer", layout="wide")
name = model_picker()
st.title("VAE Explorer")
st.caption("Auto-Encoding Variational Bayes (Kingma & Welling, 2013): samples and the latent manifold")
if name is None:
    st.info("No model to show yet.")
    st.stop()
try:
    model, config = load_model(name)
except ExplorerError as exc:
    st.error(f"Cannot load model {name!r}: {exc}")
    st.stop()

train_cfg = config.get("train") or {}
cols = st.columns(4)
cols[0].metric("Dataset", train_cfg.get("dataset", "?"))
cols[1].metric("Latent size", model.config.latent_dim)
cols[2].metric("Epochs", config.get("epoch", "?"))
best = config.get("best_test_elbo")
cols[3].metric("Test ELBO (nats)", f"{best:.2f}" if best is not None else "n/a")

seed = st.sidebar.number_input("Sample seed", min_value=0, value=0, step=1)
left, right = st.columns(2)
with torch.no_grad():
    samples = model.sample(64, torch.Generator().manual_seed(int(seed)))
    manifold = model.decode(latent_grid(20, latent_dim=model.config.latent_dim)).mean
left.subheader("Samples from the prior")
left.image(png_bytes(make_grid(samples, 8), scale=3), caption="x ~ p(x|z), z ~ N(0, I)", output_format="PNG")
right.subheader("Latent manifold")
right.image(
    png_bytes(make_grid(manifold, 20, pad=0), scale=2),
    caption="decoded grid over the inverse Gaussian CDF (paper, Figure 4)",
    output_format="PNG",
)
