"""Latent space page interactions, timed through Streamlit's AppTest on this machine: the page's
rerun after a click on the scatter (image, reconstruction, posterior, nearest neighbours in latent
and pixel space) and after a box selection of 500 points (gallery, figures, downloads), against
the 1.5 s target, for each model given. The first visit (encoding the test set) is left out.

    python bench/explore.py [--models mnist-z2 mnist-z20] [--clicks 10]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_S = 1.5


def reruns(model: str, state_key: str, values: list, settle: int = 1) -> list[float]:
    """Seconds of each page rerun after ``state_key`` is set to each of ``values`` in turn."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600).switch_page("pages/2_Latent_space.py")
    at.session_state["model"] = model
    at.run()  # the first visit: encodes the test set (cached from here on)
    out = []
    for i, value in enumerate(values):
        at.session_state[state_key] = value
        start = time.perf_counter()
        at.run()
        if i >= settle:
            out.append(time.perf_counter() - start)
        assert not at.exception, at.exception
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=["mnist-z2", "mnist-z20"])
    p.add_argument("--clicks", type=int, default=10)
    args = p.parse_args()
    host = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    print(f"Latent space page reruns through AppTest, {host}; target {TARGET_S} s\n")
    print("| model | action | p50 s | max s | within target |")
    print("|---|---|---|---|---|")
    for model in args.models:
        clicks = reruns(model, "picked", [(model, 100 + 37 * i) for i in range(args.clicks + 1)])
        boxes = reruns(model, "selected", [(model, list(range(7 * i, 7 * i + 500))) for i in range(4)])
        for action, seconds in (("click a dot", clicks), ("select 500 dots", boxes)):
            ok = "yes" if max(seconds) <= TARGET_S else "no"
            print(f"| {model} | {action} | {statistics.median(seconds):.3f} | {max(seconds):.3f} | {ok} |")


if __name__ == "__main__":
    main()
