"""The paper's Figure 2 reproduction: the bound at log-spaced sample counts, the resumable runner
(on a Frey Face file the test writes), the --json curves and the Paper page."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from explorer.cli import main
from explorer.paper import figure2
from explorer.paper.curves import read_bound_points, value_at, write_curves
from explorer.paper.figures import gap_sentence, ordering_sentence
from explorer.train.bounds import log_spaced_count, next_index
from tests.apptest import charts


def test_counts_are_log_spaced_with_the_asked_points_per_decade():
    for per_decade in (8, 10):
        counts = [log_spaced_count(k, per_decade) for k in range(3 * per_decade, 8 * per_decade + 1)]
        assert counts[0] == 1000 and counts[-1] == 10**8
        decade = [c for c in counts if 10**5 <= c < 10**6]
        assert len(decade) == per_decade
        ratios = np.diff(np.log10(counts))
        assert np.allclose(ratios, 1 / per_decade, atol=2e-3)
    assert log_spaced_count(next_index(0, 8), 8) == 10_000  # the first point
    assert log_spaced_count(next_index(10_000, 8), 8) == 13_335  # strictly above what was reached


def _write_frey(path, seed=0):
    from scipy.io import savemat

    rng = np.random.default_rng(seed)
    base = rng.integers(40, 200, (1, 28, 20))  # a face-like mean with noise around it
    frames = np.clip(base + rng.normal(0, 20, (1965, 28, 20)), 0, 255).astype(np.uint8)
    savemat(path, {"ff": frames.reshape(1965, -1).T})


@pytest.fixture
def frey(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_EXPLORER_DATA", str(tmp_path / "cache"))
    _write_frey(tmp_path / "frey_rawface.mat")
    monkeypatch.setenv("VAE_EXPLORER_FREY_MAT", str(tmp_path / "frey_rawface.mat"))
    monkeypatch.setattr(figure2, "TRIAL_SAMPLES", 1_000)  # "the first few iterations", shortened
    monkeypatch.setattr("explorer.train.bounds.FIRST_COUNT", 1_000)  # points from 10^3 samples on
    monkeypatch.setattr(figure2, "BOUND_TRAIN_IMAGES", 300)
    monkeypatch.setattr(figure2, "HIDDEN", {**figure2.HIDDEN, "frey-face": 16})
    return tmp_path


def test_a_frey_face_panel_runs_resumes_and_prints_its_curves(frey, capsys):
    root = frey / "runs"
    lines = []
    repro = figure2.Reproduction(root, samples=4_000, device="cpu", say=lines.append, progress=False)
    pair = figure2.panels("frey-face", (2,))
    assert [p.algorithm for p in pair] == ["aevb", "wake-sleep"]
    for panel in pair:
        assert repro.run(panel)
    choice = json.loads((root / "frey-face-nz2-aevb.json").read_text())
    assert choice["lr"] in figure2.STEP_SIZES and set(choice["train_bound_by_lr"]) == {"0.01", "0.02", "0.1"}
    folder = repro.folder(pair[0], choice["lr"])
    config = json.loads((folder / "config.json").read_text())
    assert config["model"]["hidden"] == [16] and config["model"]["activation"] == "tanh"
    assert config["model"]["likelihood"] == "gaussian" and config["train"]["init"] == "paper"
    assert config["train"]["optimizer"] == "adagrad" and config["train"]["weight_decay"] == pytest.approx(
        1 / 1765
    )
    first = read_bound_points(folder / "metrics.jsonl")
    assert first[-1][0] >= 4_000 and all(math.isfinite(v) for p in first for v in p)
    # The curve reaches the run's end (it stopped at the last log-spaced count before it)
    assert first[-1][0] == config["step"] * figure2.BATCH

    # A longer target continues the same runs: no trial again, the points go on without repeats.
    more = figure2.Reproduction(root, samples=9_000, device="cpu", say=lines.append, progress=False)
    for panel in pair:
        assert more.run(panel)
    points = read_bound_points(folder / "metrics.jsonl")
    samples = [p[0] for p in points]
    assert samples == sorted(set(samples)) and samples[-1] >= 9_000 and points[: len(first)] == first
    assert samples[-1] == json.loads((folder / "config.json").read_text())["step"] * figure2.BATCH
    assert sum("trying" in line for line in lines) == 6  # three step sizes per algorithm, once

    assert main(["paper", "figure2", "--dataset", "frey-face", "--json", "--runs", str(root)]) == 0
    curves = json.loads(capsys.readouterr().out)
    mine = [c for c in curves if c["source"] != "shipped"]
    # a run of one's own says what its bound points took, so that its cost counts training alone
    assert all(0 < c["bound_seconds"] < c["seconds"] for c in mine)
    assert {(c["dataset"], c["nz"], c["algorithm"]) for c in mine} == {
        ("frey-face", 2, "aevb"), ("frey-face", 2, "wake-sleep")}  # fmt: skip
    for c in curves:
        assert {"dataset", "nz", "algorithm", "points"} <= set(c)
        assert all(len(p) == 3 and isinstance(p[0], int) for p in c["points"])
        assert c["columns"] == ["samples", "train_bound_nats", "test_bound_nats"]  # named in the output
    panels = [(c["dataset"], c["nz"], c["algorithm"]) for c in curves]
    assert panels == sorted(panels), panels  # by panel (N_z as a number: 3 before 10), then algorithm


def test_the_shipped_curves_follow_the_schema():
    path = figure2_path = __import__("explorer.paper.curves", fromlist=["x"]).shipped_path("figure2")
    if not path.exists():
        pytest.skip(f"no shipped curves at {figure2_path}")
    curves = json.loads(path.read_text())
    for c in curves:
        assert c["dataset"] in figure2.DATASETS and c["nz"] in figure2.DATASETS[c["dataset"]]
        assert c["algorithm"] in figure2.ALGORITHMS and c["lr"] in figure2.STEP_SIZES
        xs = [p[0] for p in c["points"]]
        assert xs == sorted(xs) and xs[-1] >= 10**5


def test_the_gap_sentence_reads_the_test_bounds_at_a_million_and_at_the_end():
    a = {"dataset": "mnist", "nz": 3, "algorithm": "aevb", "source": "shipped",
         "points": [[10**5, -150, -152], [10**6, -130, -131], [10**7, -120, -121]]}  # fmt: skip
    w = {"dataset": "mnist", "nz": 3, "algorithm": "wake-sleep", "source": "shipped",
         "points": [[10**5, -160, -161], [10**6, -140, -143.5], [10**7, -126, -127]]}  # fmt: skip
    text = gap_sentence([a, w], "mnist", 3)
    assert "+12.5 nats at 10^6" in text and "+6.0 nats at 10^7" in text and "above" in text
    assert value_at(a["points"], 10**5.5, 2) == pytest.approx(-141.5)
    assert "no Wake-Sleep curve" in gap_sentence([a], "mnist", 3)


def test_the_paper_page_draws_every_panel_with_its_sentence(tmp_path, monkeypatch):
    from tests.apptest import page

    monkeypatch.setenv("VAE_EXPLORER_PRETRAINED", str(tmp_path / "pretrained"))
    monkeypatch.setenv("VAE_EXPLORER_RUNS", str(tmp_path / "runs"))
    curves = []
    for nz in figure2.DATASETS["mnist"]:
        for alg, shift in (("aevb", 0.0), ("wake-sleep", -5.0)):
            pts = [[10**k, -140 + 5 * k + shift, -141 + 5 * k + shift] for k in range(5, 8)]
            curves.append({"dataset": "mnist", "nz": nz, "algorithm": alg, "points": pts, "lr": 0.02,
                           "seconds": 600.0})  # fmt: skip
    write_curves(tmp_path / "pretrained" / "paper" / "figure2.json", curves)
    at = page("pages/9_Paper.py").run()
    assert not at.exception
    chart = json.loads(charts(at)[0].proto.spec)
    assert len([k for k in chart["layout"] if k.startswith("xaxis")]) == 5  # one panel per N_z
    assert all(chart["layout"][k]["type"] == "log" for k in chart["layout"] if k.startswith("xaxis"))
    text = " ".join(m.value for m in at.markdown)
    for nz in figure2.DATASETS["mnist"]:
        assert f"N_z = {nz}: AEVB's test bound is above wake-sleep's: +5.0 nats at 10^6" in text
    assert "20-40 minutes per million" in " ".join(c.value for c in at.caption)
    assert "No frey-face curves yet" in " ".join(i.value for i in at.info)
    costs = at.table[0].value  # a static table (a data grid: 0.1-0.2 s of every visit)
    # MNIST's Figure 2 trains on its classic 50,000 images
    assert set(costs["N_train"]) == {"50,000"} and len(costs) == 10
    # minutes to a tenth (st.table wrote 6.4000) and the step size as given; on a phone a line
    # says the table scrolls (its right-hand columns looked cut off)
    assert set(costs["minutes per 10^6 samples"]) == {"1.0"} and set(costs["Adagrad step size"]) == {"0.02"}
    # a shipped curve's wall time holds its bound points' estimates too, and the table says so
    assert set(costs["time counted"]) == {"training and its bound points"}
    assert any("scroll it sideways" in h.proto.body for h in at.get("html"))


@pytest.mark.integration
def test_evaluate_sets_the_papers_estimator_beside_l_k(capsys):
    """`evaluate --estimator paper-hmc` reports Appendix D's log p(x) on the same images as L_K; on
    mnist-z2 the two agree to within a few nats per image on average (bench/README.md)."""
    assert (
        main(["evaluate", "mnist-z2", "--k", "500", "--limit", "8", "--estimator", "paper-hmc", "--json"])
        == 0
    )
    figures = json.loads(capsys.readouterr().out)
    paper = figures["paper_hmc"]
    assert paper["n"] == 8 and paper["se"] > 0 and paper["seconds"] > 0
    assert abs(paper["log_likelihood"] - figures["log_likelihood"]) < 5, (paper, figures["log_likelihood"])
    assert main(["evaluate", "mnist-ae-z2", "--k", "0", "--limit", "2", "--estimator", "paper-hmc"]) == 1
    assert "autoencoder has no p(z)" in capsys.readouterr().err


def test_figure3_ranks_its_curves_where_all_of_them_reached():
    """A curve that ran ten times longer is not ranked by its later value: the panel's order is
    at the last count every curve reached, and the longer curves' ends follow it."""
    from explorer.paper.figures import ordering_sentence

    def curve(algorithm, points):
        return {"n_train": 50_000, "algorithm": algorithm, "points": points}

    curves = [
        curve("aevb", [[10_000, -180, -180], [1_000_000, -140, -141], [10_000_000, -128, -129]]),
        curve("mcem", [[10_000, -170, -170], [1_000_000, -138, -139]]),  # ahead at 10^6
    ]
    said = ordering_sentence(curves, 50_000)
    assert "at 10^6 samples" in said
    first, rest = said.split("Further on:")
    assert first.index("MCEM") < first.index("AEVB") and "-139.0" in first and "-141.0" in first
    assert "AEVB -129.0 at 10^7" in rest


