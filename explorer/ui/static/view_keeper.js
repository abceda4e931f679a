// Keeps a Plotly chart's zoom and pan when Streamlit replaces the chart (explorer/ui/widgets.py:
// keep_view). Streamlit names a chart by its figure, so a figure changed by another widget (the
// latent map's density contours switched on) is a new chart, drawn at its own axes' ranges: the
// user's zoom was lost. The ranges the user last chose for a view are kept here and given back
// to the new chart of the same view; a double-click (autorange) forgets them.
const saved = new Map();  // view -> {x: [lo, hi], y: [lo, hi]}

function asked(event, axis, before) {
  // a relayout event names a range whole ("xaxis.range") or by its ends ("xaxis.range[0]")
  if (event[axis + ".range"]) return event[axis + ".range"].slice();
  const lo = event[axis + ".range[0]"], hi = event[axis + ".range[1]"];
  return [lo !== undefined ? lo : before[0], hi !== undefined ? hi : before[1]];
}

function attach(gd, view) {
  if (gd.__keptView === view) return;
  gd.__keptView = view;
  const range = saved.get(view);
  if (range) window.Plotly.relayout(gd, { "xaxis.range": range.x, "yaxis.range": range.y });
  gd.on("plotly_relayout", (event) => {
    if (gd.__keptView !== view) return;
    if (event["xaxis.autorange"] || event["yaxis.autorange"]) {
      saved.delete(view);
    } else if (Object.keys(event).some((k) => /^[xy]axis\.range/.test(k))) {
      // the ranges asked for, not those drawn: one scale on both axes widens one of them to the
      // plot's shape, and kept as drawn they grew by 2% at each redraw
      const drawn = gd._fullLayout;
      const last = saved.get(view) || { x: drawn.xaxis.range, y: drawn.yaxis.range };
      const range = { x: asked(event, "xaxis", last.x), y: asked(event, "yaxis", last.y) };
      if ([...range.x, ...range.y].every(Number.isFinite)) saved.set(view, range);
    }
  });
}

export default function (component) {
  const { chart, view } = component.data;
  const find = () => {
    const gd = document.querySelector(`.st-key-${CSS.escape(chart)} .js-plotly-plot`);
    // ready once Plotly has drawn it: its event methods and axes are there
    if (gd && gd.on && gd._fullLayout && gd._fullLayout.xaxis && window.Plotly) attach(gd, view);
  };
  const observer = new MutationObserver(find);
  observer.observe(document.body, { childList: true, subtree: true });
  find();
  return () => observer.disconnect();
}
