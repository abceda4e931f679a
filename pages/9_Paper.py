"""Paper: the experiments of Kingma & Welling 2013 (Section 5), reproduced on the paper's settings."""

import streamlit as st

from explorer.paper.figure2 import DATASETS
from explorer.ui.models import choices, navigation
from explorer.ui.paper import cost_table, figure2_curves, figure2_panels, figure3_curves, figure3_panels
from explorer.ui.share import leave_view_out, restore_view

st.set_page_config(page_title="Paper - VAE Explorer", layout="wide")
navigation()
restore_view(choices())
leave_view_out()
st.title("The paper's experiments")
st.markdown(
    "Kingma & Welling's case for AEVB rests on **Figure 2**: with the same encoder, AEVB's lower bound "
    "rises faster and ends higher than the **wake-sleep** algorithm's (Hinton et al. 1995), at every "
    "latent size. Here are those curves, trained on the paper's settings by "
    "`vae-explorer paper figure2`: the bound per datapoint on the training set (solid) and the test "
    "set (dashed) against the number of training samples evaluated. Our axes reach further than the "
    "paper's, shaded in each panel, so that every point of every curve shows (under each tab: how)."
)
curves = figure2_curves()
tabs = st.tabs([{"mnist": "MNIST", "frey-face": "Frey Face"}[d] for d in DATASETS])
for tab, dataset in zip(tabs, DATASETS):
    with tab:
        figure2_panels(curves, dataset)

st.subheader("Figure 3: AEVB, wake-sleep and Monte Carlo EM by marginal likelihood, MNIST")
st.markdown(
    "For a 3-D latent space the marginal likelihood itself can be estimated (the paper's Appendix D: "
    "HMC samples of the posterior). Monte Carlo EM has no encoder: it runs a Hybrid Monte Carlo chain "
    "for every training image (10 leapfrog steps, step size tuned to 90% acceptance) and then takes 5 "
    "decoder updates, so it costs several times an AEVB step and cannot learn online from new data. "
    "Its points are the hardest to estimate: with no encoder to start the estimator's chains, they "
    "start where MCEM's own chains are on its training images, and at the best of 1,000 prior draws "
    "on the test images. Started from a single prior draw instead, the chains stay in minor modes as "
    "the decoder sharpens: on 60 training images at 10^6 samples, -178.5 nats against -108.8 from "
    "MCEM's own chains."
)
curves3 = figure3_curves()
figure3_panels(curves3)

with st.expander("The paper's settings, and where this reproduction departs from them", expanded=True):
    st.markdown(
        """
- **Followed** (Section 5, Appendix C): one hidden layer of tanh units in encoder and decoder, 500 for
  MNIST, 200 for Frey Face; a Bernoulli decoder for MNIST, a Gaussian one with sigmoid means for Frey
  Face; every parameter drawn from N(0, 0.01); Adagrad with its global step size chosen from
  {0.01, 0.02, 0.1} by the training bound after the first 50,000 samples; M = 100, L = 1; the prior
  p(theta) = N(0, I) as a weight decay of 1/N per datapoint (a MAP estimate); wake-sleep with the
  same encoder as its recognition model, its sleep phase on images drawn from p(x|z).
- **Departures**: the curves reach the samples in the table below, not the paper's 10^8 (the command
  continues where it stopped: `--samples 100000000` on a GPU finishes the axis); "N(0, 0.01)" is read
  as a standard deviation of 0.01; the training-set bound is the mean ELBO of a fixed subset of
  10,000 training images (binarised once), the test bound that of all 10,000 test images; MNIST is
  the classic 50,000-image training split, binarised afresh for every minibatch; Frey Face holds out
  its last 200 frames as a test set (the paper does not say how it split).
"""
    )
    st.markdown(
        "- **Figure 3**: 784-100-3 tanh, N_train 1,000 and 50,000, the marginal likelihood by the "
        "Appendix D estimator on the first 200 training and 200 test images at 4 points per decade "
        "(the paper: 1,000 each), the step-size trial over 10,000 samples."
    )
    cost_table(curves + curves3)
st.markdown("Reproduce it (resumable: run it again after a stop; `--json` prints every curve):")
st.code("vae-explorer paper figure2 --dataset mnist --samples 10000000", language="bash")