def test_figure2_shows_every_point_and_marks_the_papers_axes():
    """Figure 2 on the shipped curves (N_z = 200's wake-sleep curve starts at -660 nats, far below
    the paper's -150): the x-axis holds every sample count, the y-axis every point from the
    paper's 10^5 samples on, each earlier point under it is a triangle at the axis' foot at its
    own sample count, every panel shades the paper's axes, and the caption says so."""
    import math

    from explorer.paper.curves import read_curves, shipped_path
    from explorer.paper.figures import X_RANGE, Y_RANGE, axes_sentence
    from explorer.paper.figures import figure2 as draw

    curves = [c for c in read_curves(shipped_path("figure2")) if c["dataset"] == "mnist"]
    sizes = figure2.DATASETS["mnist"]
    fig = draw(curves, "mnist", sizes).to_dict()
    layout = fig["layout"]
    x0, x1 = layout["xaxis"]["range"]
    y0, y1 = layout["yaxis"]["range"]
    points = [(p[0], v) for c in curves for p in c["points"] for v in (p[1], p[2])]
    assert all(x0 <= math.log10(x) <= x1 for x, _ in points)
    assert all(y0 <= v <= y1 for x, v in points if x >= X_RANGE[0])
    assert y0 <= Y_RANGE["mnist"][0] and y1 >= Y_RANGE["mnist"][1]
    lines = [t for t in fig["data"] if t.get("mode") != "markers"]
    feet = [t for t in fig["data"] if t.get("mode") == "markers"]
    for line in lines:  # each point under the axis has its triangle, in the same panel, named
        under = sorted(x for x, y in zip(line["x"], line["y"]) if y is not None and y < y0)
        drawn = [
            (x, y, value, colour)
            for t in feet
            if t.get("xaxis", "x") == line.get("xaxis", "x")
            for x, y, (value, name), colour in zip(t["x"], t["y"], t["customdata"], t["marker"]["color"])
            if name == line["name"]
        ]
        assert under == sorted(x for x, _, _, _ in drawn)
        assert all(y == y0 and colour == line["line"]["color"] for _, y, _, colour in drawn)
        assert sorted(v for _, _, v, _ in drawn) == sorted(y for y in line["y"] if y is not None and y < y0)
    assert any(feet) and all(t["marker"]["symbol"] == "triangle-down" for t in feet)
    assert len({t.get("xaxis", "x") for t in feet}) == len(feet)  # one trace of triangles a panel
    boxes = [s for s in layout["shapes"] if s["type"] == "rect"]
    assert len(boxes) == len(sizes) and {(b["y0"], b["y1"]) for b in boxes} == {Y_RANGE["mnist"]}
    lowest = min(v for _, v in points)
    text = axes_sentence(curves, "mnist", sizes)
    assert "shaded box" in text and f"{lowest:.1f} nats (N_z = 200, Wake-Sleep" in text


