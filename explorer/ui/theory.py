"""The Theory page's tabs, from EM to AEVB: each an equation, a plain sentence, a live experiment
(``explorer.theory``) and its exact numbers beside the picture."""

from __future__ import annotations

import numpy as np
import streamlit as st

from explorer.theory import divergences, figures, mean_field, mixtures
from explorer.ui.widgets import chart

TABS = ("EM", "KL's two directions", "Mean field and CAVI", "The identity", "Why reparameterise")
TAB_KEY = "theory-tab"
IDEAS = (  # (tab, what it shows): the Home page's list of links into the Theory page
    ("EM", "EM on a Gaussian mixture: the log-likelihood never falls"),
    ("KL's two directions", "KL(q‖p) seeks a mode, KL(p‖q) covers them"),
    ("Mean field and CAVI", "Mean field shrinks the variances; CAVI raises the ELBO"),
    ("The identity", "log p(x) = ELBO + KL(q ‖ p(z|x)), on this model"),
    ("Why reparameterise", "Why reparameterise: gradient variance against REINFORCE"),
)
TAB_WRITTEN = "theory-tab-written"  # session state: the tab the page last wrote into the address


def tab_named(text: str) -> str | None:
    """The tab of ``TABS`` that ``text`` names, however it is typed: any case, apostrophes left out,
    hyphens or underscores for spaces ("the-identity", "KLs two directions"); None for none."""

    def plain(name: str) -> str:
        kept = "".join(" " if c in "-_+" else c for c in name.casefold() if c not in "'\u2019\"")
        return " ".join(kept.split()).replace("ize", "ise")  # "reparameterize", as US texts spell it

    return next((tab for tab in TABS if plain(tab) == plain(text)), None)


def follow_tab_address() -> None:
    """Open the tab the address names (a Home page link, a shared address), once per address: the
    tab clicked on the page afterwards is not sent back to the address's. A tab given more than
    once takes the last, said as for the other keys; one that names no tab is said and dropped."""
    asked = st.query_params.get_all("tab")
    if not asked or asked[-1] == st.session_state.get(TAB_WRITTEN):
        return
    if len(asked) > 1:
        shown = ", ".join(repr(a[:40]) for a in asked)
        st.warning(f"Given more than once in the address: tab ({shown}). Only the last of each is read.")
    linked = tab_named(asked[-1])
    if linked is None:
        st.warning(f"Ignored in the address: tab={asked[-1][:40]!r} (tab: one of {', '.join(TABS)}).")
        del st.query_params["tab"]
        return
    st.session_state[TAB_KEY] = linked


def keep_tab_in_address() -> None:
    """Write the open tab into the address (so that it can be copied and shared)."""
    shown = st.session_state.get(TAB_KEY) or TABS[0]
    st.session_state[TAB_WRITTEN] = shown
    if st.query_params.get_all("tab") != [shown]:
        st.query_params["tab"] = shown


EM_STEP = "em-step"
EM_FIGURE = "em-figure"  # the EM figure's key: its selection is the point clicked
CLICKED = "em-clicked"  # session state: the points clicked onto the EM figure, [[x1, x2], ...]
COLLAPSED = 3  # a component with fewer points' worth of responsibility nears a singular covariance
PER_COMPONENT = 3  # points EM needs per fitted component (a 2-D covariance from fewer is singular)


@st.cache_data(max_entries=32, show_spinner=False)
def _em(components: int, spread: float, n: int, seed: int, fit: int, start_seed: int, clicked: tuple):
    """The data (n generated points, then the clicked ones) and EM's run on it with scikit-learn's
    figure from the same start; the run and figure None when there are too few points to fit."""
    x, _ = mixtures.sample_mixture(components, spread, n, seed)
    x = np.concatenate([x, np.array(clicked, dtype=float).reshape(-1, 2)])
    if len(x) < PER_COMPONENT * fit:
        return x, None, None
    start = mixtures.initial_mixture(x, fit, start_seed)
    run = mixtures.em(x, start, iterations=200)
    return x, run, mixtures.sklearn_log_likelihood(x, start, run.iterations)


