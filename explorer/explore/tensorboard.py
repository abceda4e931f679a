"""Export a model's view of its test set for TensorBoard: the embedding projector's files (the
codes, their labels and a sprite of the images, described by a ``projector_config.pbtxt``
through TensorBoard's own ``ProjectorConfig``) and the run's training curves as scalars
(``torch.utils.tensorboard``). Open with ``tensorboard --logdir DIR`` (the Projector tab for the
codes, Scalars for the curves).

The sprite is what TensorBoard's projector expects (its ``vz-projector`` front end): one PNG of
at most 8192 x 8192 pixels holding every image in a grid, row by row, each in a cell of
``single_image_dim`` = [width, height] pixels, ``sprite width / cell width`` cells a row. Images
of any shape (tall, wide, one or three channels) are centred on black square cells of side
max(H, W), shrunk where the grid would be wider than 8192 pixels, so that the thumbnails keep
their proportions.

The export is written into a temporary folder beside ``DIR`` and renamed into place at the end:
a failed export leaves nothing behind, and a retry starts clean.
"""

from __future__ import annotations

import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from explorer.errors import ExplorerError

CURVES = ("train_loss", "recon", "kl", "test_elbo", "test_recon", "test_bound")  # metrics.jsonl keys
SPRITE_MAX = 8192  # pixels a side: the projector refuses a larger sprite
EMBEDDING_DIR = "codes"  # the projector's files, inside the export's folder


@dataclass
class TensorBoardExport:
    folder: Path
    points: int  # test images in the projector
    scalars: int  # scalar values written
    tag: str  # the embedding's name in the projector
    cell: int = 0  # the side of a sprite cell, pixels


