"""Sample quality: the Fréchet distance through torchmetrics on the shipped feature classifiers,
checked against a direct computation, and the classifiers' accuracies against their cards."""

import json

import numpy as np
import pytest
import torch
from scipy import linalg

from explorer.checkpoints import pretrained_root
from explorer.data.cache import eval_images
from explorer.errors import ExplorerError
from explorer.fid import MIN_SAMPLES, accuracy, frechet_distance, load_classifier, min_images

pytestmark = pytest.mark.integration


def reference_fid(a: torch.Tensor, b: torch.Tensor, classifier) -> float:
    """Heusel et al. 2017, eq. 6, written out with NumPy and SciPy on the classifier's features."""
    with torch.no_grad():
        fa, fb = (classifier.features(x).double().numpy() for x in (a, b))
    ma, mb = fa.mean(0), fb.mean(0)
    ca, cb = np.cov(fa, rowvar=False), np.cov(fb, rowvar=False)
    root = linalg.sqrtm(ca @ cb).real
    return float(((ma - mb) ** 2).sum() + np.trace(ca + cb - 2 * root))


@pytest.mark.filterwarnings("ignore::scipy.linalg.LinAlgWarning")  # units that never fire: singular
def test_fid_is_zero_for_the_same_images_and_grows_with_a_shift():
    x, _ = eval_images("mnist", binarized=False, limit=1000)
    classifier, _ = load_classifier("mnist")
    same = frechet_distance(x, x.clone(), "mnist")
    assert same.value < 1e-3 and same.label() == "FID (classifier features)"
    figures = []
    for shift in (0.05, 0.15, 0.3):
        moved = (x + shift).clamp(0, 1)
        fid = frechet_distance(x, moved, "mnist").value
        assert fid == pytest.approx(reference_fid(x, moved, classifier), rel=1e-3, abs=1e-3)
        figures.append(fid)
    assert figures[0] > 0.01 and figures[0] < figures[1] < figures[2]
    other = eval_images("mnist", "train", binarized=False, limit=1000)[0]
    assert 0 < frechet_distance(x, other, "mnist").value < figures[2]  # two draws of MNIST: close


def test_fid_refuses_what_it_cannot_measure(tmp_path, monkeypatch):
    x = torch.rand(MIN_SAMPLES, 1, 28, 28)
    for real, generated in ((x[:1], x), (x, x[:-1]), (x[:7], x[:73])):
        with pytest.raises(
            ExplorerError, match=r"^too few images for FID: .*needs at least 200 \(the covariance"
        ):
            frechet_distance(real, generated, "mnist")
    assert frechet_distance(x, x.flip(0), "mnist").value < 1e-3  # 200 on each side: measured
    monkeypatch.setenv("VAE_EXPLORER_PRETRAINED", str(tmp_path))
    with pytest.raises(ExplorerError, match="no feature classifier for mnist.*vae-explorer classifier mnist"):
        frechet_distance(x, x, "mnist")


@pytest.mark.parametrize(
    "folder", sorted((pretrained_root() / "classifiers").iterdir()), ids=lambda p: p.name
)
def test_a_shipped_classifier_scores_what_its_card_says(folder):
    card = json.loads((folder / "card.json").read_text())
    classifier, _ = load_classifier(folder.name)
    x, labels = eval_images(folder.name, binarized=False)
    assert len(labels) == card["test_images"]
    assert accuracy(classifier, x, labels.long()) == pytest.approx(card["test_accuracy"], abs=1e-4)
    assert (folder / "classifier.safetensors").stat().st_size < 500_000  # a few hundred KB


def test_fid_flags_are_checked_before_any_work(tmp_path, monkeypatch, capsys):
    from explorer.cli import main

    assert main(["evaluate", "mnist-z2", "--k", "0", "--fid-samples", "500"]) != 0
    assert "--fid-samples sets up the FID: add --fid" in capsys.readouterr().err
    assert main(["evaluate", "mnist-z2", "--k", "0", "--fid", "--fid-samples", "20"]) != 0
    assert "too few to estimate the features' covariance" in capsys.readouterr().err
    run = tmp_path / "no-card"
    run.mkdir()
    (run / "model.safetensors").write_bytes(b"")
    assert main(["evaluate", str(run), "--k", "0", "--fid", "--save-card"]) != 0
    assert "has no card.json: export the run first" in capsys.readouterr().err
    assert main(["classifier", "mnist"]) != 0  # the shipped one is not overwritten by accident
    assert "pass --replace" in capsys.readouterr().err