def _add_clicked() -> None:
    """The EM figure's selection callback: each point clicked, on the plane (curve 0) or on a data
    point (curve 1), becomes a data point. Copied into session state: the figure that changes
    with it clears the selection."""
    points = st.session_state[EM_FIGURE].selection.get("points", [])
    new = [[float(p["x"]), float(p["y"])] for p in points if p.get("curve_number") in (0, 1)]
    if new:
        st.session_state[CLICKED] = [*st.session_state.get(CLICKED, []), *new]


def _em_chart(column, figure) -> None:
    chart(column, figure, key=EM_FIGURE, on_select=_add_clicked, selection_mode="points")


def _clicked_ui(generated: int) -> tuple:
    """How many points were generated and clicked, and the button that clears the clicked ones;
    returns the clicked points ((x1, x2), ...)."""
    clicked = tuple(tuple(p) for p in st.session_state.get(CLICKED, []))
    b = st.columns([1, 3], vertical_alignment="center")
    b[0].button("Clear clicked points", key="em-clear", on_click=st.session_state.pop, args=(CLICKED, None),
                disabled=not clicked)  # fmt: skip
    b[1].caption(
        f"{generated} generated and {len(clicked)} clicked points. Click anywhere on the plane to add a "
        "point there."
    )
    return clicked


def _step_names(iterations: int) -> list[str]:
    names = ["start"]
    for t in range(1, iterations + 1):
        names += [f"E-step {t}", f"M-step {t}"]
    return names


def em_ui() -> None:
    """EM on a 2-D Gaussian mixture, a step at a time; its log-likelihood never falls. The data:
    points generated from a random mixture, and points clicked onto the figure."""
    st.latex(  # one step a line: side by side they ran off a phone's screen
        r"\begin{aligned}&\underbrace{r_{nk} = \frac{\pi_k \mathcal N(x_n;\mu_k,\Sigma_k)}{\sum_j \pi_j "
        r"\mathcal N(x_n;\mu_j,\Sigma_j)}}_{\text{E step}} \\ &\underbrace{\pi_k, \mu_k, \Sigma_k "
        r"\leftarrow \text{weighted averages under } r_{\cdot k}}_{\text{M step}}\end{aligned}"
    )
    st.markdown(
        "EM alternates two exact steps: the **E step** computes each point's responsibilities, the "
        "posterior over which component made it; the **M step** refits every component to the points "
        "it is responsible for. Each round can only raise $\\log p(x) = \\sum_n \\log \\sum_k \\pi_k "
        "\\mathcal N(x_n; \\mu_k, \\Sigma_k)$ (Bishop 2006, section 9.4): the same bound-and-tighten "
        "idea the VAE's ELBO makes amortised and approximate."
    )
    c = st.columns(6)
    true_k = c[0].number_input("Components in the data", 1, 6, 3, key="em-true-k")
    spread = c[1].slider("Spread", 0.2, 2.0, 0.8, 0.1, key="em-spread")
    n = c[2].number_input("Points", 0, 1000, 300, 10, key="em-n", help="generated; add more by clicking")
    seed = c[3].number_input("Data seed", 0, 10_000, 1, key="em-seed")
    fit = c[4].number_input("Components fitted", 1, 6, 3, key="em-k")
    start_seed = c[5].number_input("Start seed", 0, 10_000, 0, key="em-start")
    clicked = _clicked_ui(int(n))
    try:
        x, run, sk = _em(int(true_k), float(spread), int(n), int(seed), int(fit), int(start_seed), clicked)
    except (np.linalg.LinAlgError, ValueError):
        st.warning(
            "A component collapsed onto too few points (its covariance became singular, where the "
            "likelihood has no maximum): fit fewer components, click more points near those alone, "
            "clear the clicked points, or try another start."
        )
        _data_alone(
            np.concatenate(
                [
                    mixtures.sample_mixture(int(true_k), float(spread), int(n), int(seed))[0],
                    np.array(clicked, dtype=float).reshape(-1, 2),
                ]
            )
        )  # fmt: skip: the plane stays, so that more points can be clicked
        return
    if run is None:
        st.info(
            f"EM fits {int(fit)} component{'' if int(fit) == 1 else 's'} to at least "
            f"{PER_COMPONENT * int(fit)} points ({PER_COMPONENT} for each 2-D covariance); there are "
            f"{len(x)}. Click on the plane to add points, or generate some."
        )
        _data_alone(x)
        return
    step, (mixture, resp, shown) = _em_step(run, len(x), int(fit))
    left, right = st.columns([3, 2])
    title = f"{step}: responsibilities and components"
    clicked = len(st.session_state.get(CLICKED, []))
    plane = figures.click_plane(np.concatenate([x, figures.outlines_reach(run.mixtures)]))
    _em_chart(left, figures.em_figure(x, mixture, resp, title, plane, clicked))
    chart(
        right,
        figures.curve_figure(run.log_likelihood, shown, "log-likelihood per iteration", "nats"),
        key="em-curve",
    )
    _em_readout(right, run, len(x), sk, shown)