def test_the_paper_page_reads_the_curves_again_when_a_run_grows(tmp_path, monkeypatch):
    """The curves' cache took the files' stamps as ``_stamps``, which Streamlit leaves out of the
    key: the page kept the first visit's curves (no run of one's own, or one stopped short) until
    the server restarted."""
    from explorer.ui import paper

    read = []
    monkeypatch.setattr(paper, "read_curves", lambda path: [])
    monkeypatch.setattr(paper.Reproduction, "curves", lambda self: read.append(1) or [{"points": len(read)}])
    runs = tmp_path / "figure2"
    (runs / "mnist-nz3-aevb").mkdir(parents=True)
    metrics = runs / "mnist-nz3-aevb" / "metrics.jsonl"
    metrics.write_text("{}\n")
    first = paper._curves(str(tmp_path / "none.json"), str(runs), paper._stamp([metrics]))
    again = paper._curves(str(tmp_path / "none.json"), str(runs), paper._stamp([metrics]))
    assert first == again and len(read) == 1  # unchanged files: read once
    with metrics.open("a") as f:
        f.write('{"type": "bound"}\n')  # the run went on
    grown = paper._curves(str(tmp_path / "none.json"), str(runs), paper._stamp([metrics]))
    assert len(read) == 2 and grown != first


