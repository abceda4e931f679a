"""Where training and evaluation run: device names, the device picked for "auto", and whether a
training step fits the memory free there. The names themselves are checked in
``explorer.config`` (pure Python: settings load no torch); torch is imported only to look at the
machine."""

from __future__ import annotations

from explorer.config import check_device_name
from explorer.errors import ExplorerError


def pick_device(name: str = "auto"):
    """ "auto": cuda, then mps, then cpu; otherwise the named device, checked to exist here.

    Raises:
        ExplorerError: an unknown name, or a device this machine does not have.
    """
    import torch

    try:
        check_device_name(name)
    except ValueError as exc:
        raise ExplorerError(str(exc)) from None
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ExplorerError(f"--device {name} was asked for but no CUDA GPU is available; use cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ExplorerError(
            f"--device {name}: this machine has {torch.cuda.device_count()} CUDA GPU(s), numbered from 0"
        )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ExplorerError("--device mps was asked for but MPS is not available; use cpu")
    return device


def available_memory(device) -> int | None:
    """Bytes free for tensors on ``device``: the GPU's free memory, or the machine's available
    memory (Linux's MemAvailable); None where it cannot be told."""
    if device.type == "cuda":
        import torch

        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def step_memory(model_config, cfg) -> int:
    """Rough bytes one training step needs (ModelConfig, TrainConfig): the activations of L (or K)
    decoder passes over a minibatch of M images and their gradients, float32, with a third again
    for the backward pass's temporaries. An estimate to refuse what cannot fit, not an exact
    figure."""
    return 4 * 3 * cfg.samples * cfg.batch_size * decoder_floats(model_config)


def decoder_floats(model_config) -> int:
    """Rough floats one decoder pass holds per latent draw (ModelConfig): its layers' outputs,
    the output parameters and the per-pixel loss terms."""
    out = model_config.pixels * (1 if model_config.likelihood == "bernoulli" else 2)
    per_draw = sum(model_config.hidden) + model_config.latent_dim + 3 * out
    if model_config.arch == "conv":  # the decoder's feature maps, each layer twice the last's side
        _, h, w = model_config.image_shape
        per_draw += sum(c * (h >> (i + 1)) * (w >> (i + 1)) for i, c in enumerate(model_config.channels))
    return per_draw


def check_step_fits(model_config, cfg, device) -> None:
    """Raise ExplorerError, before anything is written, when one step would need more than 60%
    of the memory free on ``device``; say how many samples would fit."""
    free = available_memory(device)
    need = step_memory(model_config, cfg)
    if free is None or need <= 0.6 * free:
        return
    most = max(1, int(0.6 * free * cfg.samples / need))
    raise ExplorerError(
        f"--samples {cfg.samples} with --batch-size {cfg.batch_size} needs about {need / 2**30:.1f} GB for "
        f"one step (the decoder's activations for every draw of every image), and {device} has "
        f"{free / 2**30:.1f} GB free: use --samples {most} or fewer, or a smaller --batch-size."
    )


def flush_denormals() -> bool:
    """Treat float32 numbers below 1.2e-38 (denormals) as zero on the CPU: the calling thread's
    FTZ and DAZ flags, which the threads it starts afterwards (PyTorch's OpenMP pool, started by
    the first parallel operation) inherit; threads already running keep their mode, which is why
    ``explorer.train.loop`` calls this when it is imported. Returns False where the CPU has no such
    mode.

    Why: Adam's running averages of gradients that are rarely non-zero (MNIST's near-border pixels)
    decay into the denormal range, and x86 CPUs work on denormals many times more slowly (what it
    saves a training step and the fused Adam update: bench/README.md, denormals). What is lost:
    values below 1.2e-38, 38 orders of magnitude below any parameter or gradient that moves a
    figure. CUDA and MPS are unaffected.
    """
    import torch

    return bool(torch.set_flush_denormal(True))