def sprite(images: torch.Tensor, batch: int = 1000) -> tuple[np.ndarray, int]:
    """The projector's sprite of ``images`` (N, C, H, W) in [0, 1], C = 1 or 3: an RGB uint8
    array (rows * S, cols * S, 3) with cols = ceil(sqrt(N)) and rows = ceil(N / cols), image i
    centred on the black square cell at row i // cols, column i % cols; and S, the cell's side:
    max(H, W), or less (area-averaged) where cols * S would pass ``SPRITE_MAX``."""
    n, c, h, w = images.shape
    cols = max(1, math.ceil(math.sqrt(n)))
    rows = max(1, math.ceil(n / cols))
    side = max(1, min(max(h, w), SPRITE_MAX // cols))
    canvas = np.zeros((rows * side, cols * side, 3), dtype=np.uint8)
    for start in range(0, n, batch):
        x = images[start : start + batch].float().clamp(0, 1)
        cells = x.new_zeros((len(x), c, max(h, w), max(h, w)))  # (B, C, M, M), M = max(H, W)
        top, left = (max(h, w) - h) // 2, (max(h, w) - w) // 2
        cells[:, :, top : top + h, left : left + w] = x
        if side != max(h, w):
            cells = F.interpolate(cells, size=(side, side), mode="area")
        pixels = (cells * 255).round().to(torch.uint8).expand(-1, 3, -1, -1).permute(0, 2, 3, 1).numpy()
        for k, cell in enumerate(pixels, start):
            r, q = divmod(k, cols)
            canvas[r * side : (r + 1) * side, q * side : (q + 1) * side] = cell
    return canvas, side


def export_tensorboard(
    checkpoint: str | os.PathLike,
    out: str | os.PathLike,
    limit: int | None = None,
    metrics: list[dict] = (),
) -> TensorBoardExport:
    """Write the codes (posterior means, (N, z)) of the first ``limit`` test images (default: all)
    with their labels and a sprite of the images, and the run's curves from ``metrics`` (the rows
    of its metrics.jsonl: ``train/<key>`` per logging step, ``epoch/<key>`` per epoch, by step),
    into ``out``.

    Raises:
        ExplorerError: TensorBoard is not installed, ``out`` is a file, holds files already or
            cannot be made, ``checkpoint`` cannot be loaded, or its dataset changed since it was
            trained (``DataChanged``). Nothing is left in ``out`` then.
    """
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ExplorerError(
            "the TensorBoard export needs the tensorboard package: pip install tensorboard"
        ) from None
    from explorer.checkpoints import dataset_of, load_checkpoint, read_config, resolve
    from explorer.data.cache import eval_images
    from explorer.data.record import check_trained_data
    from explorer.evaluate import encode_means

    target = Path(out)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ExplorerError(
            f"{target} {'is a file' if not target.is_dir() else 'already holds files'}: export into a new "
            "or empty folder (TensorBoard's projector shows one export per folder)"
        )
    folder = resolve(checkpoint)
    model = load_checkpoint(folder).eval()
    dataset = dataset_of(read_config(folder))
    check_trained_data(folder, dataset)  # the codes of another test set would be said to be its own
    x, labels = eval_images(dataset, "test", binarized=False, limit=limit)
    with torch.no_grad():
        codes = encode_means(model, x)
    tag = f"{folder.name} codes"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.parent / f".{target.name}.export-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
    except OSError as exc:
        raise ExplorerError(f"cannot create {target}: {exc.strerror or exc}") from None
    try:
        cell = _write_projector(tmp, tag, codes, x, labels, dataset)
        scalars = _write_curves(SummaryWriter(str(tmp)), metrics)
        os.replace(tmp, target)  # onto a missing or empty folder: the export appears whole
    except OSError as exc:
        raise ExplorerError(f"could not write the export into {target}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return TensorBoardExport(target, len(codes), scalars, tag, cell)


def _write_curves(writer, metrics: list[dict]) -> int:
    """The run's curves through ``writer`` (closed after): ``train/<key>`` per logging step,
    ``epoch/<key>`` per epoch, against the step. Returns how many scalars were written."""
    try:
        scalars = 0
        for row in metrics:
            kind = "train" if row.get("type") == "step" else "epoch"
            for key in CURVES:
                if isinstance(row.get(key), (int, float)):
                    writer.add_scalar(f"{kind}/{key}", row[key], row["step"])
                    scalars += 1
        return scalars
    finally:
        writer.close()


def _write_projector(logdir: Path, tag: str, codes, images, labels, dataset: str) -> int:
    """The projector's files in ``logdir``: codes/tensors.tsv (N rows of z values),
    codes/metadata.tsv (a label per row; a header row when there is also a class name),
    codes/sprite.png and projector_config.pbtxt. Returns the sprite's cell side (pixels)."""
    from PIL import Image
    from tensorboard.plugins.projector import ProjectorConfig, visualize_embeddings

    from explorer.data.specs import spec

    names = spec(dataset).label_names
    folder = logdir / EMBEDDING_DIR
    folder.mkdir()
    np.savetxt(folder / "tensors.tsv", codes.double().cpu().numpy(), fmt="%.8g", delimiter="\t")
    clean = [str(n).replace("\t", " ").replace("\n", " ") for n in names or ()]
    rows = (
        ["label\tname", *(f"{int(k)}\t{clean[int(k)]}" for k in labels)]
        if names
        else [str(int(k)) for k in labels]
    )
    (folder / "metadata.tsv").write_text("\n".join(rows) + "\n")
    canvas, cell = sprite(images)
    Image.fromarray(canvas).save(folder / "sprite.png")
    config = ProjectorConfig()
    embedding = config.embeddings.add()
    embedding.tensor_name = tag
    embedding.tensor_shape.extend(list(codes.shape))
    embedding.tensor_path = f"{EMBEDDING_DIR}/tensors.tsv"
    embedding.metadata_path = f"{EMBEDDING_DIR}/metadata.tsv"
    embedding.sprite.image_path = f"{EMBEDDING_DIR}/sprite.png"
    embedding.sprite.single_image_dim.extend([cell, cell])  # [width, height]
    visualize_embeddings(str(logdir), config)
    return cell