def test_the_readmes_one_run_command_has_figure_2s_settings():
    """The README's "one run" on the paper's settings left out the weight decay (1/N) and the
    50,000 training images that `paper figure2` uses and the Paper page says it follows."""
    import re
    import shlex
    from dataclasses import asdict
    from pathlib import Path

    from explorer.cli import build_parser
    from explorer.cli.train import _given
    from explorer.config import MODEL_SETTINGS, TRAIN_SETTINGS

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    found = re.search(r"^(vae-explorer train --algorithm wake-sleep .*?)#", readme, re.S | re.M)
    args = build_parser().parse_args(shlex.split(found.group(1).replace("\\\n", " "))[1:])
    model, train = figure2.configs(figure2.panels("mnist", (20,))[1], args.lr, 10**7)
    model_given, train_given = _given(args, MODEL_SETTINGS), _given(args, TRAIN_SETTINGS)
    assert model_given.items() <= {**asdict(model), "hidden": tuple(model.hidden)}.items()
    differ = {k: (v, getattr(train, k)) for k, v in train_given.items() if getattr(train, k) != v}
    assert not differ, differ
    assert {"weight_decay", "limit", "algorithm", "init", "optimizer", "bound_points"} <= set(train_given)


@pytest.mark.integration
def test_ones_own_reproduction_models_are_offered_on_the_pages(tmp_path, monkeypatch):
    """The picker listed runs/NAME only: the models `paper figure2` trains (runs/paper/figure2/...)
    could not be explored, and their address fell back to another model."""
    from explorer.checkpoints import save_checkpoint
    from explorer.model import VAE, ModelConfig
    from explorer.ui.models import choices
    from tests.apptest import page

    monkeypatch.setenv("VAE_EXPLORER_RUNS", str(tmp_path / "runs"))
    root = tmp_path / "runs" / "paper" / "figure2"
    model = VAE(ModelConfig(latent_dim=3, hidden=(16,), activation="tanh"))
    for lr in (0.01, 0.02, 0.1):  # the three trials; 0.02 chosen and trained on
        save_checkpoint(
            root / f"mnist-nz3-aevb-lr{lr:g}", model, epoch=1, step=1, train_config={"dataset": "mnist"}
        )
    (root / "mnist-nz3-aevb.json").write_text(json.dumps({"lr": 0.02}))
    chosen = "runs/paper/figure2/mnist-nz3-aevb-lr0.02"
    assert [c for c in choices() if c.startswith("runs/")] == [chosen]  # the trials left behind are not
    at = page()
    at.query_params["model"] = chosen
    at.run()
    assert not at.exception and not [w for w in at.warning if "There is no model" in w.value]
    assert at.sidebar.selectbox[0].value == chosen


