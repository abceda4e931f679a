"""The curves of the paper's experiments as plain data: what ``vae-explorer paper ... --json``
prints, what the repository ships and what the Paper page draws.

A curve is ``{"dataset", "nz", "algorithm", "points": [[samples, train_bound, test_bound], ...]}``
(bounds in nats per datapoint), plus where it came from (``"source"``: "shipped" or the run
folder) and its run's settings (``"lr"``, ``"seconds"``: training time to its last point).
``--json`` adds ``"columns"`` (POINT_COLUMNS; Figure 3's, FIGURE3_COLUMNS: log p(x) by Appendix D)
to each, so that the output names its own triples.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from explorer.errors import ExplorerError

POINT_COLUMNS = ("samples", "train_bound_nats", "test_bound_nats")  # what each point holds, in order
# Figure 3's points are the marginal log-likelihood by the paper's Appendix D estimator, not a bound
FIGURE3_COLUMNS = ("samples", "train_log_px_nats", "test_log_px_nats")
SHIPPED_DIR = "paper"  # under the pretrained folder: the shipped curves, one JSON file per figure


def read_bound_points(metrics: Path) -> list[list[float]]:
    """The [samples, train_bound, test_bound] points of a run's metrics.jsonl, in order (a line
    that is cut or not JSON is skipped, as the app reads metrics)."""
    points = []
    try:
        lines = metrics.read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and row.get("type") == "bound":
            points.append([int(row["samples"]), float(row["train_bound"]), float(row["test_bound"])])
    return points


def shipped_path(figure: str, pretrained: Path | None = None) -> Path:
    """The shipped curves of ``figure`` ("figure2", "figure3")."""
    if pretrained is None:
        from explorer.checkpoints import pretrained_root

        pretrained = pretrained_root()
    return Path(pretrained) / SHIPPED_DIR / f"{figure}.json"


def read_curves(path: Path) -> list[dict]:
    """The curves stored in ``path`` ([] when there is no such file).

    Raises:
        ExplorerError: the file is not a list of curves.
    """
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise ExplorerError(f"{path} is not a file of curves ({exc}); restore it from git") from None
    if not isinstance(data, list) or not all(isinstance(c, dict) and "points" in c for c in data):
        raise ExplorerError(f"{path} is not a list of curves; restore it from git")
    return data


def write_curves(path: Path, curves: list[dict]) -> None:
    """Write ``curves`` to ``path`` atomically (a temporary file, synced, then renamed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(curves, f, indent=1)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # a file of the repository, readable by all (mkstemp makes it private)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def merge_curves(old: list[dict], new: list[dict], keys: tuple[str, ...]) -> list[dict]:
    """``old`` with every curve of ``new`` in place of the old one with the same ``keys`` values."""
    key = lambda c: tuple(c.get(k) for k in keys)  # noqa: E731
    replaced = {key(c): c for c in new}
    kept = [c for c in old if key(c) not in replaced]
    return sorted(kept + list(replaced.values()), key=lambda c: tuple(str(c.get(k)) for k in keys))


def value_at(points: list[list[float]], samples: float, column: int) -> float | None:
    """The curve's value in ``column`` (1: train, 2: test) at ``samples``, interpolated linearly in
    log(samples) between the two points around it; None outside the curve."""
    import math

    for (s0, *v0), (s1, *v1) in zip(points, points[1:]):
        if s0 <= samples <= s1:
            t = 0.0 if s1 == s0 else (math.log(samples) - math.log(s0)) / (math.log(s1) - math.log(s0))
            return v0[column - 1] + t * (v1[column - 1] - v0[column - 1])
    if points and points[-1][0] == samples:
        return points[-1][column]
    return None
