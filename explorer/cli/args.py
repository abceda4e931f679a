"""What the ``vae-explorer`` commands share: a parser whose usage errors are one line, and the
argument types that check a value and say what is allowed."""

from __future__ import annotations

import argparse
import math
from pathlib import Path

EXIT_USAGE, EXIT_ERROR, EXIT_INTERRUPTED = 2, 1, 130
MAX_PICTURES = 10_000  # images in one PNG grid: a 100 x 100 sheet
MAX_GRID = 100  # points per side of the manifold: 10,000 decoded images


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line that points at --help."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def counts(example: str, noun: str = "numbers"):
    """An argparse type for a comma-separated list of positive whole numbers, refused with
    ``example`` and ``noun`` (``"512,512"``, widths: layer widths; ``"3,5"``: latent sizes;
    ``"1000,50000"``: training-set sizes)."""

    def parse(text: str) -> tuple[int, ...]:
        try:
            sizes = tuple(int(s) for s in text.split(","))  # an empty one ("32,,32") is refused too
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {noun} like {example}, got {text!r}") from None
        if not sizes or min(sizes) < 1:
            raise argparse.ArgumentTypeError(f"expected positive {noun} like {example}, got {text!r}")
        return sizes

    return parse


widths = counts("512,512", "widths")  # layer widths such as 512,512


def check_checkpoints(args: argparse.Namespace) -> None:
    """Find every checkpoint a command names (``args.checkpoint``: one or a list of run folders,
    run names or shipped model names) before the command loads torch, which takes a second on a
    2-core CPU: one that is not there is refused at once.

    Raises:
        CheckpointError: a checkpoint that is not there (``explorer.locations.resolve``).
    """
    from explorer.locations import resolve

    named = getattr(args, "checkpoint", None)
    for name in [named] if isinstance(named, str) else named or []:
        resolve(name)


def number(kind: type, low: float | None = None, high: float | None = None, why: str = ""):
    """An argparse type for an int or float within [low, high], saying the bounds when refused."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            what = "a whole number" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"from {low:,g} to {high:,g}" if high is not None else f">= {low:g}"
            raise argparse.ArgumentTypeError(f"must be {bounds}{why}, got {value:,g}")
        return value

    return parse


def positive(kind: type):
    """An int or float > 0."""

    def parse(text: str):
        value = number(kind)(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    return parse


def pictures(low: int) -> callable:
    """How many images fit in one PNG grid."""
    return number(int, low, MAX_PICTURES, f" (one PNG of at most {MAX_PICTURES:,} images)")


def device(text: str) -> str:
    from explorer.config import check_device_name

    try:
        return check_device_name(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def output_png(text: str) -> Path:
    path = Path(text)
    if path.suffix.lower() != ".png":
        raise argparse.ArgumentTypeError(f"the output must be a .png file, got {text!r}")
    return path