def test_a_diverging_trial_step_size_is_said_without_advice_the_command_cannot_take(tmp_path, monkeypatch):
    """A trial at 0.1 that diverged printed "Lower the learning rate (--lr; it is 0.1)", a flag
    `paper figure2` does not have: the step sizes are the paper's three, and a diverging one loses."""
    from explorer.errors import ExplorerError

    def train(self, panel, lr, samples):
        if lr == 0.1:
            raise ExplorerError("training diverged at step 40 (loss nan); no checkpoint was kept. Lower the "
                                "learning rate (--lr; it is 0.1), or use --estimator analytic.")  # fmt: skip
        return True

    monkeypatch.setattr(figure2.Reproduction, "_train", train)
    monkeypatch.setattr(
        figure2, "read_bound_points", lambda path: [[1000, -150.0 - ("0.01" in str(path)), -151.0]]
    )
    lines = []
    repro = figure2.Reproduction(tmp_path, samples=10_000, say=lines.append, progress=False)
    assert repro.step_size(figure2.panels("mnist", (3,))[0]) == 0.02
    said = "\n".join(lines)
    assert "step size 0.1 failed, and loses the trial: training diverged at step 40 (loss nan)" in said
    assert "--lr" not in said


def test_figure3_json_names_its_points_as_log_likelihoods_and_its_panel(capsys, tmp_path):
    """`paper figure3 --json` called its Appendix D log p(x) estimates "train_bound_nats" and left
    out the dataset and N_z its README schema names."""
    assert main(["paper", "figure3", "--json", "--runs", str(tmp_path)]) == 0
    curves = json.loads(capsys.readouterr().out)
    named = ["samples", "train_log_px_nats", "test_log_px_nats"]
    assert curves and all(c["columns"] == named for c in curves)
    assert all(c["dataset"] == "mnist" and c["nz"] == 3 and "n_train" in c for c in curves)
    assert main(["paper", "figure2", "--json", "--runs", str(tmp_path)]) == 0
    bounds = ["samples", "train_bound_nats", "test_bound_nats"]
    assert json.loads(capsys.readouterr().out)[0]["columns"] == bounds


def test_figure3s_sentence_keeps_the_shipped_comparison_and_names_ones_own_runs():
    """A short run of one's own (to 5.6x10^4 samples) moved the shipped curves' comparison from
    10^6 down to its own end, and was listed among them unnamed ("MCEM -143.4; MCEM -144.4")."""
    shipped = [{"n_train": 1000, "algorithm": a, "source": "shipped",
                "points": [[10**4, -150.0 + k, -151.0 + k], [10**6, -120.0 + k, -125.0 + k]]}
               for k, a in enumerate(("aevb", "mcem"))]  # fmt: skip
    mine = {"n_train": 1000, "algorithm": "mcem", "source": "runs/paper/figure3/x",
            "points": [[10**4, -149.0, -150.0], [56_234, -140.0, -143.4]]}  # fmt: skip
    said = ordering_sentence([*shipped, mine], 1000)
    assert said.startswith("N_train = 1,000: test log-likelihood at 10^6 samples")
    assert "best first: MCEM -124.0; AEVB -125.0." in said  # the shipped pair alone, at 10^6
    assert said.endswith(" Yours: MCEM -143.4 at 5.6x10^4.") and said.count("-143.4") == 1