def _data_alone(x: np.ndarray) -> None:
    """The points (N, 2) on their clickable plane, without a mixture."""
    clicked = len(st.session_state.get(CLICKED, []))
    title = "the data: click to add points"
    _em_chart(st, figures.em_figure(x, None, None, title, figures.click_plane(x), clicked))


def _em_step(run, n: int, fit: int):
    """The step picked with the Next / Run-to-convergence buttons and the slider, and what it
    shows: (step name, (mixture, responsibilities (n, fit), the iteration of the curve))."""
    names = _step_names(run.iterations)
    if st.session_state.get(EM_STEP) not in names:
        st.session_state[EM_STEP] = names[0]
    b = st.columns([1, 1, 4])
    here = names.index(st.session_state[EM_STEP])
    b[0].button(
        "Next step",
        key="em-next",
        on_click=st.session_state.__setitem__,
        args=(EM_STEP, names[min(here + 1, len(names) - 1)]),
    )
    b[1].button(
        "Run to convergence", key="em-run", on_click=st.session_state.__setitem__, args=(EM_STEP, names[-1])
    )
    step = st.select_slider("Step", names, key=EM_STEP)
    s = names.index(step)
    t = (s + 1) // 2  # the iteration whose E or M step this is
    if s == 0:
        return step, (run.mixtures[0], np.full((n, fit), 1.0 / fit), 0)
    if s % 2:  # E step t: responsibilities under the mixture of iteration t - 1
        return step, (run.mixtures[t - 1], run.responsibilities[t - 1], t - 1)
    return step, (run.mixtures[t], run.responsibilities[t - 1], t)  # M step t: the mixture refitted


def _em_readout(column, run, n: int, sk: float, shown: int) -> None:
    """log p(x) at the step shown and at convergence, how often it fell (never, if EM is right),
    scikit-learn's figure from the same start, and a warning when a component collapsed."""
    falls = int((np.diff(run.log_likelihood) < -1e-9 * np.abs(run.log_likelihood[1:]).clip(1)).sum())
    collapsed = min(m.weights.min() for m in run.mixtures) * n < COLLAPSED
    column.markdown(
        f"log p(x) now **{run.log_likelihood[shown]:.4f}** nats "
        f"({run.log_likelihood[shown] / n:.4f} per point); converged after **{run.iterations}** "
        f"iterations at **{run.log_likelihood[-1]:.4f}**.  \n"
        f"Decreases along the way: **{falls}**.  \nscikit-learn's `GaussianMixture` from the same start, "
        f"{run.iterations} iterations: **{sk:.4f}** nats (difference {abs(sk - run.log_likelihood[-1]):.1e})."
    )
    if collapsed:
        column.warning(
            "A component has shrunk onto fewer than 3 points: there the likelihood has no maximum (it "
            "grows without bound as the covariance shrinks), and rounding, not EM, decides each step."
        )


