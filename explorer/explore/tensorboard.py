"""Export a model's view of its test set for TensorBoard: the embedding projector's files (the
codes, their labels and a sprite of the images, through ``torch.utils.tensorboard``'s
``add_embedding``) and the run's training curves as scalars. Open with
``tensorboard --logdir DIR`` (the Projector tab for the codes, Scalars for the curves)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from explorer.errors import ExplorerError

CURVES = ("train_loss", "recon", "kl", "test_elbo", "test_recon", "test_bound")  # metrics.jsonl keys


@dataclass
class TensorBoardExport:
    folder: Path
    points: int  # test images in the projector
    scalars: int  # scalar values written
    tag: str  # the embedding's name in the projector


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
            cannot be made, or ``checkpoint`` cannot be loaded.
    """
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ExplorerError(
            "the TensorBoard export needs the tensorboard package: pip install tensorboard"
        ) from None
    from explorer.checkpoints import dataset_of, load_checkpoint, read_config, resolve
    from explorer.data.cache import eval_images
    from explorer.data.specs import spec
    from explorer.evaluate import encode_means

    target = Path(out)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ExplorerError(
            f"{target} {'is a file' if not target.is_dir() else 'already holds files'}: export into a new "
            "or empty folder (TensorBoard's projector shows one export per folder)"
        )
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExplorerError(f"cannot create {target}: {exc.strerror or exc}") from None
    folder = resolve(checkpoint)
    model = load_checkpoint(folder).eval()
    dataset = dataset_of(read_config(folder))
    x, labels = eval_images(dataset, "test", binarized=False, limit=limit)
    with torch.no_grad():
        codes = encode_means(model, x)
    names = spec(dataset).label_names
    header = ["label", "name"] if names else None
    metadata = [[str(int(k)), names[int(k)]] for k in labels] if names else [str(int(k)) for k in labels]
    tag = f"{folder.name} codes"
    writer = SummaryWriter(str(out))
    try:
        writer.add_embedding(codes, metadata=metadata, metadata_header=header, label_img=x, tag=tag)
        scalars = 0
        for row in metrics:
            kind = "train" if row.get("type") == "step" else "epoch"
            for key in CURVES:
                if isinstance(row.get(key), (int, float)):
                    writer.add_scalar(f"{kind}/{key}", row[key], row["step"])
                    scalars += 1
    finally:
        writer.close()
    return TensorBoardExport(Path(out), len(codes), scalars, tag)
