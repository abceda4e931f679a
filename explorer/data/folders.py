"""Your own folder of images as a dataset: ``vae-explorer data add NAME PATH --size 32 [--grey]``.

Every PNG, JPEG, WebP, BMP or GIF file under PATH is read (with the same safety limits as an
upload), made into one image of the chosen size by the "photo" convention (``fit="crop"``:
centre-cropped to the shape's aspect ratio, then resized; ``fit="pad"``: resized to fit inside,
then centred on black), in colour unless ``grey``. Images in subfolders take the subfolder's name
as their class label (PATH/cat/1.png is a "cat"); without subfolders there is one class, named
after the folder. The split is deterministic: an image is in the test split when the SHA-256 of
its path relative to PATH falls in the first ``test_fraction`` of the hash range, so adding files
later never moves the others. Files that cannot be read are listed with the reason and skipped.
The result is stored once in the cache as verified arrays (``explorer.data.arrays``).
"""

from __future__ import annotations

import hashlib
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from explorer.data.arrays import write_arrays
from explorer.data.specs import MAX_SIDE, MIN_SIDE, SPECS, DatasetSpec, data_root
from explorer.errors import DatasetError, ImageError
from explorer.pictures.convention import Convention
from explorer.pictures.photos import photo_array
from explorer.pictures.reading import UPLOAD_TYPES, open_image

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
MAX_IMAGES = 200_000


@dataclass
class FolderImport:
    """What ``add_folder`` did: the dataset's folder, its counts, and every file skipped."""

    folder: Path
    train: int
    test: int
    classes: tuple[str, ...]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (relative path, why)


def parse_size(text: str) -> tuple[int, int]:
    """'32' -> (32, 32); '48x32' -> (48, 32), height by width.

    Raises:
        ValueError: not a size, or a side outside MIN_SIDE to MAX_SIDE pixels.
    """
    parts = str(text).lower().replace(" ", "").split("x")
    # ASCII digits only, as the app's address takes them: int() also reads '٣٢', '３２' and '4_8'
    if not all(p.isascii() and p.isdigit() for p in parts):
        raise ValueError(f"size must be like 32 or 48x32 (height x width), not {text!r}")
    sides = [int(p) for p in parts]
    if len(sides) not in (1, 2) or not all(MIN_SIDE <= s <= MAX_SIDE for s in sides):
        raise ValueError(f"size must be one or two sides of {MIN_SIDE} to {MAX_SIDE} pixels, not {text!r}")
    return (sides[0], sides[-1])


TEST_FRACTION_RULE = "between 0 and 1, both excluded (0.1: a tenth of the images are test images)"


def check_test_fraction(value: float) -> float:
    """``value``, the share of a folder's images in its test split, if it lies strictly between 0
    and 1 (each split needs images).

    Raises:
        DatasetError: said as ``data add --test-fraction`` and the Train page's form say it.
    """
    if not 0 < value < 1:
        raise DatasetError(f"the test fraction must lie {TEST_FRACTION_RULE}, not {value:g}")
    return value


def _in_test(relative: str, test_fraction: float) -> bool:
    digest = hashlib.sha256(relative.encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < test_fraction


def _files(root: Path) -> list[Path]:
    suffixes = {f".{t}" for t in UPLOAD_TYPES}
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)


def add_folder(
    name: str,
    path: str | Path,
    size: str | int = 32,
    grey: bool = False,
    fit: str = "crop",
    test_fraction: float = 0.1,
    replace: bool = False,
    progress=None,
) -> FolderImport:
    """Import the images under ``path`` as dataset ``name`` (see the module's docstring).
    ``progress``, if given, is called once per file.

    Raises:
        DatasetError: a bad name, size, fit or fraction; a name taken; a folder that does not
            exist or holds fewer than two readable images. Nothing is written then.
    """
    root, dest, (height, width) = _check_request(name, path, size, fit, test_fraction, replace)
    files = _files(root)
    if len(files) > MAX_IMAGES:
        raise DatasetError(f"{root} holds {len(files):,} images, more than {MAX_IMAGES:,}; use a subset")
    nested = any(f.parent != root for f in files)
    if nested:
        classes = tuple(sorted({f.relative_to(root).parts[0] for f in files if f.parent != root}))
    else:
        classes = (root.name or "images",)
    shape = (1 if grey else 3, height, width)
    images, labels, test, skipped = _read(
        files, root, classes if nested else None, shape, fit, test_fraction, progress
    )
    if len(images) < 2:
        raise DatasetError(
            f"{root} has {len(images)} readable image(s) ({len(skipped)} skipped); a dataset needs at least 2"
            + (f". Skipped: {skipped_summary(skipped)}" if skipped else "")
        )
    # a tiny folder: still one image on each side, the split's own side keeping the rest (all in
    # the test split gave one test image and the rest to train, as a fraction near 0 does)
    if test.all():
        test[0] = False
    elif not test.any():
        test[0] = True
    kind, how = ("grey" if grey else "colour"), ("centre-cropped" if fit == "crop" else "padded")
    convention = Convention(
        "photo",
        box=max(height, width),
        fit=fit,
        summary=f"{kind}, {how} to {height}x{width} and resized, as the images of {name}",
    )
    described = DatasetSpec(name, shape, classes, "logistic", False, convention, "image", form="arrays")
    splits = {"train": (images[~test], labels[~test], None), "test": (images[test], labels[test], None)}
    origin = {"folder": str(root.resolve()), "fit": fit, "test_fraction": test_fraction, "skipped": skipped}
    _store(dest, described, splits, origin)
    return FolderImport(dest, int((~test).sum()), int(test.sum()), classes, skipped)


