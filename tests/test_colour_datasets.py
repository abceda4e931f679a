"""Colour datasets: CIFAR-10 read from files in its exact on-disk format that the tests write, a
user's folder of images (broken files included), and the generated shapes."""

import hashlib
import io
import pickle
import re
import tarfile

import numpy as np
import pytest
import torch
from PIL import Image

from explorer.data import sources
from explorer.data.cache import fetch, load_dataset
from explorer.data.folders import add_folder
from explorer.data.shapes import draw_sprite, generate
from explorer.data.specs import spec
from explorer.errors import DatasetError, SourceFailed


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty dataset cache of its own."""
    monkeypatch.setenv("VAE_EXPLORER_DATA", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _cifar_batch(n: int, seed: int) -> tuple[bytes, np.ndarray, np.ndarray]:
    """A batch file as CIFAR-10 ships it: a protocol-2 pickle of a dict whose 'data' is (n, 3072)
    uint8 rows (1,024 red, then green, then blue values, row-major) and 'labels' a list."""
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    labels = rng.integers(0, 10, n).tolist()
    batch = {"batch_label": "training batch 1 of 5", "labels": labels, "data": data,
             "filenames": [f"img_{i}.png" for i in range(n)]}  # fmt: skip
    return pickle.dumps(batch, protocol=2), data, np.array(labels)


def _cifar_archive(path, batches: dict[str, bytes]) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, blob in batches.items():
            info = tarfile.TarInfo(f"{sources.CIFAR_FOLDER}/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))


@pytest.fixture
def cifar_archive(tmp_path):
    """A small archive in CIFAR-10's layout: 4 images per training batch, 6 in the test batch."""
    batches, arrays = {}, {}
    for i, name in enumerate(sources.CIFAR_FILES):
        blob, data, labels = _cifar_batch(6 if name == "test_batch" else 4, i)
        batches[name], arrays[name] = blob, (data, labels)
    path = tmp_path / sources.CIFAR_ARCHIVE
    _cifar_archive(path, batches)
    return path, batches, arrays


def test_cifar_files_with_other_checksums_are_refused_by_name(cache, cifar_archive, monkeypatch):
    path, *_ = cifar_archive
    monkeypatch.setenv("VAE_EXPLORER_CIFAR_ARCHIVE", str(path))
    with pytest.raises(DatasetError, match="data_batch_1 has md5 [0-9a-f]{32}, expected c99cafc152244af753"):
        fetch("cifar10")
    assert not (cache / "cifar10" / "data_batch_1").exists()  # nothing unverified is kept


def test_cifar_loader_reads_the_exact_format(cache, cifar_archive, monkeypatch):
    path, batches, arrays = cifar_archive
    monkeypatch.setenv("VAE_EXPLORER_CIFAR_ARCHIVE", str(path))
    # the test's own files stand in for the real ones: their md5s replace the published ones
    monkeypatch.setattr(sources, "CIFAR_FILES", {n: hashlib.md5(b).hexdigest() for n, b in batches.items()})
    train, test = load_dataset("cifar10", "train"), load_dataset("cifar10", "test")
    assert train.images.shape == (20, 3, 32, 32) and test.images.shape == (6, 3, 32, 32)
    data, labels = arrays["data_batch_1"]
    first = train.images[0].numpy()
    assert (first[0].reshape(-1) == data[0, :1024]).all()  # red plane first, row-major
    assert (first[2].reshape(-1) == data[0, 2048:]).all()
    assert train.labels[:4].tolist() == labels.tolist()
    assert spec("cifar10").image_shape == (3, 32, 32) and spec("cifar10").likelihood == "logistic"


def test_a_cifar_batch_whose_pickle_runs_code_is_refused(tmp_path):
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (__import__("os").system, (f"touch {marker}",))

    (tmp_path / "data_batch_1").write_bytes(pickle.dumps({"data": Evil(), "labels": []}, protocol=2))
    with pytest.raises(SourceFailed, match="refused to load posix.system|refused to load os.system"):
        sources.read_cifar_batch(tmp_path / "data_batch_1")
    assert not marker.exists()