def test_the_minimum_holds_for_every_set_and_is_stated_once():
    from explorer.cli import fid as cli_fid

    assert cli_fid.MIN_SAMPLES == MIN_SAMPLES == min_images("classifier") == 200
    assert min_images("inception") == 2049  # more images than Inception's 2,048 features


def test_fid_of_a_dataset_too_small_for_it_is_refused_in_one_line(tmp_path, monkeypatch, capsys):
    """The handed case: a model of a folder with 7 test images got an FID 'against 7 test images'."""
    from PIL import Image

    from explorer.checkpoints import save_checkpoint
    from explorer.cli import main
    from explorer.cli.fid import check_fid_sets
    from explorer.data.cache import load_dataset
    from explorer.data.folders import add_folder
    from explorer.model import VAE, ModelConfig

    monkeypatch.setenv("VAE_EXPLORER_DATA", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    folder = tmp_path / "pictures"
    folder.mkdir()
    for i in range(80):
        Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(folder / f"{i:03d}.png")
    add_folder("few", folder, size=8, grey=True)
    test, train = len(load_dataset("few", "test")), len(load_dataset("few", "train"))
    assert 0 < test < 20 and test + train == 80
    config = ModelConfig(image_shape=(1, 8, 8), hidden=(8,), latent_dim=2, likelihood="logistic")
    save_checkpoint(tmp_path / "run", VAE(config), epoch=1, step=1, train_config={"dataset": "few"})
    assert main(["evaluate", str(tmp_path / "run"), "--k", "0", "--fid"]) != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("vae-explorer evaluate: error: too few images for FID: ")
    assert f"{test} test images in few and {train} training images in few (the floor's reference)" in err
    assert "every set it compares needs at least 200" in err
    with pytest.raises(ExplorerError, match=r"too few images for FID: \d+ test images in few and"):
        check_fid_sets("few", 10_000, "classifier")  # the same rule, before any work


def test_features_of_a_classifier_near_chance_come_with_a_warning():
    """A 2-class folder's classifier at 54% (chance: 50%) gave an FID of 0.013 against a floor of
    0.000, with no word that its features tell the images apart little."""
    from explorer.data.specs import spec
    from explorer.fid import _near_chance

    k = len(spec("mnist").label_names)
    assert _near_chance("mnist", 0.99) == ""  # the shipped classifier
    said = _near_chance("mnist", 0.2)
    assert f"near chance ({100 / k:.0f}% for {k} classes)" in said and "--fid-features inception" in said
    assert _near_chance("mnist", 1 / k + 0.26 * (1 - 1 / k)) == ""


def test_a_classifier_outside_the_shipped_folder_is_used_with_fid_classifier(tmp_path, capsys):
    """`classifier --out FOLDER` wrote a classifier that `evaluate --fid` could not use: it read
    pretrained/classifiers/DATASET only."""
    import shutil

    from explorer.cli import main

    mine = tmp_path / "my-classifier"
    shutil.copytree(pretrained_root() / "classifiers" / "mnist", mine)
    base = ["evaluate", "mnist-z2", "--k", "0", "--fid", "--fid-samples", "300"]
    assert main([*base, "--fid-classifier", str(mine)]) == 0
    out = capsys.readouterr().out
    assert f"test accuracy 98.49%, {mine})" in out  # the features named by the folder they came from
    assert main(base) == 0
    shipped = capsys.readouterr().out
    figure = [line for line in out.splitlines() if "FID (classifier" in line]
    assert figure == [line for line in shipped.splitlines() if "FID (classifier" in line]  # same weights
    refusals = [
        (["--fid-classifier", str(tmp_path / "none")], "holds no classifier.safetensors"),
        (["--fid-classifier", str(pretrained_root() / "classifiers" / "fashion-mnist")],
         "was trained on fashion-mnist, and this model is of mnist"),
        (["--fid-classifier", str(mine), "--fid-features", "inception"], "leave out one of them"),
    ]  # fmt: skip
    for extra, said in refusals:
        assert main([*base, *extra]) != 0
        err = capsys.readouterr().err
        assert said in err and err.count("\n") == 1, err
    assert main(["evaluate", "mnist-z2", "--k", "0", "--fid-classifier", str(mine)]) != 0
    assert "--fid-classifier sets up the FID: add --fid" in capsys.readouterr().err
