"""What one upload costs: seconds and peak extra memory of ``preprocess_image`` for a small file
of a huge picture (the 6300x6300 RGBA case), the largest pictures the limits allow (40 M pixels:
a JPEG photo, a grey PNG scan, a palette GIF) and ordinary uploads, each in a fresh process.

    python bench/uploads.py [--repeats 3] [--dataset mnist]

Peak extra memory is the growth of the process's peak resident set (``ru_maxrss``) over what it
had after importing and preparing one small picture: what the server grows by for the upload.
Target: at most 200 MB extra and 2 s per upload of up to 40 M pixels.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests" / "cases"
TARGET_MB, TARGET_S = 200, 2.0

CHILD = """
import io, json, resource, sys, time
sys.path.insert(0, {root!r})
from explorer.data.uploads import preprocess_image
small = io.BytesIO()
from PIL import Image
im = Image.new("L", (64, 64), 255); im.paste(0, (28, 10, 36, 54)); im.save(small, "PNG")
preprocess_image(small.getvalue(), {dataset!r})
data = open({path!r}, "rb").read()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
preprocess_image(data, {dataset!r})
seconds = time.perf_counter() - start
extra = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
print(json.dumps({{"seconds": seconds, "extra_mb": extra}}))
"""


def synthetic(folder: Path) -> dict[str, Path]:
    """The largest pictures the limits allow: a digit-like stroke on paper, 40 M pixels, saved
    as a photo (JPEG, with a photo's grain), a scan (grey PNG) and a palette GIF (both clean:
    grain would make them larger than an upload may be)."""
    w, h = 7300, 5470  # 39.9 M pixels, under reading.MAX_PIXELS
    image = Image.new("L", (w, h), 235)
    ImageDraw.Draw(image).line([(3000, 1500), (4200, 1500), (3400, 4000)], fill=20, width=260)
    noise = np.random.default_rng(0).normal(0, 4, (h, w)).astype(np.int16)
    grainy = Image.fromarray(np.clip(np.asarray(image, np.int16) + noise, 0, 255).astype(np.uint8))
    out = {}
    for name, fmt, pic in (("40mp-photo.jpg", "JPEG", grainy.convert("RGB")), ("40mp-scan.png", "PNG", image),
                           ("40mp-palette.gif", "GIF", image.convert("P"))):  # fmt: skip
        out[name] = folder / name
        pic.save(out[name], fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return out


def measure(path: Path, dataset: str) -> dict:
    code = CHILD.format(root=str(ROOT), path=str(path), dataset=dataset)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--dataset", default="mnist")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        files = {"huge-6300px-rgba.png": TESTS / "huge-6300px-rgba.png", **synthetic(Path(tmp)),
                 "three-shadow.jpg (a phone photo)": TESTS / "three-shadow.jpg",
                 "seven-sheet-clean.png": TESTS / "seven-sheet-clean.png"}  # fmt: skip
        print(f"preprocess_image(..., {args.dataset!r}), {args.repeats} fresh processes per file; "
              f"target <= {TARGET_MB} MB extra and <= {TARGET_S:g} s\n")  # fmt: skip
        print("| upload | pixels | file | seconds, median (min-max) | peak extra MB, median (max) |")
        print("|---|---|---|---|---|")
        for name, path in files.items():
            if not path.is_file():
                continue
            with Image.open(path) as im:
                size = f"{im.width}x{im.height} {im.mode}"
            runs = [measure(path, args.dataset) for _ in range(args.repeats)]
            s = [r["seconds"] for r in runs]
            mb = [r["extra_mb"] for r in runs]
            print(f"| {name} | {size} | {path.stat().st_size / 1024:,.0f} KB | {statistics.median(s):.2f} "
                  f"({min(s):.2f}-{max(s):.2f}) | {statistics.median(mb):.0f} ({max(mb):.0f}) |")  # fmt: skip


if __name__ == "__main__":
    main()