def _png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def image_folder(tmp_path):
    """cats/ and dogs/ of coloured pictures of several sizes, and broken files among them."""
    root = tmp_path / "pictures"
    rng = np.random.default_rng(0)
    for label, colour in (("cats", (230, 60, 40)), ("dogs", (40, 90, 230))):
        (root / label).mkdir(parents=True)
        for i in range(12):
            picture = np.zeros((40 + 3 * i, 60, 3), np.uint8)
            picture[10:30, 20:40] = colour
            picture += rng.integers(0, 20, picture.shape, dtype=np.uint8)
            (root / label / f"{i}.png").write_bytes(_png(picture))
    (root / "cats" / "truncated.png").write_bytes(_png(np.zeros((30, 30, 3), np.uint8))[:60])
    (root / "cats" / "notes.jpg").write_text("not a picture")
    (root / "dogs" / "empty.webp").write_bytes(b"")
    (root / "readme.txt").write_text("ignored: not an image type")
    return root


def test_an_image_folder_becomes_a_dataset(cache, image_folder):
    done = add_folder("pets", image_folder, size="24x16")
    assert done.classes == ("cats", "dogs") and done.train + done.test == 24
    assert done.test in range(1, 9)  # about one in ten, by file name
    skipped = dict(done.skipped)
    assert set(skipped) == {"cats/truncated.png", "cats/notes.jpg", "dogs/empty.webp"}
    assert "empty" in skipped["dogs/empty.webp"] and "accepted format" in skipped["cats/notes.jpg"]
    described = spec("pets")
    assert described.image_shape == (3, 24, 16) and described.label_names == ("cats", "dogs")
    train = load_dataset("pets", "train")
    assert train.images.shape[1:] == (3, 24, 16) and train.images.dtype == torch.uint8
    cats = train.images[train.labels == 0].float().mean((0, 2, 3))
    assert cats[0] > cats[2]  # red squares stay red: colour is kept
    # the split depends on the file names only: the same folder imports the same way
    again = add_folder("pets-again", image_folder, size="24x16")
    assert (load_dataset("pets-again", "test").images == load_dataset("pets", "test").images).all()
    assert again.test == done.test


def test_the_test_split_grows_with_the_fraction_and_sizes_take_ascii_digits_only(cache, image_folder):
    """A fraction near 1 on a small folder put all but one image in train, as a fraction near 0
    did; '٣٢', '３２' and '4_8' were read as sizes, which the app's address refuses as digits."""
    from explorer.data.folders import parse_size

    tests = [add_folder(f"split-{k}", image_folder, size="8", test_fraction=f).test
             for k, f in enumerate((0.001, 0.1, 0.5, 0.9, 0.999))]  # fmt: skip
    assert tests == sorted(tests) and tests[0] == 1 and tests[-1] == 23, tests  # one left to train
    assert parse_size("48x32") == (48, 32) and parse_size(" 32 ") == (32, 32)
    for odd in ("٣٢", "３２", "４８x３２", "4_8", "+32", "32.0", "", "x32"):
        with pytest.raises(ValueError, match="size must be"):
            parse_size(odd)


