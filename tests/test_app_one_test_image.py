"""A folder of a dozen pictures may leave one test image (the test split takes one in ten, by
file name): every page works on it, and no figure claims more than one image can carry. (Opening
the one test image on the Latent space page raised ZeroDivisionError: its nearest neighbours
were none; Traversals said "no active unit" where activity cannot be measured on one image;
ranks and captions spoke of percentages and "2,000 encoded test images".)"""

import numpy as np
import pytest
import torch
from PIL import Image

from explorer.cli import main
from explorer.data.folders import _in_test
from explorer.explore.latent import likeness
from tests.apptest import captions, page

pytestmark = pytest.mark.integration
MODEL = "runs/tall-conv"


@pytest.fixture(scope="module")
def one_test_image(tmp_path_factory):
    """12 pictures taller than wide, named so that exactly one falls in the test split, added at
    48x24, and a one-epoch conv model of them; the environment points the app at it."""
    root = tmp_path_factory.mktemp("one")
    names = [f"p{i}.png" for i in range(400)]
    test = [n for n in names if _in_test(n, 0.1)][:1]
    train = [n for n in names if not _in_test(n, 0.1)][:11]
    rng = np.random.default_rng(1)
    (root / "pictures").mkdir()
    for name in test + train:
        picture = np.full((60, 30, 3), 230, np.uint8)
        r, c = rng.integers(10, 40), rng.integers(5, 20)
        picture[r : r + 15, c : c + 8] = rng.integers(0, 200, 3)
        Image.fromarray(picture).save(root / "pictures" / name)
    mp = pytest.MonkeyPatch()
    mp.setenv("VAE_EXPLORER_DATA", str(root / "cache"))
    mp.setenv("VAE_EXPLORER_RUNS", str(root / "runs"))
    mp.setenv("VAE_EXPLORER_PRETRAINED", str(root / "pretrained"))
    assert main(["data", "add", "tall", str(root / "pictures"), "--size", "48x24"]) == 0
    argv = ["train", "--out", str(root / "runs" / "tall-conv"), "--dataset", "tall", "--arch", "conv",
            "--channels", "4", "--hidden", "8", "--latent-dim", "3", "--epochs", "1", "--batch-size", "4",
            "--device", "cpu", "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    yield root
    mp.undo()


def _open(name: str, **state):
    at = page(name)
    at.session_state["model"] = MODEL
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    return at


def test_the_one_test_image_opens_on_the_latent_space_page(one_test_image):
    from explorer.data.cache import load_dataset

    assert len(load_dataset("tall", "test")) == 1
    at = _open("pages/2_Latent_space.py", picked=(MODEL, 0))
    said = " ".join(c.value for c in at.caption)
    assert "None to show: tall's test set holds no other image to compare with" in said
    noted = " ".join(i.value for i in at.info)
    assert "the encoded test images do not vary (one test image)" in noted and "0%" not in noted


def test_evaluate_and_export_of_a_model_of_one_test_image_say_no_nan(one_test_image, capsys, tmp_path):
    """`evaluate` printed "+/- nan nats" and "active units 0 of 3"; `export` wrote card.json with a
    bare NaN, which strict JSON readers refuse."""
    import json

    assert main(["evaluate", "tall-conv", "--k", "0"]) == 0
    out = capsys.readouterr().out
    assert "nan" not in out.lower() and "(one image: no standard error)" in out
    assert "needs two test images, and there is one" in out
    assert main(["export", "tall-conv", str(tmp_path / "card")]) == 0
    text = (tmp_path / "card" / "card.json").read_text()
    json.loads(text, parse_constant=lambda c: pytest.fail(f"card.json holds {c}"))


def test_traversals_draw_every_dimension_where_activity_cannot_be_measured(one_test_image):
    at = _open("pages/7_Traversals.py")
    said = " ".join(c.value for c in at.caption)
    assert "Every dimension is drawn, in order" in said and "test set holds 1." in said
    assert not [w for w in at.warning if "No active unit" in w.value]
    assert sum("**z" in m.value for m in at.markdown) == 3  # one row per latent dimension


def test_captions_count_the_one_encoded_test_image(one_test_image):
    at = _open("pages/3_Manifold.py")  # a conv model: decoded on the server, its map an image
    said = " ".join([*captions(at), *(c.value for c in at.caption)])
    assert "among 1 encoded test image," in said and "2,000" not in said


def test_an_upload_is_ranked_against_the_one_test_image(one_test_image, tmp_path, capsys):
    picture = tmp_path / "bar.png"
    pixels = np.full((60, 30, 3), 230, np.uint8)
    pixels[20:35, 10:18] = (40, 90, 200)
    Image.fromarray(pixels).save(picture)
    assert main(["reconstruct", "tall-conv", str(picture)]) == 0
    out = capsys.readouterr().out
    assert "the one test image's" in out and "%" not in out.split(" nats, ")[1].split(";")[0]


def test_likeness_is_one_for_a_copy_and_near_zero_for_noise():
    x = torch.rand(4, 3, 8, 8)
    assert torch.allclose(likeness(x, x), torch.ones(4), atol=1e-5)
    assert likeness(x, torch.rand(4, 3, 8, 8)).abs().max() < 0.5
    assert torch.all(likeness(x, torch.full_like(x, 0.5)) == 0)  # a flat reconstruction keeps nothing


def test_an_image_past_the_one_is_refused_in_words_for_one(one_test_image):
    at = page("pages/2_Latent_space.py")
    at.query_params.update({"model": "tall-conv", "point": "1"})
    at.run()
    assert not at.exception
    said = " ".join(w.value for w in at.warning)
    assert "point=1: runs/tall-conv's test set holds one image, #0, so no image is opened" in said, said


def test_the_one_code_exported_is_said_in_the_singular(one_test_image, capsys, tmp_path):
    assert main(["export", "tall-conv", "--tensorboard", str(tmp_path / "tb")]) == 0
    assert "wrote 1 code with labels and images" in capsys.readouterr().out  # was "1 codes"
