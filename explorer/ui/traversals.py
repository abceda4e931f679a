"""The Traversals page: latent traversals of every active dimension from a chosen point, the true
factor each dimension follows (datasets generated from stored factors), attribute vectors between
label means walked from any point, and analogies a : b :: c : ? (White 2016, "Sampling
Generative Networks")."""

from __future__ import annotations

import streamlit as st
import torch

from explorer.config import encoder_trained
from explorer.data.cache import load_dataset
from explorer.data.specs import spec
from explorer.explore.traversals import (
    DOMINANT,
    WEAK,
    analogy,
    attribute_vector,
    factor_correlations,
    followed_factor,
    traversal,
    traversal_dims,
    walk,
)
from explorer.model import VAE
from explorer.pictures.images import make_grid, png_bytes
from explorer.ui.models import encoded_test_set, label_names, latent_activity, test_images
from explorer.ui.share import PICKED
from explorer.ui.widgets import data_number_input

STEPS = 9  # images per traversal row and per attribute walk


def base_point(model: VAE, choice: str, key: tuple[str, int], dataset: str) -> tuple[torch.Tensor, str]:
    """The sidebar's starting point of traversals and walks: zero, the image clicked on the Latent
    space page, or a test image by index; returns (z (z,), its name)."""
    codes = encoded_test_set(*key, dataset)
    picked = st.session_state.get(PICKED)
    clicked = picked[1] if picked and picked[0] == choice and picked[1] < len(codes) else None
    options = ["zero (the prior's mean)" if model.config.variational else "zero", "a test image"]
    if clicked is not None:
        options.insert(1, f"the clicked image #{clicked}")
    where = st.sidebar.radio("Start from", options, index=1 if clicked is not None else 0, key="start-point")
    if where.startswith("zero"):
        return torch.zeros(model.config.latent_dim), "z = 0"
    index = clicked if where.startswith("the clicked") else None
    if index is None:
        index = int(data_number_input(st.sidebar, "Test image", 0, len(codes) - 1, 0, key="start-index"))
    st.sidebar.image(
        png_bytes(make_grid(test_images(dataset)[0][index : index + 1], 1), scale=3),
        caption=f"test image #{index}",
        output_format="PNG",
    )
    return codes[index], f"the code of test image #{index}"


def traversal_tab(
    model: VAE, config: dict, key: tuple[str, int], dataset: str, base: torch.Tensor, name: str
) -> None:
    """One row per active dimension, largest KL (an autoencoder: code variance) first."""
    kl, variance, active = latent_activity(*key, dataset)
    dims, inactive = traversal_dims(kl, variance, active)
    count = len(test_images(dataset)[1])
    untrained = not encoder_trained(config)  # Monte Carlo EM: activity would be the untrained encoder's
    unmeasured = count < 2 or untrained  # a unit is active when its posterior mean varies over the test set
    if unmeasured:
        dims, inactive = list(range(model.config.latent_dim)), []
    activity = kl if model.config.variational else variance  # the figure each row shows
    reach = st.slider(
        "Sweep each dimension over" if model.config.variational else "Sweep each dimension over (code sds)",
        0.5,
        5.0,
        3.0,
        0.5,
        key="sweep",
        help="z_j from -r to +r (a VAE's prior: r standard deviations); others stay at the start point",
    )
    if not model.config.variational:  # an autoencoder's codes are not scaled by a prior: in code sds
        reach *= max(variance) ** 0.5
    values = torch.linspace(-reach, reach, STEPS).tolist()
    measure = "KL" if model.config.variational else "code variance"
    st.caption(
        f"Each row: one latent dimension swept from {values[0]:.2f} to {values[-1]:.2f} ({STEPS} steps) "
        f"while the others stay at {name}."
        + ("" if unmeasured else f" Rows are the active units, largest {measure} first.")
    )
    if unmeasured:
        st.caption(
            "Every dimension is drawn, in order: which units are active is measured by how their "
            "posterior means vary across the test images, "
            + (
                "and this model's encoder was never trained (Monte Carlo EM learnt the decoder alone, "
                "which is what each row sweeps)."
                if untrained
                else f"and {dataset}'s test set holds {count}."
            )
        )
    if inactive:
        st.caption(
            f"Inactive units, not drawn (they change nothing): {', '.join(f'z{j + 1}' for j in inactive)}"
        )
    if not dims:
        st.warning("No active unit: every dimension's posterior mean stays put across the test set.")
        return
    images = traversal(model, base, dims, values)
    correlations = _factor_table(key, dataset, dims)
    for row, j in enumerate(dims):
        left, right = st.columns([1, 5], vertical_alignment="center")
        label = f"**z{j + 1}**" + ("" if untrained else f" · {measure} {activity[j]:.2f}")
        if correlations:
            label += "  \n" + _factor_words(*correlations[j])
        left.markdown(label)
        right.image(
            png_bytes(make_grid(images[row * STEPS : (row + 1) * STEPS], STEPS), scale=2), output_format="PNG"
        )


