"""``vae-explorer paper``: the paper's experiments, reproduced (``explorer.paper``)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from explorer.cli.args import EXIT_INTERRUPTED, Parser, counts, device, number
from explorer.config import DEVICES
from explorer.errors import ExplorerError

MAX_SAMPLES = 10**9


def add_paper_parser(sub) -> None:
    p = sub.add_parser("paper", help="reproduce the paper's experiments (Figure 2: AEVB against wake-sleep)")
    psub = p.add_subparsers(dest="figure", required=True, parser_class=Parser, metavar="FIGURE")
    f = psub.add_parser(
        "figure2",
        help="AEVB against the wake-sleep algorithm on the paper's settings, every latent size",
        description="Trains each panel's AEVB and wake-sleep runs in turn on the paper's settings "
        "(one tanh layer of 500 units for MNIST, 200 for Frey Face; N(0, 0.01) initialisation; "
        "Adagrad with its step size chosen from 0.01, 0.02, 0.1; M = 100, L = 1; weight decay as "
        "the prior on theta), evaluating the bound at 8 log-spaced sample counts per decade. "
        "Stopped (Ctrl-C), the same command continues where it stopped.",
    )
    f.add_argument("--dataset", default="mnist", choices=("mnist", "frey-face"))
    f.add_argument(
        "--nz", type=counts("3,5"), default=None, help="latent sizes, e.g. 3,5 (default: the paper's)"
    )
    f.add_argument("--samples", type=number(int, 100_000, MAX_SAMPLES), default=10_000_000,
                   help="training samples per run (the paper's axis ends at 10^8; default 10^7)")  # fmt: skip
    f.add_argument("--runs", type=Path, default=None, help="folder of the runs (default runs/paper/figure2)")
    f.add_argument("--device", type=device, default="auto", help=DEVICES)
    f.add_argument("--json", action="store_true", help="print the curves known (shipped and yours) and exit")
    f.add_argument(
        "--ship",
        action="store_true",
        help="copy your runs' curves into pretrained/paper/figure2.json and exit",
    )
    f.add_argument("--no-progress", action="store_true", help="no progress bars (the stage lines stay)")
    g = psub.add_parser(
        "figure3",
        help="AEVB, wake-sleep and Monte Carlo EM by marginal likelihood (MNIST, N_z = 3)",
        description="Trains AEVB, wake-sleep and Monte Carlo EM (HMC) on the paper's Figure 3 settings "
        "(784-100-3 tanh, N_train 1,000 and 50,000), scoring the marginal likelihood with the paper's "
        "Appendix D estimator at 4 log-spaced sample counts per decade. Resumable as figure2.",
    )
    g.add_argument(
        "--n-train", type=counts("1000,50000"), default=None, help="training-set sizes (default 1000,50000)"
    )
    g.add_argument("--algorithms", default="aevb,wake-sleep,mcem", help="which to run, comma-separated")
    g.add_argument("--samples", type=number(int, 10_000, MAX_SAMPLES), default=1_000_000,
                   help="training samples per run (the paper's: 6x10^7; default 10^6)")  # fmt: skip
    for a in (g,):
        a.add_argument(
            "--runs", type=Path, default=None, help="folder of the runs (default runs/paper/figure3)"
        )
        a.add_argument("--device", type=device, default="auto", help=DEVICES)
        a.add_argument(
            "--json", action="store_true", help="print the curves known (shipped and yours) and exit"
        )
        a.add_argument(
            "--ship", action="store_true", help="copy your runs' curves into pretrained/paper/ and exit"
        )
        a.add_argument("--no-progress", action="store_true", help="no progress bars (the stage lines stay)")


def cmd_paper(args) -> int | None:
    from explorer.paper import figure3
    from explorer.paper.curves import (
        FIGURE3_COLUMNS,
        POINT_COLUMNS,
        merge_curves,
        read_curves,
        shipped_path,
        write_curves,
    )
    from explorer.paper.figure2 import Panel, Reproduction, panels
    from explorer.train.runfolder import runs_root

    root = args.runs or runs_root() / "paper" / args.figure
    progress = False if args.no_progress else None
    if args.figure == "figure2":
        todo, kind, keys = panels(args.dataset, args.nz), Panel, ("dataset", "nz", "algorithm")
    else:
        algorithms = tuple(a.strip() for a in args.algorithms.split(",") if a.strip())
        unknown = [a for a in algorithms if a not in figure3.ALGORITHMS]
        if unknown:
            raise ExplorerError(f"unknown algorithm {unknown[0]!r}: use {', '.join(figure3.ALGORITHMS)}")
        todo, kind, keys = figure3.panels(args.n_train, algorithms), figure3.Panel, ("n_train", "algorithm")
    repro = Reproduction(root, args.samples, args.device, say=_say, progress=progress, panel_type=kind)
    if args.json:
        shipped = [{**c, "source": "shipped"} for c in read_curves(shipped_path(args.figure))]
        known = sorted(  # by panel, then algorithm; the shipped curve before the user's
            shipped + repro.curves(),
            key=lambda c: (c.get("dataset", ""), c.get("nz", 0), c.get("n_train", 0), c["algorithm"],
                           c.get("source") != "shipped"),
        )  # fmt: skip
        columns = list(FIGURE3_COLUMNS if args.figure == "figure3" else POINT_COLUMNS)
        panel = {"dataset": "mnist", "nz": figure3.NZ} if args.figure == "figure3" else {}  # shipped lack it
        json.dump([{**panel, **c, "columns": columns} for c in known], sys.stdout)
        print()
        return 0
    if args.ship:
        mine = [{**c, "source": "shipped"} for c in repro.curves()]
        if not mine:
            raise ExplorerError(f"no curves under {root} to ship: run 'vae-explorer paper figure2' first")
        path = shipped_path(args.figure)
        write_curves(path, merge_curves(read_curves(path), mine, keys))
        print(f"{len(mine)} curves written to {path}")
        return 0
    for panel in todo:
        if not repro.run(panel):
            print(f"stopped at {panel.name}; run the same command to continue", file=sys.stderr)
            return EXIT_INTERRUPTED
    print(f"{args.figure}: {len(todo)} runs to {args.samples:,} samples in {root}")
    return 0


def _say(line: str) -> None:
    from tqdm import tqdm

    tqdm.write(line)


def paper_estimate(model, dataset: str, binarized: bool, args) -> dict:
    """The paper's Appendix D estimate of log p(x) on the images ``evaluate`` scored: mean and
    standard error over the images, nats. A Monte Carlo EM model (no recognition model) starts its
    chains at the best of 1,000 prior draws; a VAE at the best of its encoder's draws (``evaluate
    --estimator paper-hmc``).

    Raises:
        ExplorerError: an autoencoder, which has no p(z).
    """
    import time

    import torch

    from explorer.data.cache import eval_images
    from explorer.likelihood.marginal import paper_log_likelihood

    if not model.config.variational:
        raise ExplorerError(
            "an autoencoder has no p(z): the paper's estimator needs a VAE (or an MCEM decoder)"
        )
    x, _ = eval_images(dataset, args.split, binarized, args.limit)
    device = next(model.parameters()).device
    start = time.perf_counter()
    torch.manual_seed(0)
    values = torch.cat([
        paper_log_likelihood(model, xb.to(device), start="auto").cpu()
        for xb in x.split(500)
    ]).double()  # fmt: skip
    se = float(values.std() / len(values) ** 0.5) if len(values) > 1 else float("nan")
    return {"log_likelihood": float(values.mean()), "se": se, "n": len(values),
            "seconds": time.perf_counter() - start}  # fmt: skip


COMMANDS = {"paper": cmd_paper}
