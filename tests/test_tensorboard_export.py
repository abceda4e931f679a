"""The TensorBoard export of every dataset shape the product accepts (one and three channels, tall,
wide, the smallest size `data add` allows), read back through TensorBoard's own projector plugin
(the routes its front end calls: config, tensor, metadata, sprite); the sprite's layout against
the front end's rule (cells of single_image_dim, sprite width / cell width a row, at most 8192
pixels a side); and an export that fails leaves nothing, so that a retry works."""

import io
import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

from explorer.checkpoints import load_checkpoint, save_checkpoint
from explorer.data.cache import eval_images
from explorer.data.folders import add_folder
from explorer.errors import ExplorerError
from explorer.explore.latent import encode_means
from explorer.explore.tensorboard import SPRITE_MAX, export_tensorboard, sprite
from explorer.model import VAE, ModelConfig

SHAPES = {  # dataset: (size as `data add` takes it, grey)
    "tall-grey": ("48x32", True),  # the README's own example, which crashed the export
    "tall-colour": ("48x32", False),
    "wide-colour": ("20x44", False),
    "square-grey": ("16", True),
    "tiny-colour": ("8", False),
    "smallest-grey": ("4", True),
}


@pytest.fixture
def models(tmp_path, monkeypatch):
    """``make(name)``: a folder dataset of that shape in a cache of its own, and a model of it."""
    monkeypatch.setenv("VAE_EXPLORER_DATA", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)

    def make(name: str):
        size, grey = SHAPES[name]
        folder = tmp_path / f"pictures-{name}"
        for i in range(60):
            (folder / ("a" if i % 2 else "b")).mkdir(parents=True, exist_ok=True)
            picture = rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)
            Image.fromarray(picture).save(folder / ("a" if i % 2 else "b") / f"{i:03d}.png")
        add_folder(name, folder, size=size, grey=grey)
        shape = (1 if grey else 3, *(int(s) for s in (size.split("x") * 2)[:2]))
        config = ModelConfig(image_shape=shape, hidden=(8,), latent_dim=3, likelihood="logistic")
        torch.manual_seed(0)
        return save_checkpoint(tmp_path / "runs" / name, VAE(config), train_config={"dataset": name})

    return make


def projector(logdir):
    """GET one of the projector plugin's routes, as TensorBoard's front end does: (status, body)."""
    from tensorboard.plugins import base_plugin
    from tensorboard.plugins.projector import projector_plugin as plugin_module
    from werkzeug.test import Client

    plugin = plugin_module.ProjectorPlugin(base_plugin.TBContext(logdir=str(logdir), data_provider=None))
    apps = plugin.get_plugin_apps()
    routes = {
        "config": plugin_module.CONFIG_ROUTE,
        "tensor": plugin_module.TENSOR_ROUTE,
        "metadata": plugin_module.METADATA_ROUTE,
        "sprite": plugin_module.SPRITE_IMAGE_ROUTE,
    }

    def get(route: str, **query):
        response = Client(apps[routes[route]]).get("/", query_string={"run": ".", **query})
        return response.status_code, response.data

    return get


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_every_dataset_shape_exports_to_what_the_projector_loads(tmp_path, models, name):
    run = models(name)
    done = export_tensorboard(run, tmp_path / "tb")
    x, labels = eval_images(name, "test", binarized=False)
    n, (h, w) = len(x), x.shape[2:]
    get = projector(tmp_path / "tb")
    status, body = get("config")
    assert status == 200, body
    (embedding,) = json.loads(body)["embeddings"]
    tag = embedding["tensorName"]
    assert tag == done.tag and [int(v) for v in embedding["tensorShape"]] == [n, 3]
    status, body = get("tensor", name=tag)
    assert status == 200, body
    codes = np.frombuffer(body, dtype=np.float32).reshape(n, 3)
    expected = encode_means(load_checkpoint(run).eval(), x).numpy()
    assert np.allclose(codes, expected, atol=1e-6)
    status, body = get("metadata", name=tag)
    assert status == 200, body
    rows = body.decode().strip().split("\n")
    assert rows[0] == "label\tname" and len(rows) == n + 1
    assert [r.split("\t")[1] for r in rows[1:]] == [("a", "b")[int(k)] for k in labels]
    status, body = get("sprite", name=tag)
    assert status == 200, body
    picture = np.asarray(Image.open(io.BytesIO(body)).convert("RGB"))
    cell_w, cell_h = embedding["sprite"]["singleImageDim"]
    assert cell_w == cell_h == done.cell == max(h, w)  # a square cell: the thumbnails keep their shape
    # The front end's rule: sprite width / cell width images a row, row by row.
    height, width = picture.shape[:2]
    assert width % cell_w == 0 and height % cell_h == 0 and max(width, height) <= SPRITE_MAX
    per_row = width // cell_w
    assert per_row * (height // cell_h) >= n
    top, left = (cell_h - h) // 2, (cell_w - w) // 2
    for i in range(n):
        r, q = divmod(i, per_row)
        cell = picture[r * cell_h : (r + 1) * cell_h, q * cell_w : (q + 1) * cell_w].astype(np.float64) / 255
        image = x[i].expand(3, -1, -1).permute(1, 2, 0).double().numpy()
        assert np.abs(cell[top : top + h, left : left + w] - image).max() <= 0.5 / 255 + 1e-9
        assert not cell[:top].any() and not cell[top + h :].any()  # black padding around it
        assert not cell[:, :left].any() and not cell[:, left + w :].any()


def test_a_sprite_too_wide_for_the_projector_is_shrunk_to_fit():
    g = torch.Generator().manual_seed(0)
    images = torch.rand(1000, 1, 300, 10, generator=g)  # 32 a row: 32 x 300 px would be 9,600 px
    canvas, side = sprite(images)
    cols = math.ceil(math.sqrt(1000))
    assert side == SPRITE_MAX // cols == 256 and canvas.shape == (side * cols, side * cols, 3)
    # The cell of image 0: the padded image, area-averaged to 256 x 256.
    padded = torch.zeros(1, 1, 300, 300)
    padded[:, :, :, 145:155] = images[:1]
    expected = torch.nn.functional.interpolate(padded, size=(256, 256), mode="area")[0, 0] * 255
    assert np.abs(canvas[:256, :256, 0] - expected.numpy()).max() <= 0.5 + 1e-4


def test_a_failed_export_leaves_nothing_and_a_retry_works(tmp_path, models, monkeypatch):
    import explorer.explore.tensorboard as tb

    run = models("tall-grey")
    real = tb.sprite

    def broken(images):
        raise RuntimeError("interrupted")

    monkeypatch.setattr(tb, "sprite", broken)
    (tmp_path / "out").mkdir()
    with pytest.raises(RuntimeError, match="interrupted"):
        export_tensorboard(run, tmp_path / "out" / "tb")
    assert list((tmp_path / "out").iterdir()) == []  # no half-written folder, no temporary one
    monkeypatch.setattr(tb, "sprite", real)
    (tmp_path / "out" / "tb").mkdir()  # an empty folder is taken too
    done = export_tensorboard(run, tmp_path / "out" / "tb")
    assert done.folder == tmp_path / "out" / "tb" and (done.folder / "projector_config.pbtxt").is_file()
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["tb"]
    with pytest.raises(ExplorerError, match="already holds files"):
        export_tensorboard(run, tmp_path / "out" / "tb")