def kl_ui() -> None:
    """A Gaussian fitted to a bimodal target by KL(q||p) and by KL(p||q)."""
    st.latex(
        r"\begin{aligned}\mathrm{KL}(q\,\|\,p) &= \int q(z)\log\frac{q(z)}{p(z)}\,dz \\ "
        r"\text{vs}\quad \mathrm{KL}(p\,\|\,q) &= \int p(z)\log\frac{p(z)}{q(z)}\,dz\end{aligned}"
    )
    st.markdown(
        "KL is not symmetric. $\\mathrm{KL}(q\\|p)$, the direction variational inference minimises, "
        "punishes $q$ for putting mass where $p$ has none, so $q$ hugs **one mode**. $\\mathrm{KL}(p\\|q)$ "
        "punishes $q$ for missing mass $p$ has, so $q$ **covers both** (it matches $p$'s mean and "
        "variance). Both fitted here by quadrature on a fine grid."
    )
    c = st.columns(3)
    sep = c[0].slider("Distance between the modes", 0.0, 8.0, 4.0, 0.25, key="kl-sep")
    sd = c[1].slider("Each mode's sd", 0.2, 2.0, 0.7, 0.05, key="kl-sd")
    weight = c[2].slider("Weight of the left mode", 0.05, 0.95, 0.5, 0.05, key="kl-weight")
    fits = _kl(float(sep), float(sd), float(weight))
    left, right = st.columns([3, 2])
    chart(left, figures.kl_figure(fits), key="kl-figure")
    rows = [
        {
            "q": "minimises KL(p‖q)",
            "mean": fits.forward[0],
            "variance": fits.forward[1],
            "KL(q‖p)": fits.forward_kl["kl_qp"],
            "KL(p‖q)": fits.forward_kl["kl_pq"],
        },
        {
            "q": "minimises KL(q‖p)",
            "mean": fits.reverse[0],
            "variance": fits.reverse[1],
            "KL(q‖p)": fits.reverse_kl["kl_qp"],
            "KL(p‖q)": fits.reverse_kl["kl_pq"],
        },
    ]
    # to the four decimals shown, without a sign the quadrature's rounding gives (KL "-0.0000" at
    # distance 0, where both fits are the target and every divergence is 0)
    kl_columns = ("KL(q‖p)", "KL(p‖q)")
    rows = [{k: v if k == "q" else round(max(v, 0.0) if k in kl_columns else float(v), 4) + 0.0
             for k, v in row.items()} for row in rows]  # fmt: skip
    right.dataframe(
        rows,
        hide_index=True,
        column_config={
            k: st.column_config.NumberColumn(format="%.4f")
            for k in ("mean", "variance", "KL(q‖p)", "KL(p‖q)")
        },
    )
    right.caption(
        f"Target: mean {round(fits.target.mean, 4) + 0.0:.4f}, variance {fits.target.variance:.4f}, modes at "
        f"±{sep / 2:g}. Divergences in nats, by the trapezoid rule on {len(fits.grid):,} points."
    )


@st.cache_data(max_entries=64, show_spinner=False)
def _kl(sep: float, sd: float, weight: float) -> divergences.KLFits:
    return divergences.fit_both(divergences.Bimodal(sep, sd, weight))


