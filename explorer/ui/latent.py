"""The Latent space page's first tab: the encoded test set as a scatter, and what a click on a
dot shows (the image, its reconstruction, its posterior as ellipses and draws)."""

from __future__ import annotations

import streamlit as st

from explorer.latent_plots import latent_scatter
from explorer.model import VAE
from explorer.posterior import posterior
from explorer.ui.image_report import posterior_bars, samples_picture
from explorer.ui.models import label_names, latent_map, test_images
from explorer.ui.scatter import axis_titles, draw_posterior

PICKED = "picked"  # session state: (model choice, test index) of the clicked dot


def _remember_click(choice: str) -> None:
    """The scatter's selection callback: keep the clicked dot (a changed figure clears the
    selection, so it is copied into session state)."""
    picked = st.session_state["scatter"].selection.get("points", [])
    if picked and "customdata" in picked[0]:
        custom = picked[0]["customdata"]
        st.session_state[PICKED] = (choice, int(custom[0] if isinstance(custom, list) else custom))


def test_set_scatter(
    model: VAE, config: dict, choice: str, key: tuple[str, int], dataset: str, count: int
) -> None:
    """The first ``count`` encoded test images as a clickable scatter; beside it, the clicked one."""
    means, projection, labels = latent_map(*key, dataset)
    images = test_images(dataset)[0]
    names = label_names(config)
    variational = model.config.variational
    st.caption(
        "Each dot is a test image placed at the mean of q(z|x). Click a dot to see it and what "
        "the encoder is unsure about; click legend entries to hide classes."
        if variational
        else "Each dot is a test image placed at its code z = f(x) (an autoencoder: one point, no "
        "spread). Click a dot to see it and its reconstruction; click legend entries to hide classes."
    )
    picked = st.session_state.get(PICKED)
    if not picked or picked[0] != choice or picked[1] >= count:
        picked = None
    fig = latent_scatter(
        projection(means[:count]).tolist(), labels[:count].tolist(), names, axis_titles(projection)
    )
    if picked:
        index = picked[1]
        mu, sigma = (v[0] for v in posterior(model, images[index : index + 1]))
        draw_posterior(fig, projection, mu, sigma, f"#{index}", "black")
    left, right = st.columns([3, 2], gap="medium")
    with left:
        st.plotly_chart(
            fig, on_select=lambda: _remember_click(choice), selection_mode="points", key="scatter"
        )
    with right:
        if not picked:
            st.info(
                "Click a point in the scatter to see that test image, its reconstruction and its posterior."
            )
            return
        label = int(labels[index])
        st.subheader(f"Test image #{index}")
        st.write(f"Label: **{names[label] if names else label}**")
        st.image(
            samples_picture(model, images[index], mu, sigma, scale=3),
            caption="input | reconstruction | 8 draws z ~ q(z|x), decoded"
            if variational
            else "input | reconstruction",
            output_format="PNG",
        )
        posterior_bars(mu, sigma, f"test-{index}")
        if not variational:
            return
        st.caption(
            "On the scatter: the 1-sigma (solid) and 2-sigma (dashed) ellipses of q(z|x). Where the "
            "draws differ, the encoder is unsure; a wide ellipse over several classes means the "
            "image could pass for any of them."
        )
