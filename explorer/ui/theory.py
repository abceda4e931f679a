"""The Theory page's tabs, from EM to AEVB: each an equation, a plain sentence, a live experiment
(``explorer.theory``) and its exact numbers beside the picture."""

from __future__ import annotations

import numpy as np
import streamlit as st
import torch

from explorer.data.cache import eval_images
from explorer.model import VAE
from explorer.pictures.images import make_grid, png_bytes
from explorer.theory import divergences, evidence, figures, gradients, mean_field, mixtures
from explorer.ui.models import cached_model

TABS = ("EM", "KL's two directions", "Mean field and CAVI", "The identity", "Why reparameterise")
TAB_KEY = "theory-tab"
IDEAS = (  # (tab, what it shows): the Home page's list of links into the Theory page
    ("EM", "EM on a Gaussian mixture: the log-likelihood never falls"),
    ("KL's two directions", "KL(q‖p) seeks a mode, KL(p‖q) covers them"),
    ("Mean field and CAVI", "Mean field shrinks the variances; CAVI raises the ELBO"),
    ("The identity", "log p(x) = ELBO + KL(q ‖ p(z|x)), on this model"),
    ("Why reparameterise", "Why reparameterise: gradient variance against REINFORCE"),
)
EM_STEP = "em-step"
COLLAPSED = 3  # a component with fewer points' worth of responsibility nears a singular covariance


@st.cache_data(max_entries=32, show_spinner=False)
def _em(components: int, spread: float, n: int, seed: int, fit: int, start_seed: int):
    x, _ = mixtures.sample_mixture(components, spread, n, seed)
    start = mixtures.initial_mixture(x, fit, start_seed)
    run = mixtures.em(x, start, iterations=200)
    return x, run, mixtures.sklearn_log_likelihood(x, start, run.iterations)


def _step_names(iterations: int) -> list[str]:
    names = ["start"]
    for t in range(1, iterations + 1):
        names += [f"E-step {t}", f"M-step {t}"]
    return names


