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
from explorer.fid import accuracy, frechet_distance, load_classifier

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
    x = torch.rand(4, 1, 28, 28)
    with pytest.raises(ExplorerError, match="at least 2 images"):
        frechet_distance(x[:1], x, "mnist")
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