def mean_field_ui() -> None:
    """Mean field on a correlated Gaussian, then CAVI for the Bayesian mixture of Gaussians."""
    st.latex(
        r"\begin{aligned}q(z) &= q_1(z_1)\,q_2(z_2), \\ \log q_j^*(z_j) &= \mathbb E_{q_{-j}}"
        r"\left[\log p(z, x)\right] + \text{const}\end{aligned}"
    )
    st.markdown(
        "Mean field restricts $q$ to a product of independent factors, and coordinate ascent (CAVI) "
        "updates one factor at a time to its exact optimum. On a correlated Gaussian each factor "
        "gets variance $1/\\Lambda_{jj} = \\Sigma_{jj}(1-\\rho^2)$, **smaller** than the true "
        "$\\Sigma_{jj}$: the reverse KL under-estimates uncertainty (Bishop 2006, section 10.1.2)."
    )
    rho = st.slider("Correlation ρ", -0.95, 0.95, 0.8, 0.05, key="mf-rho")
    mf = mean_field.cavi_gaussian(*mean_field.correlated(float(rho)))
    left, right = st.columns([3, 2])
    chart(left, figures.mean_field_figure(mf), key="mf-figure")
    right.markdown(
        f"True marginal variances Σ₁₁, Σ₂₂: **{mf.marginal_variances[0]:.4f}**, "
        f"**{mf.marginal_variances[1]:.4f}**  \nMean-field variances 1/Λ₁₁, 1/Λ₂₂: "
        f"**{mf.variances[0]:.4f}**, **{mf.variances[1]:.4f}** "
        f"(ratio 1 − ρ² = {mean_field.shrinkage(rho):.4f})  \n"
        f"KL(q‖p) after {len(mf.path) - 1} updates: **{mf.kl_reverse:.4f}** nats "
        f"(at the optimum −½ log(1 − ρ²) = {mean_field.mutual_information(rho):.4f})  \n"
        f"q's mean after CAVI: ({mf.path[-1][0]:.4f}, {mf.path[-1][1]:.4f}); the true mean (0, 0)."
    )
    st.divider()
    _cavi_ui()


@st.cache_data(max_entries=32, show_spinner=False)
def _cavi(k: int, n: int, prior_var: float, seed: int, iterations: int):
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, np.sqrt(prior_var), size=(k, 2))
    x = centres[rng.integers(k, size=n)] + rng.standard_normal((n, 2))
    states, elbos = mixtures.cavi(x, k, prior_var, iterations, seed)
    return x, states, elbos


def _cavi_ui() -> None:
    st.markdown(
        "**CAVI for the Bayesian mixture of Gaussians** (Blei, Kucukelbir & McAuliffe 2017, section 3): "
        "$\\mu_k \\sim \\mathcal N(0, \\sigma^2 I)$, $c_n \\sim$ uniform, "
        "$x_n \\sim \\mathcal N(\\mu_{c_n}, I)$; $q(\\mu_k) = \\mathcal N(m_k, s_k^2 I)$, "
        "$q(c_n) = \\mathrm{Cat}(\\varphi_n)$. Every update is exact, "
        "so the ELBO rises at every sweep."
    )
    c = st.columns(4)
    k = int(c[0].number_input("Components K", 1, 6, 3, key="cavi-k"))
    n = int(c[1].number_input("Points", 20, 1000, 300, 10, key="cavi-n"))
    prior_var = float(c[2].slider("Prior variance σ²", 1.0, 50.0, 16.0, 1.0, key="cavi-prior"))
    seed = int(c[3].number_input("Seed", 0, 10_000, 0, key="cavi-seed"))
    x, states, elbos = _cavi(k, n, prior_var, seed, 30)
    sweep = st.slider("Sweep", 0, len(states) - 1, len(states) - 1, key="cavi-sweep")
    left, right = st.columns([3, 2])
    chart(left, figures.cavi_figure(x, states[sweep]), key="cavi-figure")
    chart(right, figures.curve_figure(elbos, sweep, "ELBO per sweep", "nats"), key="cavi-curve")
    right.markdown(
        f"ELBO at sweep {sweep}: **{elbos[sweep]:.4f}** nats; after {len(elbos) - 1} sweeps "
        f"**{elbos[-1]:.4f}**. Largest fall between sweeps: **{max(0.0, -np.diff(elbos).min()):.2e}** nats."
    )