def test_a_folder_import_that_cannot_succeed_writes_nothing(cache, image_folder, tmp_path):
    with pytest.raises(DatasetError, match="not allowed"):
        add_folder("../escape", image_folder)
    with pytest.raises(DatasetError, match="not allowed"):
        add_folder("mnist", image_folder)  # a built-in name
    with pytest.raises(DatasetError, match="size must be"):
        add_folder("pets", image_folder, size="1000")
    (tmp_path / "few").mkdir()
    (tmp_path / "few" / "one.png").write_bytes(_png(np.zeros((8, 8, 3), np.uint8)))
    with pytest.raises(DatasetError, match="1 readable image"):
        add_folder("few", tmp_path / "few")
    # The refusal says why the others were skipped (it said "16 skipped" and nothing more): top-level
    # pictures beside a class subfolder, and a file that is not a picture.
    for i in range(5):
        (tmp_path / "few" / f"top{i}.png").write_bytes(_png(np.zeros((8, 8, 3), np.uint8)))
    (tmp_path / "few" / "sub").mkdir()
    (tmp_path / "few" / "sub" / "inner.png").write_bytes(_png(np.zeros((8, 8, 3), np.uint8)))
    (tmp_path / "few" / "sub" / "notes.png").write_text("not a picture")
    with pytest.raises(DatasetError) as refused:
        add_folder("few", tmp_path / "few")
    assert str(refused.value).count("\n") == 0 and (
        "7 skipped); a dataset needs at least 2. Skipped: one.png, top0.png, top1.png and 3 more: at the "
        "top level while the classes come from subfolders; sub/notes.png: " in str(refused.value)
    ), str(refused.value)
    assert not cache.exists() or not any(p.name in ("few", "pets") for p in cache.iterdir())
    add_folder("pets", image_folder)
    with pytest.raises(DatasetError, match="exists already"):
        add_folder("pets", image_folder)
    grey = add_folder("pets", image_folder, grey=True, fit="pad", replace=True)
    assert spec("pets").image_shape == (1, 32, 32) and grey.folder.name == "pets"


def test_the_cli_adds_a_folder_and_lists_what_it_skipped(cache, image_folder, capsys):
    from explorer.cli import main

    assert main(["data", "add", "pets", str(image_folder), "--size", "16"]) in (0, None)
    out, err = capsys.readouterr()
    assert "pets: " in out and "classes: cats, dogs" in out
    assert "skipped cats/truncated.png" in err and "3 file(s) skipped" in err


def test_shapes_are_reproducible_from_a_seed_and_carry_their_factors():
    a = generate(30, np.random.default_rng(7))
    b = generate(30, np.random.default_rng(7))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    c = generate(30, np.random.default_rng(8))
    assert not np.array_equal(a[0], c[0])
    images, labels, factors = a
    assert images.shape == (30, 3, 32, 32) and factors.shape == (30, 6)
    assert (labels == factors[:, 0]).all() and set(labels.tolist()) <= {0, 1, 2}
    # the factors are what the picture shows: the sprite's centre of mass lies at (x, y)
    picture = draw_sprite(0, 0.25, 30.0, 0.3, 0.6, 0.5).astype(float).sum(0)
    rows, cols = np.indices(picture.shape)
    centre = ((picture * rows).sum() / picture.sum(), (picture * cols).sum() / picture.sum())
    assert centre == pytest.approx((0.6 * 32 - 0.5, 0.3 * 32 - 0.5), abs=0.6)


def test_a_colour_upload_is_prepared_as_the_shapes_were(cache):
    from explorer.data.uploads import preprocess_image

    sprite = draw_sprite(2, 0.3, 10.0, 0.5, 0.5, 0.1)  # (3, 32, 32)
    big = Image.fromarray(sprite.transpose(1, 2, 0)).resize((128, 128), Image.Resampling.BICUBIC)
    x = preprocess_image(big, "shapes")
    assert x.shape == (3, 32, 32)
    original = torch.from_numpy(sprite).float() / 255
    assert np.corrcoef(x.flatten(), original.flatten())[0, 1] > 0.98


