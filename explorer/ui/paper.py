"""The Paper page's Streamlit parts: the curves it draws (cached on their files), the panels of
one figure with the sentence under each, and what our reproduction does differently."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from explorer.locations import MODEL_FILE
from explorer.paper.curves import read_curves, shipped_path
from explorer.paper.figure2 import DATASETS, PAPER_MINUTES_PER_MILLION, TRAIN_SIZE, Reproduction
from explorer.paper.figure2 import Panel as Figure2Panel
from explorer.paper.figure3 import TRAIN_SIZES
from explorer.paper.figure3 import Panel as Figure3Panel
from explorer.paper.figures import axes_sentence, figure2, figure3, gap_sentence, ordering_sentence
from explorer.train.runfolder import runs_root
from explorer.ui.widgets import chart


def paper_models() -> list[str]:
    """The models of one's own ``paper figure2`` and ``figure3`` runs, as the model picker names
    them (``runs/paper/figure2/mnist-nz20-wake-sleep-lr0.01``): the chosen step size's run of each
    panel (not the trials left behind) that has saved weights."""
    found = []
    for figure, panel_type in (("figure2", Figure2Panel), ("figure3", Figure3Panel)):
        root = runs_root() / "paper" / figure
        if root.is_dir():
            chosen = Reproduction(root, samples=0, panel_type=panel_type).chosen()
            found += [f"runs/paper/{figure}/{f.name}" for _, _, f in chosen if (f / MODEL_FILE).is_file()]
    return found


def _stamp(paths: list[Path]) -> tuple:
    """(path, size, mtime) of each file: part of the curves' cache key, so that a run that grows
    (or a new one) is read again."""
    return tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in paths if p.exists())


# ``stamps`` has no leading underscore: Streamlit leaves such parameters out of the cache key,
# and the page kept the first visit's curves until the server restarted.
@st.cache_data(show_spinner=False, max_entries=8)
def _curves(shipped: str, runs: str, stamps: tuple) -> list[dict]:
    mine = Reproduction(Path(runs), samples=0).curves()
    return [{**c, "source": "shipped"} for c in read_curves(Path(shipped))] + mine


@st.cache_data(show_spinner=False, max_entries=8)
def _curves3(shipped: str, runs: str, stamps: tuple) -> list[dict]:
    mine = Reproduction(Path(runs), samples=0, panel_type=Figure3Panel).curves()
    return [{**c, "source": "shipped"} for c in read_curves(Path(shipped))] + mine


@st.cache_resource(show_spinner=False, max_entries=8)
def _figure(which: str, shipped: str, runs: str, stamps: tuple, dataset: str | None):
    """A figure's panels, built once per set of curve files (read only: st.plotly_chart copies
    it, and ``chart``'s change to its titles gives the same figure again), so that a warm visit
    does not rebuild a hundred traces."""
    if which == "figure3":
        return figure3(_curves3(shipped, runs, stamps), TRAIN_SIZES)
    return figure2(_curves(shipped, runs, stamps), dataset, DATASETS[dataset])


def _files(figure: str) -> tuple[Path, Path, tuple]:
    """(shipped curves, the user's runs folder, the stamps of every file the curves come from)."""
    shipped, runs = shipped_path(figure), runs_root() / "paper" / figure
    files = [shipped, *sorted(runs.glob("*/metrics.jsonl"))] if runs.is_dir() else [shipped]
    return shipped, runs, _stamp(files)


def figure3_curves() -> list[dict]:
    """Shipped Figure 3 curves and the user's own (``vae-explorer paper figure3`` runs)."""
    shipped, runs, stamps = _files("figure3")
    return _curves3(str(shipped), str(runs), stamps)


def figure3_panels(curves: list[dict]) -> None:
    """Figure 3's two panels and, under them, the measured ordering of each."""
    if not curves:
        st.info("No Figure 3 curves yet. Run `vae-explorer paper figure3` and they appear here as they grow.")
        return
    shipped, runs, stamps = _files("figure3")
    fig = _figure("figure3", str(shipped), str(runs), stamps, None)
    chart(st, fig, width="stretch", key="figure3")
    st.markdown("\n".join(f"- {ordering_sentence(curves, n)}" for n in TRAIN_SIZES))


def figure2_curves() -> list[dict]:
    """Shipped Figure 2 curves and the user's own (``vae-explorer paper figure2`` runs)."""
    shipped, runs, stamps = _files("figure2")
    return _curves(str(shipped), str(runs), stamps)


def figure2_panels(curves: list[dict], dataset: str) -> None:
    """Figure 2's panels for ``dataset`` and, under them, one sentence per latent size."""
    sizes = DATASETS[dataset]
    if not any(c["dataset"] == dataset for c in curves):
        st.info(
            f"No {dataset} curves yet. Run `vae-explorer paper figure2 --dataset {dataset}` "
            + (
                "(after `vae-explorer data fetch frey-face --from frey_rawface.mat`)"
                if dataset != "mnist"
                else ""
            )
            + " and they appear here as they grow."
        )
        return
    shipped, runs, stamps = _files("figure2")
    fig = _figure("figure2", str(shipped), str(runs), stamps, dataset)
    chart(st, fig, width="stretch", key=f"figure2-{dataset}")
    st.caption(axes_sentence(curves, dataset, sizes))
    st.markdown("\n".join(f"- {gap_sentence(curves, dataset, n)}" for n in sizes))


def cost_table(curves: list[dict]) -> None:
    """Training time per million samples of each curve, beside the paper's 20-40 minutes."""
    rows = []
    for c in curves:
        last = c["points"][-1][0] if c["points"] else 0
        if c.get("seconds") and last:
            # training alone where the run's metrics say what its bound points took (a run of one's
            # own); the shipped curves keep their wall time, the points' estimates in it
            training = c["seconds"] - (c.get("bound_seconds") or 0.0)
            minutes = training / 60 / (last / 1e6)
            figure = "Figure 3" if "n_train" in c else "Figure 2"
            rows.append({"figure": figure, "dataset": c.get("dataset", "mnist"), "N_z": c.get("nz", 3),
                         "N_train": f"{c.get('n_train') or TRAIN_SIZE.get(c.get('dataset', 'mnist'), 0):,}",
                         "algorithm": c["algorithm"],
                         "samples reached": f"{last:,}", "minutes per 10^6 samples": f"{minutes:.1f}",
                         "time counted": "training" if c.get("bound_seconds") is not None
                         else "training and its bound points",
                         "Adagrad step size": f"{c['lr']:g}" if c.get("lr") else "-",
                         "curve": c.get("source")})  # fmt: skip
    rows.sort(
        key=lambda r: (
            r["figure"],
            r["dataset"],
            r["N_z"],
            int(r["N_train"].replace(",", "")),
            r["algorithm"],
        )
    )
    if rows:
        lo, hi = PAPER_MINUTES_PER_MILLION
        st.caption(
            f"The paper: {lo}-{hi} minutes per million training samples on a 40 GFLOPS Xeon. Ours: the "
            "wall time each shipped run recorded on a 2-core CPU that other work shared while it ran "
            "(its load differed from run to run by up to ten times, and so do these minutes; "
            "bench/README.md has the same steps timed side by side on a quiet host: there Monte Carlo "
            "EM's step costs 5.8 AEVB steps, wake-sleep's 1.1-1.7). A shipped run's minutes count its "
            "bound points too: Figure 3's are Appendix D estimates of log p(x), HMC chains on 200 "
            "images each, which outweigh the training of a run on 1,000 images; so these minutes do "
            "not rank the algorithms' steps. A run of your own counts its training alone."
        )
        # static (a data grid took 0.1-0.2 s of every visit), scrolled sideways on a narrow screen
        # (the columns ran off a phone's right edge); there, a line says so, as nothing else would
        st.html(
            "<style>.st-key-costs [data-testid=stTable] { overflow-x: auto; } .costs-scroll { display: "
            "none; font-size: 0.875rem; opacity: 0.7; } @media (max-width: 640px) { .costs-scroll { "
            "display: block; } }</style><div class='costs-scroll'>The table has ten columns: scroll it "
            "sideways to see them all.</div>"
        )
        st.container(key="costs").table(rows, hide_index=True)
