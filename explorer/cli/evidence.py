"""``vae-explorer evidence MODEL --index N``: one test image's evidence three ways, log p(x) by
quadrature (2-D latents), the ELBO, KL(q(z|x) || p(z|x)), and the importance-weighted bounds L_K
(``explorer.theory.evidence``), on the test set as the model's evaluation scores it."""

from __future__ import annotations

import json

from explorer.cli.args import number
from explorer.errors import ExplorerError


def add_evidence_parser(sub) -> None:
    e = sub.add_parser(
        "evidence",
        help="log p(x) by quadrature (2-D latents), the ELBO, KL(q || p(z|x)) and L_K of a test image",
    )
    e.add_argument("checkpoint", help="run folder or shipped model name")
    e.add_argument("--index", type=number(int, 0), default=0, help="the test image's number (default 0)")
    e.add_argument(
        "--grid",
        type=number(int, 11, 1001),
        default=None,
        help="quadrature points per axis (default 81; odd)",
    )
    e.add_argument("--seed", type=int, default=0, help="seed of the importance draws")
    e.add_argument("--json", action="store_true", help="print the figures as JSON")


def cmd_evidence(args) -> None:
    from explorer.cards import run_binarizes
    from explorer.checkpoints import dataset_of, load_checkpoint, read_config, resolve
    from explorer.data.cache import eval_images
    from explorer.data.record import check_trained_data
    from explorer.theory.evidence import GRID, evidence

    model = load_checkpoint(args.checkpoint).eval()
    config = read_config(args.checkpoint)
    dataset = dataset_of(config)
    check_trained_data(resolve(args.checkpoint), dataset)  # its test image N: of the data it was trained on
    binarized = run_binarizes(config, dataset, model.config.likelihood)
    x, _ = eval_images(dataset, "test", binarized, args.index + 1)
    if args.index >= len(x):
        raise ExplorerError(
            f"there is no test image {args.index}: {dataset}'s test set has {len(x):,} (0 to {len(x) - 1})"
        )
    grid = args.grid or GRID
    ev = evidence(model, x[args.index], grid=grid + (1 - grid % 2), seed=args.seed)
    figures = {
        "checkpoint": str(args.checkpoint),
        "dataset": dataset,
        "index": args.index,
        "binarized": binarized,
        **ev.to_dict(),
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(
        f"{dataset} test image {args.index}"
        + (" (binarised with the evaluation's fixed seed)" if binarized else "")
    )
    if ev.log_px is not None:
        print(f"  log p(x), quadrature   {ev.log_px:12.4f} nats (grid's own error {ev.quadrature_error:.1e})")
    print(f"  ELBO                   {ev.elbo:12.4f} nats" + (f" +/- {ev.elbo_se:.4f}" if ev.elbo_se else ""))
    if ev.kl_to_posterior is not None:
        print(f"  KL(q || p(z|x))        {ev.kl_to_posterior:12.4f} nats")
        print(f"  ELBO + KL - log p(x)   {-ev.identity_residual:12.2e} nats")
    for k, (value, se) in sorted(ev.l_k.items()):
        print(f"  L_{k:<20} {value:12.4f} +/- {se:.4f} nats")
    print(f"  ({ev.seconds:.2f} s)")


COMMANDS = {"evidence": cmd_evidence}