def test_a_model_of_a_small_folder_is_judged_and_a_replaced_folder_is_named(cache, image_folder, tmp_path):
    """A folder of 24 images (2 or 3 test images) still gives uploads a verdict: the detector's
    references are topped up with training images. A model whose folder was added again at
    another size is refused with the size to add it at."""
    from explorer.checkpoints import load_checkpoint, save_checkpoint
    from explorer.errors import CheckpointError
    from explorer.explore.strangers import Reference
    from explorer.model import VAE, ModelConfig

    add_folder("pets", image_folder, size="16")
    config = ModelConfig(arch="conv", image_shape=(3, 16, 16), channels=(4,), hidden=(8,), latent_dim=2,
                         likelihood="logistic")  # fmt: skip
    save_checkpoint(tmp_path / "run", VAE(config), epoch=1, step=1, train_config={"dataset": "pets"})
    model = load_checkpoint(tmp_path / "run")
    test_x = load_dataset("pets", "test").images.float() / 255
    judged = Reference.of(model, test_x, "pets").judge(model, test_x[:1])
    assert len(judged) == 1 and 0 <= judged[0].verdict.percentile <= 100
    add_folder("pets", image_folder, size="24", replace=True)
    with pytest.raises(CheckpointError, match="Add it with --size 16x16"):
        load_checkpoint(tmp_path / "run")


def test_blank_colour_pictures_and_bad_sources_get_messages(cache, tmp_path, monkeypatch):
    from explorer.data.uploads import preprocess_image
    from explorer.errors import ImageError

    for colour in ((0, 0, 0), (255, 255, 255), (200, 20, 20)):
        with pytest.raises(ImageError, match="blank"):
            preprocess_image(Image.new("RGB", (50, 40), colour), "shapes")
    monkeypatch.setenv("VAE_EXPLORER_CIFAR_ARCHIVE", str(tmp_path))  # a folder, not the archive
    with pytest.raises(DatasetError, match="is a folder; give the file itself"):
        fetch("cifar10")
    assert not (cache / "cifar10").exists()  # no empty folder left behind
    with pytest.raises(DatasetError, match="not allowed"):
        add_folder("MNIST", tmp_path)  # a built-in name in other letters


@pytest.mark.parametrize("fraction", ["0", "1", "1.5", "-0.1"])
def test_a_test_fraction_is_refused_by_one_rule_in_one_wording(image_folder, cache, capsys, fraction):
    """`data add --test-fraction 1.5` said "must be from 0 to 1" while 0 and 1 were refused by
    the library as "must lie between 0 and 1", under another command name ("vae-explorer data")."""
    from explorer.cli import main
    from explorer.data.folders import TEST_FRACTION_RULE

    with pytest.raises(SystemExit):
        main(["data", "add", "pets", str(image_folder), "--test-fraction", fraction])
    err = capsys.readouterr().err
    assert err.startswith("vae-explorer data add: error: argument --test-fraction: must lie ")
    assert TEST_FRACTION_RULE in err and "from 0 to 1" not in err
    with pytest.raises(DatasetError, match="^the test fraction must lie " + re.escape(TEST_FRACTION_RULE)):
        add_folder("pets", image_folder, size="8", test_fraction=float(fraction))
    assert not (cache / "pets").exists()


def test_a_refused_folder_is_named_by_the_command_that_refused_it(tmp_path, cache, capsys):
    from explorer.cli import main

    assert main(["data", "add", "pets", str(tmp_path / "nowhere")]) != 0
    assert capsys.readouterr().err.startswith("vae-explorer data add: error: ")


def test_the_suggested_command_trains_a_dataset_of_the_smallest_size(image_folder, cache, capsys, tmp_path):
    """`data add ... --size 4` suggested a conv run with three stride-2 convolutions, which a 4x4
    image cannot take: the command it prints is one that runs."""
    import shlex

    from explorer.cli import main

    assert main(["data", "add", "pets4", str(image_folder), "--size", "4"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("train on it: "))
    argv = shlex.split(line.removeprefix("train on it: "))[1:]
    assert "--channels" in argv and argv[argv.index("--channels") + 1] == "32,64"
    argv[argv.index("--name") : argv.index("--name") + 2] = ["--out", str(tmp_path / "run")]
    assert main([*argv, "--epochs", "1", "--hidden", "8", "--device", "cpu", "--no-progress"]) == 0