def _factor_words(claimed: str | None, best: str, r1: float, second: str, r2: float) -> str:
    """A traversal row's factor, from ``followed_factor``: the one it follows; two or more that
    compete; or, below WEAK, none (naming the best at R 0.10 read as a claim: a shapes model's
    dimension that turns squares into hearts was said to be "x R 0.10")."""
    if claimed:
        return f"follows **{claimed}** (R {r1:.2f}; next: {second}, {r2:.2f})"
    if r1 < WEAK:
        return (
            f"follows no factor in the test set's codes (every R <= {r1:.2f}); its pictures show what it does"
        )
    return f"no single factor ({best} R {r1:.2f}, {second} R {r2:.2f})"


def _factor_table(key: tuple[str, int], dataset: str, dims: list[int]) -> dict[int, tuple]:
    """For a dataset with stored true factors: per dimension, ``followed_factor``'s answer (the
    factor it follows or None, the best and the runner-up with their R), shown with a table of
    all of them; {} for other datasets."""
    names = spec(dataset).factors
    test = load_dataset(dataset, "test")
    if not names or test.factors is None:
        return {}
    table = factor_correlations(encoded_test_set(*key, dataset), test.factors, names)
    best = {j: followed_factor(table[j], names) for j in dims}
    with st.expander("Which true factor each active dimension follows (correlation R over the test set)"):
        rows = [
            {"dimension": f"z{j + 1}", **{n: round(float(table[j, f]), 2) for f, n in enumerate(names)}}
            for j in dims
        ]
        st.dataframe(rows, hide_index=True)
        st.caption(
            "Every factor by one measure: the correlation R of the best least-squares fit of the "
            "dimension from the factor (a circular factor through the cosines and sines of its "
            "periods, the shape's kind through its classes), adjusted for the number of terms. A "
            f"row names a factor when its R is at least {WEAK} and it explains {DOMINANT:g} times "
            "the variance of the next; otherwise no single factor: look at its row of images."
        )
    return best


def attribute_tab(
    model: VAE, config: dict, key: tuple[str, int], dataset: str, base: torch.Tensor, name: str
) -> None:
    """The vector between two label means, walked from the start point."""
    names = label_names(config)
    labels = test_images(dataset)[1]
    classes = sorted(set(labels.tolist()))
    if len(classes) < 2:
        st.info("Attribute vectors need test images of at least two labels; this test set has one.")
        return
    show = (lambda k: names[k]) if names else str
    a, b, c = st.columns(3)
    source = a.selectbox("From the mean of", classes, 0, format_func=show, key="attr-from")
    target = b.selectbox("to the mean of", classes, min(1, len(classes) - 1), format_func=show, key="attr-to")
    reach = c.slider("Walk as far as", 0.5, 3.0, 1.5, 0.25, key="attr-reach", help="multiples of the vector")
    if source == target:
        st.warning("Choose two different labels.")
        return
    codes = encoded_test_set(*key, dataset)
    vector = attribute_vector(codes, labels, source, target)
    path = walk(base.float(), vector.float(), STEPS, reach)
    images = model.decode(path.to(next(model.parameters()).device)).mean.cpu()
    st.image(
        png_bytes(make_grid(images, STEPS), scale=3),
        output_format="PNG",
        caption=f"from {name}, along mean({show(target)}) - mean({show(source)}), 0 to {reach:g} times",
    )
    st.caption(
        f"The vector has length {float(vector.norm()):.2f}. As White (2016) warns, the difference of two "
        "label means is a crude attribute: it carries everything in which the classes differ on average."
    )


def analogy_tab(model: VAE, config: dict, key: tuple[str, int], dataset: str) -> None:
    """a : b :: c : ? with three test images chosen by index."""
    codes, (images, labels) = encoded_test_set(*key, dataset), test_images(dataset)
    names = label_names(config)
    columns = st.columns(4)
    picks = []
    for column, letter, default in zip(columns[:3], "abc", (0, 1, 2)):
        index = int(
            data_number_input(
                column, f"{letter}: test image", 0, len(codes) - 1, default, key=f"analogy-{letter}"
            )
        )
        tag = names[int(labels[index])] if names else int(labels[index])
        column.image(
            png_bytes(make_grid(images[index : index + 1], 1), scale=3),
            caption=f"#{index} ({tag})",
            output_format="PNG",
        )
        picks.append(codes[index])
    answer = analogy(*picks)
    decoded = model.decode(answer[None].to(next(model.parameters()).device)).mean.cpu()
    columns[3].markdown("**? = c + (b - a)**")
    columns[3].image(png_bytes(make_grid(decoded, 1), scale=3), caption="decoded answer", output_format="PNG")
    st.caption(
        "a : b :: c : ? by arithmetic on codes (White 2016): whatever turns a into b, applied to c. It works "
        "where the code space is laid out linearly, which a VAE does only in part."
    )
