"""Checkpoints: the one place that saves and loads models (trainer, CLI and every page use it).

A checkpoint is a folder: ``model.safetensors`` (the weights, with the model config, epoch, step
and the sha256 of its tensor data in its metadata: self-describing and self-verifying),
``train_state.safetensors`` (optimiser and random states for ``--resume``; not shipped) and
``config.json`` (a readable copy of model and training config, epoch, step, best test ELBO,
library version and each file's sha256).

Nothing is ever unpickled: safetensors holds only tensors and strings. Every file is written to a
temporary name, flushed and renamed over the old one, so a crash mid-write leaves the previous
checkpoint intact; the previous training state stays as ``train_state.prev.safetensors``, so a
crash between two renames still leaves a consistent (model, training state) pair.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from explorer.errors import CheckpointError
from explorer.locations import (  # noqa: F401  (where checkpoints are: here too, as before)
    MODEL_FILE,
    PICKLE_SUFFIXES,
    pretrained_names,
    pretrained_root,
    resolve,
    runs_root,
)
from explorer.model import VAE, ModelConfig
from explorer.version import __version__

STATE_FILE = "train_state.safetensors"
PREV_STATE_FILE = "train_state.prev.safetensors"
CONFIG_FILE = "config.json"
IMPLEMENTATION_FLAGS = ("fused", "foreach", "capturable", "differentiable")


# Writing


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one: a
    temporary file, flushed and synced to disk, renamed over ``path``, and the folder synced."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _data_region(blob: bytes) -> bytes:
    n = int.from_bytes(blob[:8], "little")
    return blob[8 + n :]


def _serialise(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> bytes:
    """safetensors bytes whose metadata carries the sha256 of the tensor data."""
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    digest = hashlib.sha256(_data_region(st_save(tensors, metadata=metadata))).hexdigest()
    return st_save(tensors, metadata={**metadata, "data_sha256": digest})


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Flatten an optimiser's state_dict into tensors + a JSON-able remainder."""
    sd = optimizer.state_dict()
    tensors, plain = {}, {}
    for idx, state in sd["state"].items():
        for key, value in state.items():
            if torch.is_tensor(value):
                tensors[f"optim.{idx}.{key}"] = value
            else:
                plain[f"{idx}.{key}"] = value
    groups = [{k: (v.item() if torch.is_tensor(v) else v) for k, v in g.items()} for g in sd["param_groups"]]
    return tensors, {"param_groups": groups, "plain": plain}


def save_checkpoint(
    folder: str | os.PathLike,
    model: VAE,
    *,
    epoch: int = 0,
    step: int = 0,
    train_config: dict | None = None,
    best_test_elbo: float | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    rng: dict[str, torch.Tensor] | None = None,
    half: bool = False,
) -> Path:
    """Write a checkpoint into ``folder`` (created if needed) and return it. ``half``: the weights
    as float16, half the file (they load into the float32 network, rounded to 11 bits)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    progress = {"epoch": int(epoch), "step": int(step)}
    meta = {
        "format": "vae-explorer",
        "version": __version__,
        "model_config": model.config.to_json(),
        "progress": json.dumps(progress),
    }
    if train_config and train_config.get("dataset"):
        meta["dataset"] = str(train_config["dataset"])
    weights = {k: v.half() if half and v.is_floating_point() else v for k, v in model.state_dict().items()}
    model_blob = _serialise(weights, meta)
    if optimizer is not None:
        tensors, plain = _optimizer_tensors(optimizer)
        for name, value in (rng or {}).items():
            tensors[f"rng.{name}"] = value
        state_meta = {
            "progress": json.dumps(progress),
            "optimizer": json.dumps(plain),
            "optimizer_class": type(optimizer).__name__,
        }
        state_path = folder / STATE_FILE
        state_blob = _serialise(tensors, state_meta)
        had_state = state_path.exists()
        if had_state:
            os.replace(state_path, folder / PREV_STATE_FILE)
    try:
        if optimizer is not None:
            atomic_write(state_path, state_blob)
        atomic_write(folder / MODEL_FILE, model_blob)
    except BaseException:
        if optimizer is not None:  # (a full disk) no training state is left without its weights
            _undo_state(folder, had_state)
        raise
    files = {MODEL_FILE: {"sha256": hashlib.sha256(model_blob).hexdigest(), "bytes": len(model_blob)}}
    config = {
        "model": model.config.to_dict(),
        "train": train_config,
        **progress,
        "best_test_elbo": best_test_elbo,
        "version": __version__,
        "files": files,
    }
    atomic_write(folder / CONFIG_FILE, (json.dumps(config, indent=2) + "\n").encode())
    return folder


def _undo_state(folder: Path, had_state: bool) -> None:
    """After a checkpoint's weights could not be written: the training state goes back to the one
    beside the weights on disk (the previous one, or none at the first checkpoint: a full disk
    left a 2.5 MB train_state.safetensors of a run the message said had no checkpoint, and the
    retry moved it aside as the previous state)."""
    state, prev = folder / STATE_FILE, folder / PREV_STATE_FILE
    try:
        if had_state:
            os.replace(prev, state)
        else:
            state.unlink(missing_ok=True)
    except OSError:
        pass  # what is left is read as before: train_state, then train_state.prev


# Reading


def _read_verified(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and metadata of a safetensors file written by ``_serialise``, verified."""
    if not path.is_file():
        raise CheckpointError(f"{path} is missing")
    blob = path.read_bytes()
    if blob[:2] == b"PK" or blob[:1] == b"\x80":
        raise CheckpointError(
            f"{path} is a pickle/zip file, not safetensors; refusing to load it (it could run code)"
        )
    try:
        n = int.from_bytes(blob[:8], "little")
        header = json.loads(blob[8 : 8 + n])
        tensors = st_load(blob)
    except (SafetensorError, ValueError, UnicodeDecodeError) as exc:
        expected = _expected_size(blob)
        size = f" (read {len(blob):,} bytes of {expected:,})" if expected else ""
        raise CheckpointError(
            f"{path} is truncated or corrupted{size}: {exc}. Delete the folder, or resume the "
            "run from an intact copy."
        ) from None
    metadata = header.get("__metadata__") or {}
    expected = metadata.get("data_sha256")
    if expected is None:
        raise CheckpointError(f"{path} was not written by VAE Explorer (no data checksum)")
    if hashlib.sha256(_data_region(blob)).hexdigest() != expected:
        raise CheckpointError(
            f"{path} is corrupted: its tensor data does not match its sha256 checksum. "
            "Delete it or restore it from an intact copy."
        )
    return tensors, metadata