def em_ui() -> None:
    """EM on a 2-D Gaussian mixture, a step at a time; its log-likelihood never falls."""
    st.latex(
        r"\underbrace{r_{nk} = \frac{\pi_k \mathcal N(x_n;\mu_k,\Sigma_k)}{\sum_j \pi_j \mathcal N(x_n;\mu_j,"
        r"\Sigma_j)}}_{\text{E step}}\qquad \underbrace{\pi_k, \mu_k, \Sigma_k \leftarrow \text{weighted "
        r"averages under } r_{\cdot k}}_{\text{M step}}"
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
    n = c[2].number_input("Points", 20, 1000, 300, 10, key="em-n")
    seed = c[3].number_input("Data seed", 0, 10_000, 1, key="em-seed")
    fit = c[4].number_input("Components fitted", 1, 6, 3, key="em-k")
    start_seed = c[5].number_input("Start seed", 0, 10_000, 0, key="em-start")
    try:
        x, run, sk = _em(int(true_k), float(spread), int(n), int(seed), int(fit), int(start_seed))
    except (np.linalg.LinAlgError, ValueError):
        st.warning(
            "A component collapsed onto too few points (its covariance became singular, where the "
            "likelihood has no maximum): fit fewer components, or use more points or another start."
        )
        return
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
        mixture, resp, shown = run.mixtures[0], np.full((len(x), int(fit)), 1.0 / int(fit)), 0
    elif s % 2:  # E step t: responsibilities under the mixture of iteration t - 1
        mixture, resp, shown = run.mixtures[t - 1], run.responsibilities[t - 1], t - 1
    else:  # M step t: the mixture refitted to them
        mixture, resp, shown = run.mixtures[t], run.responsibilities[t - 1], t
    left, right = st.columns([3, 2])
    left.plotly_chart(
        figures.em_figure(x, mixture, resp, f"{step}: responsibilities and components"), key="em-figure"
    )
    right.plotly_chart(
        figures.curve_figure(run.log_likelihood, shown, "log-likelihood per iteration", "nats"),
        key="em-curve",
    )
    falls = int((np.diff(run.log_likelihood) < -1e-9 * np.abs(run.log_likelihood[1:]).clip(1)).sum())
    collapsed = min(m.weights.min() for m in run.mixtures) * len(x) < COLLAPSED
    right.markdown(
        f"log p(x) now **{run.log_likelihood[shown]:.4f}** nats "
        f"({run.log_likelihood[shown] / len(x):.4f} per point); converged after **{run.iterations}** "
        f"iterations at **{run.log_likelihood[-1]:.4f}**.  \n"
        f"Decreases along the way: **{falls}**.  \nscikit-learn's `GaussianMixture` from the same start, "
        f"{run.iterations} iterations: **{sk:.4f}** nats (difference {abs(sk - run.log_likelihood[-1]):.1e})."
    )
    if collapsed:
        right.warning(
            "A component has shrunk onto fewer than 3 points: there the likelihood has no maximum (it "
            "grows without bound as the covariance shrinks), and rounding, not EM, decides each step."
        )


def kl_ui() -> None:
    """A Gaussian fitted to a bimodal target by KL(q||p) and by KL(p||q)."""
    st.latex(
        r"\mathrm{KL}(q\,\|\,p) = \int q(z)\log\frac{q(z)}{p(z)}\,dz \qquad\text{vs}\qquad "
        r"\mathrm{KL}(p\,\|\,q) = \int p(z)\log\frac{p(z)}{q(z)}\,dz"
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
    left.plotly_chart(figures.kl_figure(fits), key="kl-figure")
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
    right.dataframe(
        rows,
        hide_index=True,
        column_config={
            k: st.column_config.NumberColumn(format="%.4f")
            for k in ("mean", "variance", "KL(q‖p)", "KL(p‖q)")
        },
    )
    right.caption(
        f"Target: mean {fits.target.mean:.4f}, variance {fits.target.variance:.4f}, modes at "
        f"±{sep / 2:g}. Divergences in nats, by the trapezoid rule on {len(fits.grid):,} points."
    )


@st.cache_data(max_entries=64, show_spinner=False)
def _kl(sep: float, sd: float, weight: float) -> divergences.KLFits:
    return divergences.fit_both(divergences.Bimodal(sep, sd, weight))


def mean_field_ui() -> None:
    """Mean field on a correlated Gaussian, then CAVI for the Bayesian mixture of Gaussians."""
    st.latex(
        r"q(z) = q_1(z_1)\,q_2(z_2),\qquad \log q_j^*(z_j) = \mathbb E_{q_{-j}}\left[\log p(z, x)\right] "
        r"+ \text{const}"
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
    left.plotly_chart(figures.mean_field_figure(mf), key="mf-figure")
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
    left.plotly_chart(figures.cavi_figure(x, states[sweep]), key="cavi-figure")
    right.plotly_chart(figures.curve_figure(elbos, sweep, "ELBO per sweep", "nats"), key="cavi-curve")
    right.markdown(
        f"ELBO at sweep {sweep}: **{elbos[sweep]:.4f}** nats; after {len(elbos) - 1} sweeps "
        f"**{elbos[-1]:.4f}**. Largest fall between sweeps: **{max(0.0, -np.diff(elbos).min()):.2e}** nats."
    )


# -- the model-dependent tabs -------------------------------------------------------------------


@st.cache_resource(max_entries=4, show_spinner="Binarising the test set...")
def _data_space_test_set(dataset: str, binarized: bool) -> torch.Tensor:
    return eval_images(dataset, "test", binarized)[0]


def _image(dataset: str, config: dict, key: str) -> tuple[int, torch.Tensor, bool]:
    """A test image picked by number, in the model's data space (binarised once with a fixed seed
    for a model of binarised data, as evaluation scores it), shown small."""
    binarized = evidence.data_space_binarized(config)
    test = _data_space_test_set(dataset, binarized)
    left, right = st.columns([1, 4], vertical_alignment="center")
    index = int(left.number_input("Test image", 0, len(test) - 1, 0, key=key))
    right.image(
        png_bytes(make_grid(test[index : index + 1], 1), scale=3),
        output_format="PNG",
        caption=f"test image #{index}" + (" (binarised, fixed seed)" if binarized else ""),
    )
    return index, test[index], binarized


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
def _evidence(path: str, mtime_ns: int, dataset: str, binarized: bool, index: int) -> tuple:
    model = cached_model(path, mtime_ns)
    x = _data_space_test_set(dataset, binarized)[index]
    ks = evidence.affordable_ks(evidence.seconds_per_decode(model))
    return evidence.evidence(model, x, ks=ks), ks


def identity_ui(choice: str, model: VAE, key: tuple[str, int], dataset: str, config: dict) -> None:
    """log p(x) = ELBO + KL(q(z|x) || p(z|x)) on the chosen model and image, and L_K against K."""
    st.latex(
        r"\log p_\theta(x) = \underbrace{\mathbb E_{q_\phi(z|x)}\left[\log p_\theta(x, z) - \log q_\phi(z|x)"
        r"\right]}_{\text{ELBO}} + \mathrm{KL}\left(q_\phi(z|x)\,\|\,p_\theta(z|x)\right)"
    )
    st.latex(
        r"\mathcal L_K = \mathbb E\left[\log \tfrac1K \textstyle\sum_{k=1}^K \frac{p_\theta(x, z_k)}"
        r"{q_\phi(z_k|x)}\right],\quad \mathrm{ELBO} = \mathcal L_1 \le \mathcal L_K \le \mathcal L_{K+1}"
        r" \le \log p_\theta(x)"
    )
    st.markdown(
        "The ELBO falls short of the evidence by exactly how far the encoder's $q(z|x)$ is from the true "
        "posterior. With a 2-D latent space both sides can be computed on a grid, so the identity can be "
        "checked on your own model; the importance-weighted bounds $\\mathcal L_K$ (Burda et al. 2015) "
        "close the gap as $K$ grows."
    )
    if _absent(model, "no bound on log p(x) to tighten"):
        return
    index, _, binarized = _image(dataset, config, "identity-image")
    ev, ks = _evidence(*key, dataset, binarized, index)
    if ev.log_px is not None:
        left, right = st.columns([3, 2])
        left.plotly_chart(figures.posterior_figure(ev), key="identity-posterior")
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
            f"of 81 points per axis over this model's {model.config.latent_dim} dimensions would be "
            f"81^{model.config.latent_dim} decodes. Here: the bounds L_K, which approach log p(x) from below."
        )
    left, right = st.columns([3, 2])
    left.plotly_chart(figures.bounds_figure(ev), key="identity-bounds")
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
        right.caption(
            f"K up to {max(ks):,} here: larger K would take more than {evidence.POOL_BUDGET:g} s on this "
            f"machine with this decoder. All of them: `vae-explorer evidence {choice} --index {index}`."
        )


@st.cache_data(max_entries=64, show_spinner="Measuring the gradient estimators...")
def _gradients(path: str, mtime_ns: int, dataset: str, binarized: bool, index: int):
    model = cached_model(path, mtime_ns)
    samples, groups = gradients.plan(evidence.seconds_per_decode(model))
    x = _data_space_test_set(dataset, binarized)[index]
    return gradients.gradient_variance(model, x, samples, groups)


def reparam_ui(model: VAE, key: tuple[str, int], dataset: str, config: dict) -> None:
    """Gradient variance: score function against the reparameterised estimators A and B."""
    st.latex(
        r"\nabla_\phi \mathbb E_{q_\phi}[f(z)] = \underbrace{\mathbb E_{q_\phi}\left[f(z)\,\nabla_\phi \log "
        r"q_\phi(z|x)\right]}_{\text{score function (REINFORCE)}} = \underbrace{\mathbb E_{\varepsilon"
        r"\sim\mathcal N(0,I)}\left[\nabla_\phi f(\mu_\phi + \sigma_\phi\odot\varepsilon)\right]}"
        r"_{\text{reparameterised}}"
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
    index, _, binarized = _image(dataset, config, "reparam-image")
    gv = _gradients(*key, dataset, binarized, index)
    left, right = st.columns([3, 2])
    left.plotly_chart(figures.variance_figure(gv), key="reparam-figure")
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
    dims = min(2, model.config.latent_dim)
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
