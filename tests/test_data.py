"""Dataset sources: the fallback chain, checksums, atomic caching, the restricted unpickler,
Frey Face from a .mat file, and the real MNIST / Fashion-MNIST files."""

import gzip
import io
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from explorer.data import cache as data
from explorer.data import sources
from explorer.data.stamps import md5_file
from explorer.errors import DatasetError, SourceFailed


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_EXPLORER_DATA", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _fake_mnist_source(label_shift=0):
    """A source that writes idx files and patches the expected md5s to match them."""

    def source(name, dest):
        rng = np.random.default_rng(0)
        sources.write_idx(dest / "train-images-idx3-ubyte", rng.integers(0, 256, (6, 28, 28)))
        sources.write_idx(dest / "train-labels-idx1-ubyte", np.arange(6) % 10 + label_shift)
        sources.write_idx(dest / "t10k-images-idx3-ubyte", rng.integers(0, 256, (3, 28, 28)))
        sources.write_idx(dest / "t10k-labels-idx1-ubyte", np.arange(3))

    return source


def _md5s_of(source, tmp_path):
    folder = tmp_path / "reference"
    folder.mkdir()
    source("mnist", folder)
    return {f: md5_file(folder / f) for f in sources.MNIST_FILES}


def test_idx_roundtrip(tmp_path):
    a = np.random.default_rng(0).integers(0, 256, (4, 5, 6)).astype(np.uint8)
    sources.write_idx(tmp_path / "x", a)
    np.testing.assert_array_equal(sources.read_idx(tmp_path / "x"), a)
    (tmp_path / "bad").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x05abc")
    with pytest.raises(DatasetError, match="expected 5"):
        sources.read_idx(tmp_path / "bad")


def test_fallback_order_and_caching(data_dir, tmp_path, monkeypatch):
    good = _fake_mnist_source()
    monkeypatch.setattr(sources, "MNIST_FILES", _md5s_of(good, tmp_path))
    calls = []

    def failing(name, dest):
        calls.append("failing")
        raise SourceFailed("no network")

    def counted(name, dest):
        calls.append("good")
        good(name, dest)

    folder = data.fetch("mnist", [("first", failing), ("second", counted)])
    assert calls == ["failing", "good"]
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [*sources.MNIST_FILES, "source.json", ".verified.json"]
    )
    # Second time: the cache answers, no source is called.
    data.fetch("mnist", [("first", failing), ("second", counted)])
    assert calls == ["failing", "good"]
    monkeypatch.setattr(sources, "SOURCES", {"mnist": [("fake", good)]})
    ds = data.load_dataset("mnist", "train")
    assert ds.images.shape == (6, 1, 28, 28) and ds.images.dtype == torch.uint8
    assert ds.labels.dtype == torch.int64 and ds.labels.tolist() == [0, 1, 2, 3, 4, 5]


def test_wrong_checksum_is_an_error_naming_every_source(data_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "MNIST_FILES", _md5s_of(_fake_mnist_source(), tmp_path))

    def offline(name, dest):
        raise SourceFailed("download failed: no route to host")

    with pytest.raises(DatasetError) as err:
        data.fetch("mnist", [("net", offline), ("tampered", _fake_mnist_source(label_shift=1))])
    message = str(err.value)
    assert "cache" in message and "net: download failed" in message
    assert "tampered: train-labels-idx1-ubyte has md5" in message
    assert not any(p.is_file() for p in data_dir.rglob("*")), "nothing unverified is cached"


def test_corrupted_cache_is_refetched(data_dir, tmp_path, monkeypatch):
    good = _fake_mnist_source()
    monkeypatch.setattr(sources, "MNIST_FILES", _md5s_of(good, tmp_path))
    folder = data.fetch("mnist", [("good", good)])
    target = folder / "t10k-images-idx3-ubyte"
    target.write_bytes(target.read_bytes()[:-10] + b"x" * 10)
    data.fetch("mnist", [("good", good)])
    assert md5_file(target) == sources.MNIST_FILES["t10k-images-idx3-ubyte"]


def test_interrupted_fetch_leaves_no_partial_file(data_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "MNIST_FILES", _md5s_of(_fake_mnist_source(), tmp_path))

    def interrupted(name, dest):
        (dest / "train-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03" + b"\x01" * 1000)
        raise KeyboardInterrupt  # the user pressed Ctrl-C mid-download

    with pytest.raises(KeyboardInterrupt):
        data.fetch("mnist", [("slow", interrupted)])
    assert [p for p in data_dir.rglob("*") if p.is_file()] == []