def _expected_size(blob: bytes) -> int | None:
    try:
        n = int.from_bytes(blob[:8], "little")
        header = json.loads(blob[8 : 8 + n])
        end = max(v["data_offsets"][1] for k, v in header.items() if k != "__metadata__")
        return 8 + n + end
    except Exception:
        return None


def read_config(path_or_name: str | os.PathLike) -> dict:
    """config.json of a checkpoint (model, train, epoch, step, best_test_elbo, ...)."""
    folder = resolve(path_or_name)
    try:
        return json.loads((folder / CONFIG_FILE).read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{folder / CONFIG_FILE} is missing") from None
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{folder / CONFIG_FILE} is not valid JSON: {exc}") from None


def dataset_of(config: dict) -> str:
    """The dataset a checkpoint was trained on, from its config.json (MNIST when unrecorded)."""
    return (config.get("train") or {}).get("dataset", "mnist")


def load_checkpoint(path_or_name: str | os.PathLike, device: str | torch.device = "cpu") -> VAE:
    """The VAE in a checkpoint folder or shipped model (e.g. ``"mnist-z2"``), in eval mode.

    Never executes code from the file. Raises CheckpointError when the file is missing,
    truncated, corrupted, or its weights do not match its config.
    """
    folder = resolve(path_or_name)
    tensors, metadata = _read_verified(folder / MODEL_FILE)
    try:
        config = ModelConfig.from_dict(json.loads(metadata["model_config"]))
    except (KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{folder / MODEL_FILE} has no usable model config: {exc}") from None
    _check_tensors(config, tensors, folder / MODEL_FILE)  # before the network is built
    _check_record(folder, config, metadata)
    model = VAE(config)
    model.load_state_dict(tensors)
    model.progress = json.loads(metadata.get("progress", "{}"))
    return model.to(device).eval()


def checkpoint_progress(folder: str | os.PathLike) -> dict:
    """The epoch and step a run folder's checkpoint was saved at, read from its file's header
    alone (safetensors' ``safe_open``: no tensor is read) as {"epoch": int, "step": int}; {} where
    there is none or it cannot be read."""
    from safetensors import safe_open

    try:
        with safe_open(str(Path(folder) / MODEL_FILE), "pt") as f:
            progress = json.loads((f.metadata() or {}).get("progress", "{}"))
        return {k: int(progress[k]) for k in ("epoch", "step") if k in progress}
    except (OSError, ValueError, TypeError, SafetensorError):
        return {}


def _check_record(folder: Path, config: ModelConfig, metadata: dict[str, str]) -> None:
    """Raise CheckpointError when config.json (if there is one) tells another story than the
    weights' own record: another network, another dataset, or an image shape that is not its
    dataset's. The weights' record is what loads; a config.json edited by hand would otherwise
    be silently ignored by some commands and obeyed by others."""
    from explorer.data.specs import SPECS, spec

    try:
        record = json.loads((folder / CONFIG_FILE).read_text())
    except FileNotFoundError:
        return
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{folder / CONFIG_FILE} is not valid JSON: {exc}") from None
    try:
        described = ModelConfig.from_dict(record["model"]).to_dict()
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{folder / CONFIG_FILE} has no usable model settings: {exc}") from None
    differ = [k for k, v in config.to_dict().items() if described.get(k) != v and k != "extra"]
    if differ:
        raise CheckpointError(
            f"{folder / CONFIG_FILE} does not match {MODEL_FILE}: they differ in "
            + ", ".join(f"{k} ({described.get(k)} against {config.to_dict()[k]})" for k in differ)
            + ". Restore config.json, or delete it to go by the weights' own record."
        )
    dataset = (record.get("train") or {}).get("dataset")  # None: not recorded (a bare checkpoint)
    if dataset is None:
        return
    if metadata.get("dataset") and metadata["dataset"] != dataset:
        raise CheckpointError(
            f"{folder / CONFIG_FILE} says the model was trained on {dataset}, its weights on "
            f"{metadata['dataset']}; restore config.json"
        )
    try:
        shape = spec(dataset).image_shape
    except ValueError:
        raise CheckpointError(
            f"{folder} was trained on the dataset {dataset!r}, which is not in the dataset cache; add "
            f"its folder again (vae-explorer data add {dataset} PATH, with the same size) or pick "
            "another model"
        ) from None
    if tuple(config.image_shape) != shape:
        c, h, w = config.image_shape
        what = "the checkpoint's record is damaged"
        if dataset not in SPECS:  # an added folder, added again with another size
            what = f"was the dataset added again? Add it with --size {h}x{w}" + ("" if c == 3 else " --grey")
        raise CheckpointError(
            f"{folder / MODEL_FILE}: the model's images are {tuple(config.image_shape)}, but "
            f"{dataset}'s are {shape}; {what}"
        )


def expected_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """The shape of every tensor of a VAE with ``config``, worked out on PyTorch's "meta" device:
    no memory is allocated, however large the config claims the network is."""
    with torch.device("meta"):
        return {name: tuple(t.shape) for name, t in VAE(config).state_dict().items()}


def _check_tensors(config: ModelConfig, tensors: dict[str, torch.Tensor], path: Path) -> None:
    """Raise CheckpointError unless the file's tensors are the ones ``config`` describes, with
    finite values, before a byte of the network is allocated."""
    expected = expected_shapes(config)
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"{path} does not match its config: missing tensors {missing or 'none'}, "
            f"unexpected tensors {unexpected or 'none'}"
        )
    for name, shape in expected.items():
        if tuple(tensors[name].shape) != shape:
            raise CheckpointError(
                f"{path} does not match its config: tensor {name} has shape "
                f"{tuple(tensors[name].shape)} in the file, the config expects {shape}"
            )
    broken = [name for name, t in tensors.items() if not bool(torch.isfinite(t).all())]
    if broken:
        raise CheckpointError(
            f"{path} holds weights that are not finite ({', '.join(broken)}): the run diverged. "
            "Resume from an earlier checkpoint or train again with a lower learning rate."
        )


def load_training_state(
    folder: str | os.PathLike, optimizer: torch.optim.Optimizer, step: int
) -> dict[str, torch.Tensor]:
    """Restore ``optimizer`` from the training state saved at ``step``; return the RNG tensors.

    Looks in train_state.safetensors, then train_state.prev.safetensors (a crash between the
    renames of a save can leave the newer state beside the older model).
    """
    folder = Path(folder)
    found = []
    for name in (STATE_FILE, PREV_STATE_FILE):
        if not (folder / name).is_file():
            continue
        tensors, metadata = _read_verified(folder / name)
        saved_step = json.loads(metadata["progress"])["step"]
        found.append(f"{name} (step {saved_step})")
        if saved_step != step:
            continue
        plain = json.loads(metadata["optimizer"])
        state: dict[int, dict] = {}
        for key, value in tensors.items():
            if key.startswith("optim."):
                _, idx, field = key.split(".", 2)
                state.setdefault(int(idx), {})[field] = value
        for key, value in plain["plain"].items():
            idx, field = key.split(".", 1)
            state.setdefault(int(idx), {})[field] = value
        # How the update is computed (fused, foreach, capturable) belongs to this machine, not
        # to the file: a run saved on one device must resume on another.
        groups = [
            {**saved, **{k: now[k] for k in IMPLEMENTATION_FLAGS if k in now}}
            for saved, now in zip(plain["param_groups"], optimizer.param_groups)
        ]
        try:
            optimizer.load_state_dict({"state": state, "param_groups": groups})
        except (ValueError, KeyError) as exc:
            raise CheckpointError(f"{folder / name}: optimiser state does not fit: {exc}") from None
        return {k[4:]: v for k, v in tensors.items() if k.startswith("rng.")}
    raise CheckpointError(
        f"cannot resume {folder}: no training state for step {step} "
        f"(found: {', '.join(found) or 'none'}); start a new run instead"
    )
