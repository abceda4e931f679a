"""Every page through Streamlit's AppTest, on small models and the real MNIST test set."""

import io
import json
import time
from pathlib import Path

import pytest
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest

from explorer.checkpoints import save_checkpoint
from explorer.model import VAE, ModelConfig

ROOT = Path(__file__).resolve().parent.parent
PAGE_FILES = ("app.py", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "pages").glob("*.py")))
pytestmark = pytest.mark.integration


def page(name: str = "app.py") -> AppTest:
    """A session of the app (entry script app.py, as under `streamlit run`) opened on ``name``."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    return at if name == "app.py" else at.switch_page(name)


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    """Two small 'shipped' models in a temporary pretrained/ folder, and an empty runs/."""
    for name, z in (("mnist-z2", 2), ("mnist-z5", 5)):
        torch.manual_seed(0)
        save_checkpoint(
            tmp_path / "pretrained" / name,
            VAE(ModelConfig(hidden=(32,), latent_dim=z)),
            epoch=3,
            step=30,
            train_config={"dataset": "mnist"},
            best_test_elbo=-150.25,
        )
    monkeypatch.setenv("VAE_EXPLORER_PRETRAINED", str(tmp_path / "pretrained"))
    monkeypatch.setenv("VAE_EXPLORER_RUNS", str(tmp_path / "runs"))
    return tmp_path


def test_home_shows_card_explains_and_links(shipped):
    at = page().run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert "Dataset **mnist** &nbsp;·&nbsp; latent size **2**" in [m.value for m in at.markdown]
    assert metrics["Test ELBO (nats)"] == "-150.25" and metrics["Test NLL (nats)"] == "n/a"
    assert len(at.get("latex")) == 2  # the ELBO and the reparameterisation
    links = [p.proto.page for p in at.main.get("page_link")]
    assert links == ["Train", "Latent_space", "Manifold", "Reconstruct", "Draw", "Interpolate"], links
    assert at.get("image")[0].proto.imgs[0].url.endswith(".png")


def test_model_choice_is_shared_by_pages(shipped):
    at = page().run()
    at.sidebar.selectbox[0].select("mnist-z5").run()
    assert any("latent size **5**" in m.value for m in at.markdown)
    assert any("5 dimensions" in m.value for m in at.markdown)  # the wording follows the model
    at.switch_page("pages/3_Manifold.py").run()
    assert not at.exception
    assert at.sidebar.selectbox[0].value == "mnist-z5"
    assert live_data(at)[0]["dims"] == 5  # one slider per dimension, in the browser


def test_card_json_figures_are_shown(shipped):
    card = {
        "epochs": 300,
        "hardware": "test machine, 2 cores; epochs 1-90 with 1 thread",
        "evaluation": {"elbo": -130.5, "nll": 126.75, "k": 5000, "n": 10000},
        "target": {"nll": 127},
    }
    (shipped / "pretrained" / "mnist-z2" / "card.json").write_text(__import__("json").dumps(card))
    at = page().run()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Test NLL, K=5000 (nats)"] == "126.75" and metrics["Test ELBO (nats)"] == "-130.50"
    note = next(
        c.value
        for c in at.caption
        if c.value.startswith("Measured on 10,000 test images; NLL with K = 5,000")
    )
    assert "Target: NLL <= 127 nats (met)." in note
    assert (
        "on test machine, 2 cores. Target" in note and "1 thread" not in note
    )  # the details stay in the card
    card["target"] = {"nll": 125}
    (shipped / "pretrained" / "mnist-z2" / "card.json").write_text(__import__("json").dumps(card))
    at = page().run()
    assert any("Target: NLL <= 125 nats (not met, 1.8 nats short)." in c.value for c in at.caption)


def test_broken_model_gives_a_message_not_a_traceback(shipped):
    (shipped / "pretrained" / "mnist-z2" / "model.safetensors").write_bytes(b"\x08" + b"\x00" * 7 + b"{")
    for name in [p for p in PAGE_FILES if "Train" not in p]:  # Train loads no model
        at = page(name).run()
        assert not at.exception, name
        assert "truncated or corrupted" in at.error[0].value, name


def test_no_models_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_EXPLORER_PRETRAINED", str(tmp_path))
    monkeypatch.setenv("VAE_EXPLORER_RUNS", str(tmp_path / "runs"))
    at = page().run()
    assert not at.exception
    assert "Train page" in at.sidebar.error[0].value


def test_latent_space_shows_clicked_point(shipped, mnist_test):
    at = page("pages/2_Latent_space.py").run()
    assert not at.exception
    assert "Click a point" in at.info[0].value
    # Only the open tab ran: the prior map (seconds to compute) waits until its tab is opened.
    assert [c.key for c in at.get("plotly_chart")] == ["scatter"]
    at.session_state["picked"] = ("mnist-z2", 3)  # what a click on test image 3 stores
    at.run()
    assert at.subheader[0].value == "Test image #3"
    assert f"Label: **{int(mnist_test.labels[3])}**" in [m.value for m in at.markdown]
    assert any(m.value.startswith("q(z|x): mean (") for m in at.markdown)


def test_latent_space_projects_higher_dimensions(shipped):
    at = page("pages/2_Latent_space.py")
    at.session_state["model"] = "mnist-z5"
    at.run()
    assert not at.exception
    assert "first two principal components" in at.info[0].value and "%" in at.info[0].value


def live_data(at) -> tuple[dict, list]:
    """The header and arrays the Manifold page hands to its in-browser decoder."""
    from explorer.ui.live import unpack

    return unpack(at.get("bidi_component")[0].proto.bytes)


def numpy_decode(data: tuple[dict, list], z):
    """What the browser computes from that data (the same steps as its JavaScript)."""
    import numpy as np

    header, arrays = data
    h = np.asarray(z, dtype=np.float32)
    for i, layer in enumerate(header["layers"]):
        w = arrays[2 * i].reshape(layer["m"], layer["n"])
        h = w @ h + arrays[2 * i + 1]
        if i < len(header["layers"]) - 1:
            h = np.maximum(h, 0) if header["act"] == "relu" else np.tanh(h)
    return 1 / (1 + np.exp(-h[: header["pixels"]]))


@pytest.mark.parametrize("name", ["mnist-z2", "mnist-z5"])
def test_manifold_hands_the_decoder_to_the_browser(shipped, name):
    import numpy as np

    from explorer.checkpoints import load_checkpoint

    at = page("pages/3_Manifold.py")
    at.session_state["model"] = name
    at.run()
    assert not at.exception
    data = live_data(at)
    header = data[0]
    model = load_checkpoint(shipped / "pretrained" / name)
    dims = model.config.latent_dim
    assert header["dims"] == dims and header["shape"] == [28, 28] and header["pixels"] == 784
    assert len(header["mean"]) == dims and len(header["components"]) == 2 * dims
    z = np.linspace(-1.5, 2.0, dims).astype(np.float32)
    with torch.no_grad():
        expected = model.decode(torch.from_numpy(z)[None]).mean.flatten().numpy()
    assert np.abs(numpy_decode(data, z) - expected).max() < 1e-5
    assert header["map_png"].startswith("data:image/png;base64,")


def _grid(at) -> dict:
    return _spec(next(c for c in at.get("plotly_chart") if c.key == "grid"))


def test_manifold_grid_follows_the_sidebar(shipped):
    at = page("pages/3_Manifold.py").run()
    assert not at.exception
    before = _grid(at)["data"][0]["source"]
    at.sidebar.slider[0].set_value(10).run()
    assert "10 x 10 grid, z1 across, z2 up" in [c.value.split(";")[0] for c in at.caption]
    grid = _grid(at)
    assert grid["data"][0]["source"] != before
    # the z of the tiles on the axes: the first tile sits at the inverse Gaussian CDF of 0.05
    assert grid["layout"]["xaxis"]["ticktext"][0] == f"{torch.special.ndtri(torch.tensor(0.05)).item():.2f}"
    assert grid["layout"]["yaxis"]["ticktext"][-1] == grid["layout"]["xaxis"]["ticktext"][0]  # z2 up
    assert len(live_data(at)[0]["grid"]) == 4  # the grid's outline on the live map
    at.sidebar.slider[1].set_value((0.5, 0.5)).run()
    assert "low end must be below" in at.error[0].value


def test_manifold_of_a_wide_model_starts_on_its_most_active_dimensions(shipped):
    """mnist-z5: the grid's default axes are the two dimensions with the largest KL (not z1 and
    z2), the sliders of inactive units say so, and the same dimension on both axes is explained."""
    from explorer.checkpoints import load_checkpoint
    from explorer.data import load_dataset
    from explorer.evaluate import ACTIVE_UNIT_THRESHOLD, latent_stats

    model = load_checkpoint(shipped / "pretrained" / "mnist-z5")
    variance, kl = latent_stats(model, load_dataset("mnist", "test").images.float() / 255.0)
    first, second = torch.argsort(kl, descending=True)[:2].tolist()
    at = page("pages/3_Manifold.py")
    at.session_state["model"] = "mnist-z5"
    at.run()
    assert not at.exception
    axes = at.sidebar.selectbox
    assert (axes[1].value, axes[2].value) == (first, second)
    assert f"z{first + 1} across, z{second + 1} up" in " ".join(c.value for c in at.caption)
    assert live_data(at)[0]["inactive"] == [v <= ACTIVE_UNIT_THRESHOLD for v in variance.tolist()]
    axes[2].select(first).run()
    assert f"Both axes are z{first + 1}" in at.warning[0].value
    assert not [c for c in at.get("plotly_chart") if c.key == "grid"]


def _gallery(at) -> list[tuple[int, str, float]]:
    """(test index, label, ELBO) under each test image of the Reconstruct page."""
    out = []
    for image in at.get("image"):
        caption = image.proto.imgs[0].caption
        if caption.startswith("#"):
            index, label, elbo = caption.split(" · ")
            out.append((int(index[1:]), label, float(elbo.split()[1])))
    return out


def test_reconstruct_modes(shipped, mnist_test):
    at = page("pages/4_Reconstruct.py").run()
    assert not at.exception
    at.sidebar.radio[0].set_value("worst ELBO").run()
    shown = _gallery(at)
    assert len(shown) == 8 and [e for *_, e in shown] == sorted(e for *_, e in shown)  # each under its image
    at.sidebar.radio[0].set_value("by label").run()
    at.sidebar.selectbox[1].select(3).run()
    assert {label for _, label, _ in _gallery(at)} == {"3"}
    assert at.get("download_button")


def test_an_upload_added_twice_is_shown_once(shipped, mnist_test):
    digit = _png(Image.fromarray(mnist_test.images[0, 0].numpy()))
    at = page("pages/4_Reconstruct.py").run()
    at.file_uploader[0].set_value([("a.png", digit, "image/png"), ("b.png", digit, "image/png")]).run()
    assert not at.exception
    assert len([m for m in at.markdown if m.value.startswith("ELBO **")]) == 1
    assert "b.png is the same file as a.png" in at.info[0].value


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def test_uploads_good_and_bad(shipped):
    digit = Image.new("L", (80, 100), 255)
    digit.paste(0, (35, 10, 45, 90))
    at = page("pages/4_Reconstruct.py").run()
    at.file_uploader[0].set_value(
        [
            ("one.png", _png(digit), "image/png"),
            ("blank.png", _png(Image.new("L", (30, 30), 255)), "image/png"),
            ("junk.png", b"not an image at all", "image/png"),
        ]
    ).run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert any(e.startswith("blank.png: the image is blank") for e in errors)
    assert any(e.startswith("junk.png: ") and "accepted format" in e for e in errors)
    assert any(i.proto.imgs[0].caption.startswith("one.png: input") for i in at.get("image"))
    assert any(m.value.startswith("ELBO **") for m in at.markdown)
    assert len(at.get("plotly_chart")) == 1  # one map, with the readable upload on it


def test_upload_count_is_limited(shipped):
    from explorer.reading import MAX_UPLOADS

    files = []
    for i in range(MAX_UPLOADS + 3):  # bars of different widths: different files
        digit = Image.new("L", (40, 40), 255)
        digit.paste(0, (15, 5, 20 + i % 10, 35 - i // 10))
        files.append((f"d{i}.png", _png(digit), "image/png"))
    at = page("pages/4_Reconstruct.py").run()
    at.file_uploader[0].set_value(files).run()
    assert not at.exception
    assert f"only the first {MAX_UPLOADS} are shown" in at.warning[0].value
    assert "Not shown: d20.png, d21.png, d22.png" in at.warning[0].value
    shown = [i.proto.imgs[0].caption for i in at.get("image") if i.proto.imgs[0].caption.startswith("d")]
    assert len(shown) == MAX_UPLOADS and shown[0].startswith("d0.png:")


def test_train_start_watch_stop(shipped):
    at = page("pages/1_Train.py").run()
    assert "No runs yet" in at.info[0].value
    form = {w.label: w for w in at.number_input}
    form["Epochs"].set_value(50)
    form["Training images (0 = all)"].set_value(2000)
    [t for t in at.text_input if t.label == "Hidden sizes"][0].set_value("32")
    [t for t in at.text_input if t.label == "Run name"][0].set_value("ui-run")
    [s for s in at.selectbox if s.label == "Device"][0].select("cpu")
    [b for b in at.button if b.label == "Start training"][0].click().run()
    assert not at.exception and not at.error
    folder = shipped / "runs" / "ui-run"
    deadline = time.time() + 120
    while time.time() < deadline and not (folder / "metrics.jsonl").exists():
        time.sleep(0.2)
    at.run()
    assert [s for s in at.selectbox if s.label == "Run"][0].value == "ui-run"
    # A second Start of the same run name is refused.
    [t for t in at.text_input if t.label == "Run name"][0].set_value("ui-run")
    [b for b in at.button if b.label == "Start training"][0].click().run()
    assert "already training" in at.error[0].value
    [b for b in at.button if b.label.startswith("Stop")][0].click().run()
    deadline = time.time() + 120
    status = ""
    while time.time() < deadline:
        status = (folder / "status.json").read_text()
        if '"stopped"' in status:
            break
        time.sleep(0.2)
    assert '"stopped"' in status, status
    assert (folder / "model.safetensors").is_file()
    at.run()
    assert any(p.proto.text.startswith("stopped: step") for p in at.get("progress"))
    assert "Training on: single process on cpu" in [c.value for c in at.caption]
    # The stopped run (with its checkpoint) is now in the model picker.
    assert "runs/ui-run" in at.sidebar.selectbox[0].options


def test_a_refused_start_keeps_the_typed_run_name(shipped, monkeypatch):
    import itertools

    import explorer.ui.train_form as train_form

    ticks = itertools.count()  # every suggestion made is a new name, as seconds pass
    monkeypatch.setattr(train_form.time, "strftime", lambda fmt: f"t{next(ticks)}")
    at = page("pages/1_Train.py").run()
    assert [t for t in at.text_input if t.label == "Run name"][0].value == "run-t0"
    [t for t in at.text_input if t.label == "Run name"][0].set_value("mine")
    [t for t in at.text_input if t.label == "Hidden sizes"][0].set_value("lots")
    [b for b in at.button if b.label == "Start training"][0].click().run()
    assert "hidden sizes must be positive widths like 512,512, not 'lots'" in at.error[0].value
    [t for t in at.text_input if t.label == "Hidden sizes"][0].set_value("16")
    form = {w.label: w for w in at.number_input}
    form["Epochs"].set_value(1)
    form["Training images (0 = all)"].set_value(1000)
    [s for s in at.selectbox if s.label == "Device"][0].select("cpu")
    [b for b in at.button if b.label == "Start training"][0].click().run()
    assert not at.error and (shipped / "runs" / "mine").is_dir()  # the name typed once is kept
    at.run()
    fresh = [t for t in at.text_input if t.label == "Run name"][0].value
    assert fresh.startswith("run-t") and fresh != "run-t0"  # then a fresh suggestion
    _wait_for(shipped / "runs" / "mine", "finished")


def test_train_page_trains_on_the_iwae_bound(shipped):
    at = page("pages/1_Train.py").run()
    [s for s in at.selectbox if s.label == "Objective"][0].select("iwae")
    form = {w.label: w for w in at.number_input}
    form["Beta (KL weight)"].set_value(0.5)
    [b for b in at.button if b.label == "Start training"][0].click().run()
    assert "no KL weight: set beta to 1 (not 0.5)" in at.error[0].value
    form = {w.label: w for w in at.number_input}
    form["Beta (KL weight)"].set_value(1.0)
    form["Samples L"].set_value(3)
    form["Epochs"].set_value(1)
    form["Training images (0 = all)"].set_value(1000)
    [t for t in at.text_input if t.label == "Hidden sizes"][0].set_value("16")
    [t for t in at.text_input if t.label == "Run name"][0].set_value("iwae")
    [s for s in at.selectbox if s.label == "Device"][0].select("cpu")
    [b for b in at.button if b.label == "Start training"][0].click().run()
    assert not at.exception and not at.error
    folder = shipped / "runs" / "iwae"
    _wait_for(folder, "finished")
    train = json.loads((folder / "config.json").read_text())["train"]
    assert (train["objective"], train["samples"], train["beta"]) == ("iwae", 3, 1.0)
    at.run()
    assert not at.exception
    names = [t["name"] for c in at.get("plotly_chart") for t in _spec(c)["data"] if "name" in t]
    assert any("L_K" in n for n in names)  # the bound it trained on is drawn


def test_train_page_fine_tunes_a_shipped_model_or_a_run(shipped):
    at = page("pages/1_Train.py").run()
    start = [s for s in at.selectbox if s.label == "Start from"][0]
    assert start.options == ["a new model", "mnist-z2", "mnist-z5"]
    start.select("mnist-z5").run()
    latent = [n for n in at.number_input if n.label == "Latent size"][0]
    hidden = [t for t in at.text_input if t.label == "Hidden sizes"][0]
    assert (latent.value, latent.disabled, hidden.value, hidden.disabled) == (5, True, "32", True)
    [s for s in at.selectbox if s.label == "Start from"][0].select("mnist-z2").run()
    assert [n for n in at.number_input if n.label == "Latent size"][0].value == 2  # follows the choice
    form = {w.label: w for w in at.number_input}
    form["Epochs"].set_value(1)
    form["Training images (0 = all)"].set_value(1000)
    form["Learning rate"].set_value(5e-4)
    form["Samples L"].set_value(2)
    [s for s in at.selectbox if s.label == "Objective"][0].select("iwae")
    [t for t in at.text_input if t.label == "Run name"][0].set_value("tuned")
    [s for s in at.selectbox if s.label == "Device"][0].select("cpu")
    [b for b in at.button if b.label == "Start training"][0].click().run()
    assert not at.exception and not at.error
    folder = shipped / "runs" / "tuned"
    _wait_for(folder, "finished")
    config = json.loads((folder / "config.json").read_text())
    assert (config["model"]["latent_dim"], config["model"]["hidden"]) == (2, [32])
    commands = (folder / "commands.txt").read_text().splitlines()
    assert commands[0] == "# started from the weights of mnist-z2" and "--init-from mnist-z2" in commands[1]
    # A run of one's own is a starting point too, passed by its folder (in a new session: nothing
    # typed before is remembered).
    at = page("pages/1_Train.py").run()
    [s for s in at.selectbox if s.label == "Start from"][0].select("runs/tuned").run()
    assert "Starting from the weights of **runs/tuned**" in at.caption[1].value
    form = {w.label: w for w in at.number_input}  # the form offers the recipe it was trained with
    assert (form["Learning rate"].value, form["Samples L"].value) == (5e-4, 2)
    assert [s for s in at.selectbox if s.label == "Objective"][0].value == "iwae"
    [t for t in at.text_input if t.label == "Run name"][0].set_value("tuned-again")
    [s for s in at.selectbox if s.label == "Device"][0].select("cpu")
    form = {w.label: w for w in at.number_input}
    form["Epochs"].set_value(1)
    form["Training images (0 = all)"].set_value(1000)
    [b for b in at.button if b.label == "Start training"][0].click().run()
    assert not at.exception and not at.error
    again = shipped / "runs" / "tuned-again"
    _wait_for(again, "finished")
    commands = (again / "commands.txt").read_text()
    assert f"--init-from {folder}" in commands and "--objective iwae" in commands


def test_train_page_explains_a_start_point_it_cannot_read(shipped):
    (shipped / "runs" / "broken").mkdir(parents=True)
    (shipped / "runs" / "broken" / "model.safetensors").write_bytes(b"not a checkpoint")
    (shipped / "runs" / "broken" / "config.json").write_text("{not json")
    at = page("pages/1_Train.py").run()
    [s for s in at.selectbox if s.label == "Start from"][0].select("runs/broken").run()
    assert not at.exception
    assert "Cannot start from 'runs/broken'" in at.error[0].value
    assert not [n for n in at.number_input if n.label == "Latent size"][0].disabled  # a new model, then


def _text(path) -> str:
    return path.read_text() if path.exists() else ""


def _wait_for(run, state: str, seconds: float = 120) -> None:
    """Wait until the run's status.json says ``state`` ("finished", "failed"), for at most
    ``seconds``; the assertions that follow say what went wrong if it never does."""
    deadline = time.time() + seconds
    while time.time() < deadline and f'"{state}"' not in _text(run / "status.json"):
        time.sleep(0.2)


def test_failed_training_process_is_reported(shipped, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # make sure no GPU is seen
    at = page("pages/1_Train.py").run()
    [t for t in at.text_input if t.label == "Run name"][0].set_value("no-gpu")
    [s for s in at.selectbox if s.label == "Device"][0].select("cuda")
    [b for b in at.button if b.label == "Start training"][0].click().run()
    assert not at.exception
    assert any("did not start" in e.value and "no CUDA GPU is available" in e.value for e in at.error)
    assert not (shipped / "runs" / "no-gpu").exists()  # a refused start leaves nothing behind


@pytest.mark.parametrize("name", ["../escape", "/tmp/abs", "a/b", "..", ".hidden"])
def test_train_page_refuses_path_traversal(shipped, name):
    at = page("pages/1_Train.py").run()
    [t for t in at.text_input if t.label == "Run name"][0].set_value(name)
    [b for b in at.button if b.label == "Start training"][0].click().run()
    assert not at.exception
    assert "is not allowed" in at.error[0].value
    assert not (shipped / "escape").exists() and not (shipped / "runs" / "a").exists()
    runs = shipped / "runs"
    assert not runs.exists() or not any(runs.iterdir()), "nothing was created"


def _spec(chart) -> dict:
    return __import__("json").loads(chart.proto.spec)


def test_latent_space_shows_the_posterior_of_the_clicked_point(shipped):
    at = page("pages/2_Latent_space.py")
    at.session_state["picked"] = ("mnist-z2", 3)
    at.run()
    assert not at.exception
    names = [t.get("name") for t in _spec(at.get("plotly_chart")[0])["data"]]
    assert "#3: 1 sigma" in names and "#3: 2 sigma" in names and "#3" in names
    caption = [i.proto.imgs[0].caption for i in at.get("image")]
    assert "input | reconstruction | 8 draws z ~ q(z|x), decoded" in caption
    assert any(m.value.startswith("q(z|x): mean (") and "standard deviation" in m.value for m in at.markdown)


@pytest.mark.parametrize("model", ["mnist-z2", "mnist-z5"])
def test_prior_against_aggregate_posterior(shipped, model):
    at = page("pages/2_Latent_space.py")
    at.session_state["model"] = model
    at.session_state["latent-tab"] = "Prior vs aggregate posterior"  # the tab a person opens
    at.run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    dims = int(model[-1])
    assert metrics["Prior mass in holes"].endswith("%")
    assert metrics["Active units"].endswith(f"of {dims}")
    charts = [_spec(c) for c in at.get("plotly_chart")]
    kinds = [[t["type"] for t in spec["data"]] for spec in charts]
    assert ["heatmap", "heatmap", "scatter", "scatter", "scatter"] in kinds  # density, holes, 3 circles
    assert ["bar"] in kinds
    bars = next(s for s in charts if s["data"][0]["type"] == "bar")["data"][0]
    assert bars["x"] == [f"z{j + 1}" for j in range(dims)]
    assert any("principal-component plane" in c.value for c in at.caption) == (dims > 2)


def test_uploads_get_a_percentile_and_strangers_a_warning(mnist_test, monkeypatch, tmp_path):
    """On the shipped mnist-z2: a real test digit is ordinary, a letter is a stranger; both get
    their ELBO percentile and strangeness, with the sentence that says what strangeness is."""
    monkeypatch.setenv("VAE_EXPLORER_RUNS", str(tmp_path / "runs"))
    digit = Image.fromarray(mnist_test.images[0, 0].numpy())
    letter = (Path(__file__).parent / "cases" / "letter-A.png").read_bytes()
    at = page("pages/4_Reconstruct.py").run()
    at.file_uploader[0].set_value(
        [("digit.png", _png(digit), "image/png"), ("letter.png", letter, "image/png")]
    ).run()
    assert not at.exception
    reports = [m.value for m in at.markdown if m.value.startswith("ELBO **")]
    assert len(reports) == 2
    percentiles = [float(r.split("higher than **")[1].split("%")[0]) for r in reports]
    assert percentiles[0] > 5 and percentiles[1] < 10, percentiles
    assert "typical enough" in reports[0] and "**a stranger**" in reports[1], reports
    warnings = [w.value for w in at.warning]
    assert len(warnings) == 1 and "does not look like the training data" in warnings[0]
    assert any("Outlier Exposure" in c.value or "outlier exposure" in c.value for c in at.caption)
    spec = _spec(at.get("plotly_chart")[0])
    assert {"digit.png", "letter.png"} <= {t.get("name") for t in spec["data"]}


def test_draw_page_waits_for_a_drawing(shipped):
    at = page("pages/5_Draw.py").run()
    assert not at.exception and not at.error
    assert "Draw on the black square" in at.info[0].value
    assert len(at.get("plotly_chart")) == 1  # the map the drawing will be placed on
    assert "drawing" not in at.session_state


def test_interpolate_between_test_images_and_a_drawing(shipped, mnist_test):
    at = page("pages/6_Interpolate.py").run()
    assert not at.exception
    assert [r.options for r in at.radio] == [["test image", "upload"]] * 2  # no drawing yet
    strips = [m.value for m in at.markdown if "path," in m.value]
    assert strips == ["**Linear** path, 10 steps", "**Spherical** path, 10 steps"]
    downloads = [b.proto.label for b in at.get("download_button")]
    assert downloads == [
        "PNG strip (linear)",
        "Animated GIF (linear)",
        "PNG strip (spherical)",
        "Animated GIF (spherical)",
    ]
    paths = [t for t in _spec(at.get("plotly_chart")[0])["data"] if t.get("name", "").endswith("path")]
    assert [len(t["x"]) for t in paths] == [10, 10] and paths[0]["text"][0] == "A"
    # both paths start and end at the two images' posterior means
    assert paths[0]["x"][0] == pytest.approx(paths[1]["x"][0], abs=1e-5)
    assert paths[0]["y"][-1] == pytest.approx(paths[1]["y"][-1], abs=1e-5)
    at.sidebar.multiselect[0].set_value(["spherical"]).run()
    at.sidebar.slider[0].set_value(5).run()
    assert [m.value for m in at.markdown if "path," in m.value] == ["**Spherical** path, 5 steps"]
    # a drawing made on the Draw page becomes a third source
    drawing = torch.zeros(1, 28, 28)
    drawing[0, 4:24, 13:15] = 1.0
    at.session_state["drawing"] = drawing
    at.run()
    assert at.radio[0].options == ["test image", "upload", "drawing"]
    at.radio[0].set_value("drawing").run()
    assert not at.exception
    assert "your drawing" in [i.proto.imgs[0].caption for i in at.get("image")]
    # an upload as the other end; a bad one gets a message and no strip
    at.radio[1].set_value("upload").run()
    assert "Upload an image for this end." in [i.value for i in at.info]
    at.file_uploader[0].set_value(("junk.png", b"not an image", "image/png")).run()
    assert not at.exception and at.error[0].value.startswith("junk.png: ")
    assert not [m for m in at.markdown if "path," in m.value]
    digit = Image.fromarray(mnist_test.images[3, 0].numpy())
    at.file_uploader[0].set_value(("three.png", _png(digit), "image/png")).run()
    assert not at.exception and not at.error
    assert "three.png" in [i.proto.imgs[0].caption for i in at.get("image")]
    assert [m.value for m in at.markdown if "path," in m.value] == ["**Spherical** path, 5 steps"]


def test_train_page_animates_the_latent_space_of_a_run(shipped):
    from explorer.config import TrainConfig
    from explorer.train import start_run

    cfg = TrainConfig(epochs=2, limit=500, test_limit=300, device="cpu", log_every=2)
    start_run(shipped / "runs" / "small", ModelConfig(hidden=(32,), latent_dim=2), cfg, progress=False)
    at = page("pages/1_Train.py").run()
    assert not at.exception
    charts = [_spec(c) for c in at.get("plotly_chart")]
    # The curves: 5 steps an epoch, logged every 2, so the train loss lies at fractional epochs.
    # Both the run's own chart and the Compare runs overlay.
    curves = [c for c in charts if not c.get("frames")]
    assert len(curves) == 2
    for chart in curves:
        loss = chart["data"][0]
        assert loss["x"] == [0.4, 0.8, 1.2, 1.6, 2.0] and len(loss["y"]) == 5
    animated = [c for c in charts if c.get("frames")]
    assert len(animated) == 1
    anim = animated[0]
    assert [f["name"] for f in anim["frames"]] == ["0", "1", "2"]
    assert sum(len(t["x"]) for t in anim["data"]) == 300  # every snapshot image, opening on the last epoch
    assert anim["layout"]["sliders"][0]["active"] == 2
    assert any("Press Play" in c.value for c in at.caption)


def test_train_page_offers_processes_with_several_gpus_and_runs_them(shipped, monkeypatch):
    at = page("pages/1_Train.py").run()
    assert "Processes (GPUs)" not in [w.label for w in at.number_input]  # this machine: no GPUs
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    at.run()
    form = {w.label: w for w in at.number_input}
    form["Processes (GPUs)"].set_value(2)
    form["Batch size M"].set_value(61)
    [b for b in at.button if b.label == "Start training"][0].click().run()
    assert "does not split over 2 processes" in at.error[0].value
    form = {w.label: w for w in at.number_input}
    form["Batch size M"].set_value(60)
    form["Epochs"].set_value(1)
    form["Training images (0 = all)"].set_value(1000)
    [t for t in at.text_input if t.label == "Hidden sizes"][0].set_value("16")
    [t for t in at.text_input if t.label == "Run name"][0].set_value("two-procs")
    [s for s in at.selectbox if s.label == "Device"][0].select("cpu")  # gloo: what CI can run
    [b for b in at.button if b.label == "Start training"][0].click().run()
    assert not at.exception and not at.error
    folder = shipped / "runs" / "two-procs"
    deadline = time.time() + 180
    status = {}
    while time.time() < deadline:
        status = (
            __import__("json").loads((folder / "status.json").read_text())
            if (folder / "status.json").exists()
            else {}
        )
        if status.get("state") in ("finished", "failed"):
            break
        time.sleep(0.5)
    assert status.get("state") == "finished", status
    assert status["path"] == "2 processes, DistributedDataParallel over gloo"
