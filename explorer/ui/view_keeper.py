"""A chart's zoom and pan kept across Streamlit's redraws.

Streamlit identifies a chart by its figure (``plotly_chart`` with ``key_as_main_identity=False``
in Streamlit 1.67): a figure that another widget changes, such as the latent map when its density
contours are switched on, arrives as a new chart, drawn at the figure's own axis ranges, and the
user's zoom was lost (x from [-2.85, 2.45] back to [-5.50, 5.09] on mnist-z2). A click keeps the
figure as it was, so it never met this. ``keep_view`` runs a few lines of JavaScript beside the
chart (``static/view_keeper.js``) that remember the ranges the user last chose for a view and
give them back to the next chart of the same view; a double-click on the chart (autoscale)
forgets them, and another view (another model, map or number of dots) starts at its own ranges.
"""

from __future__ import annotations

from importlib import resources

import streamlit as st

STATIC = resources.files("explorer.ui") / "static"
_component = st.components.v2.component(
    "vae_explorer.view_keeper",
    js=(STATIC / "view_keeper.js").read_text(encoding="utf-8"),
    isolate_styles=False,
)


def keep_view(where, chart_key: str, view: str) -> None:
    """Keep the zoom and pan of the chart keyed ``chart_key`` across its redraws while ``view``
    (a string naming what the chart's axes show, e.g. model, map and dot count) stays the same.
    ``where``: the container to mount the (invisible) keeper in; it takes no room."""
    box = where.container(key=f"{chart_key}-view-keeper", height=1, border=False)
    # hidden with its wrapper, which would leave a gap under the chart
    box.html(
        f"<style>div:has(> .st-key-{chart_key}-view-keeper), .st-key-{chart_key}-view-keeper "
        "{ display: none; }</style>"
    )
    with box:
        _component(data={"chart": chart_key, "view": view}, key=f"{chart_key}-view")
