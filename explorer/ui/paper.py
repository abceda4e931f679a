"""The Paper page's Streamlit parts: the curves it draws (cached on their files), the panels of
one figure with the sentence under each, and what our reproduction does differently."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from explorer.paper.curves import read_curves, shipped_path
from explorer.paper.figure2 import DATASETS, PAPER_MINUTES_PER_MILLION, Reproduction
from explorer.paper.figures import figure2, gap_sentence
from explorer.train.runfolder import runs_root


def _stamp(paths: list[Path]) -> tuple:
    return tuple((str(p), p.stat().st_mtime) for p in paths if p.exists())


@st.cache_data(show_spinner=False, max_entries=8)
def _curves(shipped: str, runs: str, _stamps: tuple) -> list[dict]:
    mine = Reproduction(Path(runs), samples=0).curves()
    return [{**c, "source": "shipped"} for c in read_curves(Path(shipped))] + mine


def figure2_curves() -> list[dict]:
    """Shipped Figure 2 curves and the user's own (``vae-explorer paper figure2`` runs)."""
    shipped, runs = shipped_path("figure2"), runs_root() / "paper" / "figure2"
    files = [shipped, *sorted(runs.glob("*/metrics.jsonl"))] if runs.is_dir() else [shipped]
    return _curves(str(shipped), str(runs), _stamp(files))


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
    st.plotly_chart(figure2(curves, dataset, sizes), use_container_width=True, key=f"figure2-{dataset}")
    st.markdown("\n".join(f"- {gap_sentence(curves, dataset, n)}" for n in sizes))


def cost_table(curves: list[dict]) -> None:
    """Training time per million samples of each curve, beside the paper's 20-40 minutes."""
    rows = []
    for c in curves:
        last = c["points"][-1][0] if c["points"] else 0
        if c.get("seconds") and last:
            minutes = c["seconds"] / 60 / (last / 1e6)
            rows.append({"dataset": c["dataset"], "N_z": c["nz"], "algorithm": c["algorithm"],
                         "samples reached": f"{last:,}", "minutes per 10^6 samples": round(minutes, 1),
                         "Adagrad step size": c.get("lr"), "curve": c.get("source")})  # fmt: skip
    if rows:
        lo, hi = PAPER_MINUTES_PER_MILLION
        st.caption(f"The paper: {lo}-{hi} minutes per million training samples on a 40 GFLOPS Xeon. Ours:")
        st.dataframe(rows, hide_index=True, use_container_width=True)
