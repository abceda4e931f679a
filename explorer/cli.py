"""The ``vae-explorer`` command: train, evaluate, sample, manifold, reconstruct, data.

Parsing happens here and nowhere else; each command calls into the library. Errors meant for a
person (bad flags, paths, broken checkpoints, missing data) print one line and exit non-zero.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

import torch

from explorer.errors import ExplorerError

EXIT_USAGE, EXIT_ERROR, EXIT_INTERRUPTED = 2, 1, 130


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line that points at --help."""

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _hidden(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected widths like 512,512, got {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"expected positive widths like 512,512, got {text!r}")
    return sizes


def _positive(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    return parse


def _device(text: str) -> str:
    from explorer.train import check_device_name

    try:
        return check_device_name(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


MAX_PICTURES = 10_000  # images in one PNG grid: a 100 x 100 sheet
MAX_GRID = 100  # points per side of the manifold: 10,000 decoded images


def _bounded(lo: int, hi: int):
    """An argparse type for whole numbers from lo to hi, saying the bounds when refused."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(
                f"must be from {lo} to {hi:,} (one PNG of at most {MAX_PICTURES:,} images), got {value:,}"
            )
        return value

    return parse


def _output_png(text: str) -> Path:
    path = Path(text)
    if path.suffix.lower() != ".png":
        raise argparse.ArgumentTypeError(f"the output must be a .png file, got {text!r}")
    return path


def build_parser() -> argparse.ArgumentParser:
    from explorer.data import DATASETS
    from explorer.objectives import ESTIMATORS, OBJECTIVES
    from explorer.train import DEVICES, OPTIMIZERS

    p = _Parser(prog="vae-explorer", description="Train, evaluate and explore VAEs (AEVB).")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")

    t = sub.add_parser(
        "train",
        help="train a VAE into a run folder",
        description="Train a VAE with AEVB; metrics and checkpoints go to --out.",
    )
    t.add_argument("--out", help="run folder, e.g. runs/mnist-z2 (or give --name)")
    t.add_argument("--name", help="run name: the run goes to runs/NAME (letters, digits, . _ -)")
    t.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=None,
        metavar="RUN",
        help="continue the run in RUN (or --out) from its last checkpoint",
    )
    t.add_argument(
        "--init-from",
        metavar="CKPT",
        help="start from the weights of a checkpoint folder or shipped model (e.g. mnist-z20), with "
        "its architecture: fine-tuning, with a fresh optimiser",
    )
    t.add_argument("--dataset", choices=DATASETS, default="mnist")
    t.add_argument("--latent-dim", type=_positive(int), default=2, help="size of z (default 2)")
    t.add_argument("--hidden", type=_hidden, default=(512, 512), help="widths, e.g. 512,512")
    t.add_argument("--activation", choices=("relu", "tanh"), default="relu")
    t.add_argument(
        "--likelihood",
        choices=("bernoulli", "gaussian"),
        default=None,
        help="p(x|z): default bernoulli, gaussian for frey-face",
    )
    t.add_argument(
        "--estimator",
        choices=ESTIMATORS,
        default="analytic",
        help="analytic = SGVB estimator B (analytic KL), mc = estimator A",
    )
    t.add_argument("--optimizer", choices=OPTIMIZERS, default="adam")
    t.add_argument(
        "--lr",
        type=_positive(float),
        default=None,
        help="learning rate per step (default 1e-3; with --resume: go on with this rate)",
    )
    t.add_argument("--weight-decay", type=float, default=0.0, help="L2 prior on the weights")
    t.add_argument(
        "--epochs",
        type=_positive(int),
        default=None,
        help="epochs in all (default 50; with --resume: train on to this many)",
    )
    t.add_argument("--batch-size", type=_positive(int), default=100, help="M (default 100)")
    t.add_argument(
        "--objective",
        choices=OBJECTIVES,
        default=None,
        help="elbo (the VAE's bound, default) or iwae (importance-weighted bound L_K with K = "
        "--samples); with --resume: go on with this objective",
    )
    t.add_argument(
        "--samples",
        type=_positive(int),
        default=None,
        help="L samples of eps per datapoint, K for iwae (default 1; with --resume: go on with this)",
    )
    t.add_argument("--beta", type=float, default=1.0, help="weight on the KL term (default 1)")
    t.add_argument(
        "--binarize",
        choices=("auto", "dynamic", "none"),
        default="auto",
        help="dynamic binarisation (auto: on for bernoulli MNIST-like data)",
    )
    t.add_argument("--limit", type=_positive(int), help="train on the first N images only")
    t.add_argument("--test-limit", type=_positive(int), help="evaluate on N test images only")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--device", type=_device, default="auto", help=f"{DEVICES}; auto: cuda, mps, cpu")
    t.add_argument(
        "--nproc",
        type=int,
        default=1,
        help="train with N processes on this machine (DistributedDataParallel through torchrun: "
        "one per GPU, or gloo on the CPU); the batch is split across them",
    )
    t.add_argument("--log-every", type=_positive(int), default=100, help="steps per metric line")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")

    e = sub.add_parser("evaluate", help="test ELBO and importance-sampled log-likelihood")
    e.add_argument("checkpoint", help="run folder or shipped model name")
    e.add_argument("--k", type=int, default=5000, help="importance samples (0: ELBO only)")
    e.add_argument("--limit", type=_positive(int), help="first N images only")
    e.add_argument("--split", choices=("test", "train"), default="test")
    e.add_argument("--device", type=_device, default="auto", help=DEVICES)
    e.add_argument("--json", action="store_true", help="print the figures as JSON")

    s = sub.add_parser("sample", help="decode samples z ~ p(z) to a PNG grid")
    s.add_argument("checkpoint")
    s.add_argument(
        "-n", type=_bounded(1, MAX_PICTURES), default=64, help=f"number of samples (at most {MAX_PICTURES:,})"
    )
    s.add_argument("-o", "--output", type=_output_png, required=True)
    s.add_argument("--seed", type=int, default=0)

    m = sub.add_parser("manifold", help="the paper's Figure 4: decoded latent grid as a PNG")
    m.add_argument("checkpoint")
    m.add_argument(
        "--grid", type=_bounded(2, MAX_GRID), default=20, help=f"points per side (2 to {MAX_GRID})"
    )
    m.add_argument(
        "--range",
        type=float,
        nargs=2,
        default=(0.05, 0.95),
        metavar=("LO", "HI"),
        help="unit-square range mapped through the inverse Gaussian CDF",
    )
    m.add_argument("-o", "--output", type=_output_png, required=True)

    r = sub.add_parser("reconstruct", help="images and their reconstructions as a PNG")
    r.add_argument("checkpoint")
    r.add_argument("images", nargs="*", help="image files (default: the first test images)")
    r.add_argument(
        "-n", type=_bounded(1, MAX_PICTURES), default=10, help="test images when no files are given"
    )
    r.add_argument("-o", "--output", type=_output_png, help="PNG: inputs above their reconstructions")
    r.add_argument(
        "--json",
        action="store_true",
        help="print a JSON list, one object per image: file, elbo (nats), percentile (of the test "
        "set's ELBO), score (strangeness), score_percentile, stranger; or file and error",
    )

    x = sub.add_parser("export", help="ship a run as a pretrained model with a measured card")
    x.add_argument("run", help="run folder")
    x.add_argument("dest", help="destination folder, e.g. pretrained/mnist-z2")
    x.add_argument("--k", type=int, default=5000, help="importance samples for the card's NLL")
    x.add_argument("--limit", type=_positive(int), help="evaluate on the first N test images only")
    x.add_argument("--device", type=_device, default="auto", help=DEVICES)

    d = sub.add_parser("data", help="fetch or describe a dataset")
    dsub = d.add_subparsers(dest="data_command", required=True, parser_class=_Parser, metavar="ACTION")
    f = dsub.add_parser("fetch", help="download/verify a dataset into the cache")
    f.add_argument("name", choices=DATASETS)
    f.add_argument("--from", dest="source_file", help="frey-face: path of frey_rawface.mat")
    i = dsub.add_parser("info", help="counts, shape, source and checksums")
    i.add_argument("name", choices=DATASETS)
    i.add_argument("--json", action="store_true")
    return p


# ----------------------------------------------------------------------------------------------


COMMAND_ENV = "VAE_EXPLORER_COMMAND_LINE"  # set for the processes `train --nproc` starts


def _launch_processes(args) -> None:
    """Replace this process by torchrun starting ``args.nproc`` copies of this command (same PID,
    so a stop signal reaches torchrun, which passes it on to every process)."""
    if args.nproc < 1:
        raise ExplorerError("--nproc must be at least 1")
    import importlib.util

    if importlib.util.find_spec("torch.distributed.run") is None:
        raise ExplorerError("this PyTorch build has no torch.distributed; train without --nproc")
    # torchrun would take --nproc for its own --nproc-per-node, so the workers get the command
    # without it, and the full command line (for the run's record) through the environment.
    rest, skip = [], False
    for a in args.argv:
        if skip:
            skip = False
        elif a == "--nproc":
            skip = True
        elif not a.startswith("--nproc="):
            rest.append(a)
    os.environ[COMMAND_ENV] = args.command_line
    sys.stdout.flush()
    launcher = ["-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={args.nproc}"]
    os.execv(sys.executable, [sys.executable, *launcher, "-m", "explorer.cli", *rest])


# What a resumed run cannot change: they shape the model, the data or the random streams.
FIXED_ON_RESUME = {
    "--dataset", "--latent-dim", "--hidden", "--activation", "--likelihood", "--estimator",
    "--optimizer", "--weight-decay", "--batch-size", "--beta", "--binarize", "--limit",
    "--test-limit", "--seed", "--device", "--log-every", "--init-from",
}  # fmt: skip


# What --init-from takes from its checkpoint.
ARCHITECTURE = {"--latent-dim", "--hidden", "--activation", "--likelihood"}


def _given(args, flags: set[str]) -> list[str]:
    """Which of ``flags`` the command line gave (argparse also takes unambiguous abbreviations:
    --batch for --batch-size)."""
    given = {a.split("=")[0] for a in args.argv if a.startswith("--")}
    return sorted(f for f in flags if any(len(g) > 2 and f.startswith(g) for g in given))


def cmd_train(args) -> None:
    from explorer.model import ModelConfig
    from explorer.train import TrainConfig, train

    if args.resume:
        fixed = _given(args, FIXED_ON_RESUME)
        if fixed:
            raise ExplorerError(
                f"a resumed run keeps its settings; {', '.join(fixed)} cannot change (only --epochs, "
                "--lr, --objective and --samples can). Start a new run with --out to train with other "
                "settings."
            )
    if args.init_from:
        shaped = _given(args, ARCHITECTURE)
        if shaped:
            raise ExplorerError(
                f"--init-from takes the architecture of {args.init_from}; {', '.join(shaped)} cannot "
                "be given with it."
            )
    if args.nproc != 1:
        _launch_processes(args)

    out = args.resume if isinstance(args.resume, str) else args.out
    if args.name is not None:
        from explorer.jobs import check_run_name, runs_root

        if out is not None:
            raise ExplorerError("give either --name or --out (or --resume RUN), not both")
        out = str(runs_root() / check_run_name(args.name))
    if out is None:
        raise ExplorerError("give the run folder with --out runs/NAME, --name NAME or --resume RUN")
    progress = False if args.no_progress else None
    if args.resume:
        cfg = TrainConfig(epochs=args.epochs) if args.epochs else None
        folder = train(
            out,
            config=cfg,
            resume=True,
            progress=progress,
            command=args.command_line,
            lr=args.lr,
            objective=(args.objective, args.samples),
        )
    else:
        likelihood = args.likelihood or ("gaussian" if args.dataset == "frey-face" else "bernoulli")
        model_config = ModelConfig(
            hidden=args.hidden, activation=args.activation, latent_dim=args.latent_dim, likelihood=likelihood
        )
        cfg = TrainConfig(
            dataset=args.dataset,
            epochs=args.epochs or 50,
            batch_size=args.batch_size,
            samples=args.samples or 1,
            objective=args.objective or "elbo",
            estimator=args.estimator,
            beta=args.beta,
            optimizer=args.optimizer,
            lr=args.lr or 1e-3,
            weight_decay=args.weight_decay,
            binarize=args.binarize,
            limit=args.limit,
            test_limit=args.test_limit,
            seed=args.seed,
            device=args.device,
            log_every=args.log_every,
        )
        folder = train(
            out, model_config, cfg, progress=progress, command=args.command_line, init_from=args.init_from
        )
    if os.environ.get("RANK", "0") == "0":  # with several processes, one says it
        print(f"run saved in {folder}")


def _dataset_of(checkpoint: str) -> str:
    from explorer.checkpoints import dataset_of, read_config

    return dataset_of(read_config(checkpoint))


def _evaluate(checkpoint: str, k: int, limit: int | None, split: str, device: str, quiet: bool):
    """(model, dataset, binarized, Evaluation) for a checkpoint, with a progress bar."""
    from tqdm import tqdm

    from explorer.checkpoints import load_checkpoint
    from explorer.evaluate import eval_images, evaluate
    from explorer.train import pick_device

    if k < 0:
        raise ExplorerError(f"--k must be >= 0 (0: ELBO only), got {k}")
    model = load_checkpoint(checkpoint, pick_device(device))
    dataset = _dataset_of(checkpoint)
    binarized = model.config.likelihood == "bernoulli" and dataset != "frey-face"
    x, _ = eval_images(dataset, split, binarized, limit)
    with tqdm(total=len(x), desc=f"L_{k}", disable=quiet or k == 0) as bar:
        result = evaluate(model, x, k=k, progress=bar.update)
    return model, dataset, binarized, result


def cmd_evaluate(args) -> None:
    model, dataset, binarized, result = _evaluate(
        args.checkpoint, args.k, args.limit, args.split, args.device, args.json
    )
    figures = {
        "checkpoint": str(args.checkpoint),
        "dataset": dataset,
        "split": args.split,
        **result.to_dict(),
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    label = "NLL" if binarized else "NLL (grey-level data: not a normalised likelihood)"
    print(f"{dataset} {args.split}, {result.n} images")
    print(
        f"  ELBO          {result.elbo:9.2f} +/- {result.elbo_se:.2f} nats "
        f"(reconstruction {result.recon:.2f}, KL {result.kl:.2f})"
    )
    if result.nll is not None:
        print(f"  {label:<13} {result.nll:9.2f} +/- {result.log_likelihood_se:.2f} nats (K = {result.k})")
    dims = model.config.latent_dim
    print(f"  active units  {result.active_units:9d} of {dims} (Cov_x E_q[z_j] > 0.01)")
    shown = ", ".join(f"{v:.2f}" for v in result.kl_per_dim[:20]) + (" ..." if dims > 20 else "")
    print(f"  KL per dim    {shown}")
    print(f"  time          {result.seconds:9.1f} s")


def cmd_sample(args) -> None:
    from explorer.checkpoints import load_checkpoint
    from explorer.images import make_grid, save_png

    model = load_checkpoint(args.checkpoint)
    gen = torch.Generator().manual_seed(args.seed)
    images = torch.cat([model.sample(min(1000, args.n - i), gen) for i in range(0, args.n, 1000)])
    ncol = max(1, int(round(args.n**0.5)))
    print(f"wrote {save_png(make_grid(images, ncol), args.output, scale=2)}")


def cmd_manifold(args) -> None:
    from explorer.checkpoints import load_checkpoint
    from explorer.images import latent_grid, make_grid, save_png
    from explorer.latent import decode_mean

    model = load_checkpoint(args.checkpoint)
    lo, hi = args.range
    try:
        z = latent_grid(args.grid, lo, hi, model.config.latent_dim)
    except ValueError as exc:
        raise ExplorerError(str(exc)) from None
    images = decode_mean(model, z)
    picture = make_grid(images, args.grid, pad=0)
    print(f"wrote {save_png(picture, args.output, scale=2)}")


def cmd_reconstruct(args) -> int:
    """Reconstruct image files (or the first test images) and judge each against the test set:
    ELBO, its percentile, strangeness and the stranger verdict; a PNG of inputs over
    reconstructions with -o, a JSON list with --json. Exits 1 when any file was refused."""
    from explorer.checkpoints import load_checkpoint
    from explorer.data import load_dataset
    from explorer.images import make_grid, save_png
    from explorer.preprocess import preprocess_image
    from explorer.strangers import Reference

    model = load_checkpoint(args.checkpoint)
    dataset = _dataset_of(args.checkpoint)
    test_x = load_dataset(dataset, "test").images.float() / 255.0
    names, inputs, entries = [], [], []
    if args.images:
        for path in args.images:
            try:
                inputs.append(preprocess_image(path, dataset))
                names.append(path)
            except ExplorerError as exc:
                entries.append({"file": path, "error": str(exc)})
    else:
        inputs, names = list(test_x[: args.n]), [f"test image {i}" for i in range(min(args.n, len(test_x)))]
    judged = []
    if inputs:
        x = torch.stack(inputs)
        judged = Reference.of(model, test_x, dataset).judge(model, x)
        if args.output is not None:
            with torch.no_grad():
                recon = model.decode(model.encode(x)[0]).mean
            picture = make_grid(torch.cat([x, recon]), len(x))  # inputs above, reconstructions below
            written = save_png(picture, args.output, scale=2)
    entries += [{"file": name, **j.to_dict()} for name, j in zip(names, judged)]
    order = {name: i for i, name in enumerate(args.images or names)}
    entries.sort(key=lambda e: order.get(e["file"], 0))
    if args.json:
        print(json.dumps(entries, indent=2))
    else:
        for e in entries:
            if "error" in e:
                print(f"{e['file']}: refused: {e['error']}", file=sys.stderr)
                continue
            verdict = "a STRANGER" if e["stranger"] else "typical enough"
            print(
                f"{e['file']}: ELBO {e['elbo']:.2f} nats, higher than {e['percentile']:.1f}% of the test "
                f"images; strangeness {e['score']:.1f}, stranger than {e['score_percentile']:.1f}% "
                f"({verdict})"
            )
    if judged and args.output is not None:
        print(f"wrote {written}", file=sys.stderr if args.json else sys.stdout)
    return EXIT_ERROR if any("error" in e for e in entries) else 0


def cmd_export(args) -> None:
    from explorer.cards import export

    *_, result = _evaluate(args.run, args.k, args.limit, "test", args.device, False)
    command = f"vae-explorer evaluate {args.dest} --k {args.k}" + (
        f" --limit {args.limit}" if args.limit else ""
    )
    dest = export(args.run, args.dest, result, command)
    nll = f"{result.nll:.2f} nats (K = {args.k})" if result.nll is not None else "not measured (K = 0)"
    print(f"exported {args.run} to {dest}: test ELBO {result.elbo:.2f} nats, NLL {nll}")


def cmd_data(args) -> None:
    import os

    from explorer import data

    if args.data_command == "fetch":
        if args.source_file:
            if args.name != "frey-face":
                raise ExplorerError("--from is only for frey-face (a frey_rawface.mat file)")
            os.environ["VAE_EXPLORER_FREY_MAT"] = args.source_file
        folder = data.fetch(args.name)
        print(f"{args.name}: verified in {folder}")
        return
    info = data.info(args.name)
    if args.json:
        print(json.dumps(info, indent=2))
        return
    print(
        f"{info['name']}: {info['train']} train + {info['test']} test images, "
        f"shape {tuple(info['shape'])}, source: {info['source']}"
    )
    print(f"  folder {info['folder']}")
    for file, meta in info["files"].items():
        print(f"  {file:<26} {meta['bytes']:>10,} bytes  md5 {meta['md5']}")


COMMANDS = {
    "train": cmd_train,
    "evaluate": cmd_evaluate,
    "sample": cmd_sample,
    "manifold": cmd_manifold,
    "reconstruct": cmd_reconstruct,
    "export": cmd_export,
    "data": cmd_data,
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    args.command_line = os.environ.pop(COMMAND_ENV, None) or shlex.join(["vae-explorer", *argv])
    args.argv = list(argv)
    try:
        code = COMMANDS[args.command](args)
    except ExplorerError as exc:
        print(f"vae-explorer {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except ValueError as exc:  # config validation
        print(f"vae-explorer {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