def _check_request(name, path, size, fit, test_fraction, replace) -> tuple[Path, Path, tuple[int, int]]:
    """(the folder of images, the dataset's cache folder, (height, width)); DatasetError when
    any argument is wrong."""
    if not NAME_PATTERN.match(name or "") or name.lower() in {n.lower() for n in SPECS}:
        raise DatasetError(
            f"dataset name {name!r} is not allowed: use letters, digits, '.', '_' and '-' (not "
            f"starting with '.'), and not a built-in dataset's name ({', '.join(SPECS)})"
        )
    try:
        hw = parse_size(size)
    except ValueError as exc:
        raise DatasetError(str(exc)) from None
    if fit not in ("crop", "pad"):
        raise DatasetError(f"fit must be crop or pad, not {fit!r}")
    check_test_fraction(test_fraction)
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DatasetError(f"{root} is not a folder; give the folder that holds the images")
    dest = data_root() / name
    if dest.exists() and not replace:
        raise DatasetError(
            f"a dataset named {name!r} exists already ({dest}); use another name, or replace it "
            "(--replace; on the Train page, tick Replace)"
        )
    return root, dest, hw


def skipped_summary(skipped: list[tuple[str, str]], shown: int = 3) -> str:
    """The files ``skipped`` ((relative path, why) pairs) on one line, grouped by why, most
    first, a few names each: "a.png, b.png, c.png and 13 more: at the top level while the
    classes come from subfolders; notes.txt: ..."."""
    by_reason: dict[str, list[str]] = {}
    for file, why in skipped:
        by_reason.setdefault(why, []).append(file)
    groups = sorted(by_reason.items(), key=lambda item: -len(item[1]))
    return "; ".join(
        f"{', '.join(files[:shown])}{f' and {len(files) - shown} more' if len(files) > shown else ''}: {why}"
        for why, files in groups
    )


def _read(files, root, classes, shape, fit, test_fraction, progress):
    """(images (N, C, H, W) uint8, labels (N,), in the test split (N,) bool, skipped [(file,
    why)]) of the readable files; ``classes`` None: one class."""
    images, labels, tests, skipped = [], [], [], []
    for file in files:
        relative = file.relative_to(root).as_posix()
        if progress is not None:
            progress(1)
        if classes is not None and file.parent == root:
            skipped.append((relative, "at the top level while the classes come from subfolders"))
            continue
        try:
            picture = photo_array(open_image(file), shape, fit)
        except ImageError as exc:
            skipped.append((relative, str(exc).replace(str(file), "the file")))
            continue
        except Exception as exc:  # a decoder's own error on a damaged file
            skipped.append((relative, f"could not be read: {type(exc).__name__}: {exc}"))
            continue
        images.append(np.rint(picture * 255).astype(np.uint8))
        labels.append(0 if classes is None else classes.index(file.relative_to(root).parts[0]))
        tests.append(_in_test(relative, test_fraction))
    stack = np.stack(images) if images else np.zeros((0, *shape), np.uint8)
    return stack, np.array(labels, dtype=np.int64), np.array(tests, dtype=bool), skipped


def _store(dest: Path, described: DatasetSpec, splits: dict, origin: dict) -> None:
    """Write the dataset; a dataset it replaces stays until the new one is complete."""
    if not dest.exists():
        write_arrays(dest, described, splits, origin)
        return
    old = dest.with_name(f".{dest.name}-replaced")
    shutil.rmtree(old, ignore_errors=True)
    dest.rename(old)
    try:
        write_arrays(dest, described, splits, origin)
    except BaseException:
        old.rename(dest)  # the previous dataset comes back
        raise
    shutil.rmtree(old, ignore_errors=True)