def test_restricted_unpickler_loads_arrays_and_refuses_code():
    payload = ((np.arange(6, dtype=np.float32).reshape(2, 3), np.array([1, 2])), [np.zeros(2)])
    loaded = sources.restricted_unpickle(pickle.dumps(payload, protocol=2))
    np.testing.assert_array_equal(loaded[0][0], payload[0][0])

    class Evil:
        def __reduce__(self):
            import os

            return (os.system, ("echo pwned",))

    with pytest.raises(pickle.UnpicklingError, match="only numpy arrays"):
        sources.restricted_unpickle(pickle.dumps(Evil()))


def _write_frey_mat(path: Path, frames: np.ndarray) -> None:
    from scipy.io import savemat

    savemat(path, {"ff": frames.reshape(len(frames), -1).T})  # (560, N) as in the original


def test_frey_face_from_a_user_file(data_dir, tmp_path, monkeypatch):
    frames = np.random.default_rng(0).integers(0, 256, (1965, 28, 20)).astype(np.uint8)
    _write_frey_mat(tmp_path / "frey_rawface.mat", frames)
    monkeypatch.setenv("VAE_EXPLORER_FREY_MAT", str(tmp_path / "frey_rawface.mat"))
    train, test = data.load_dataset("frey-face", "train"), data.load_dataset("frey-face", "test")
    assert train.images.shape == (1765, 1, 28, 20) and test.images.shape == (200, 1, 28, 20)
    np.testing.assert_array_equal(train.images[7, 0].numpy(), frames[7])
    np.testing.assert_array_equal(test.images[0, 0].numpy(), frames[1765])
    assert test.labels[0] == 1765


def test_frey_face_wrong_shape_is_refused(data_dir, tmp_path, monkeypatch):
    _write_frey_mat(tmp_path / "f.mat", np.zeros((10, 28, 20), dtype=np.uint8))
    monkeypatch.setenv("VAE_EXPLORER_FREY_MAT", str(tmp_path / "f.mat"))
    with pytest.raises(DatasetError, match=r"user file: .*expected uint8 \(560, 1965\)"):
        data.load_dataset("frey-face")


def test_unknown_dataset_and_split():
    with pytest.raises(DatasetError, match="unknown dataset"):
        data.load_dataset("cifar")
    with pytest.raises(DatasetError, match="unknown split"):
        data.load_dataset("mnist", "valid")


def test_fixed_binarisation_is_deterministic_and_unbiased():
    images = torch.full((200, 1, 28, 28), 64, dtype=torch.uint8)
    a, b = data.binarize_fixed(images, 0), data.binarize_fixed(images, 0)
    assert torch.equal(a, b) and set(a.unique().tolist()) == {0.0, 1.0}
    assert abs(a.mean().item() - 64 / 255) < 0.005
    assert not torch.equal(a, data.binarize_fixed(images, 1))


@pytest.mark.integration
def test_real_mnist_is_byte_exact(mnist_test):
    """The cached files were verified against MNIST's md5s; spot-check known values too."""
    assert mnist_test.images.shape == (10000, 1, 28, 28)
    assert mnist_test.labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert torch.bincount(mnist_test.labels).tolist()[:3] == [980, 1135, 1032]
    info = data.info("mnist")
    assert info["train"] == 60000 and info["test"] == 10000
    assert all(f["md5"] == sources.MNIST_FILES[n] for n, f in info["files"].items())


@pytest.mark.integration
@pytest.mark.skipif(
    not sources.FASHION_MNIST_DEBIAN_DIR.is_dir(),
    reason="needs Debian's dataset-fashion-mnist (make test installs it as root)",
)
def test_real_fashion_mnist_from_debian(data_dir):
    ds = data.load_dataset("fashion-mnist", "test")
    assert ds.images.shape == (10000, 1, 28, 28)
    assert torch.bincount(ds.labels).tolist() == [1000] * 10
    assert data.info("fashion-mnist")["source"] == "Debian dataset-fashion-mnist"


def test_debian_source_reports_missing_package(data_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("VAE_EXPLORER_FASHION_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(DatasetError, match="apt-get install dataset-fashion-mnist"):
        data.fetch("fashion-mnist")


def test_debian_source_rejects_wrong_contents(data_dir, tmp_path, monkeypatch):
    folder = tmp_path / "fake-fashion"
    folder.mkdir()
    for file in sources.FASHION_MNIST_FILES:
        buf = io.BytesIO()
        with gzip.GzipFile(fileobj=buf, mode="wb") as gz:
            gz.write(b"\x00\x00\x08\x01\x00\x00\x00\x01\x05")
        (folder / f"{file}.gz").write_bytes(buf.getvalue())
    monkeypatch.setenv("VAE_EXPLORER_FASHION_DIR", str(folder))
    with pytest.raises(DatasetError, match="Debian dataset-fashion-mnist: .* has md5"):
        data.fetch("fashion-mnist")
