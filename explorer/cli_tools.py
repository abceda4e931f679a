"""The ``vae-explorer`` commands that use a trained model or a dataset: evaluate, sample,
manifold, reconstruct, export, data."""

from __future__ import annotations

import json
import os
import sys

from explorer.cli_args import (
    EXIT_ERROR,
    MAX_GRID,
    MAX_PICTURES,
    Parser,
    device,
    number,
    output_png,
    pictures,
    positive,
)
from explorer.cli_derive import add_derive_parser, cmd_derive
from explorer.cli_export import add_export_parser, cmd_export
from explorer.cli_fid import (
    add_classifier_parser,
    add_fid_arguments,
    check_fid_arguments,
    cmd_classifier,
    fid_figures,
    print_fid,
    save_to_card,
)
from explorer.datasets import DATASETS
from explorer.devices import DEVICES
from explorer.errors import ExplorerError


def add_tool_parsers(sub) -> None:
    e = sub.add_parser("evaluate", help="test ELBO and importance-sampled log-likelihood")
    e.add_argument("checkpoint", help="run folder or shipped model name")
    e.add_argument(
        "--k",
        type=int,
        default=5000,
        help="importance samples per image for L_K (0: ELBO only); default 5000, the literature's: "
        "about 8 minutes for MNIST's 10,000 test images on a 2-core CPU with the MLP models (use --limit "
        "to try)",
    )
    e.add_argument("--limit", type=positive(int), help="first N images only")
    e.add_argument("--split", choices=("test", "train"), default="test", help="images to score")
    e.add_argument("--device", type=device, default="auto", help=DEVICES)
    e.add_argument("--json", action="store_true", help="print the figures as JSON")
    e.add_argument(
        "--estimator",
        choices=("is", "paper-hmc"),
        default="is",
        help="is: the importance-sampled L_K alone; paper-hmc: also log p(x) by the paper's Appendix D "
        "estimator (HMC posterior samples; reliable for small latent spaces; about 0.1-0.5 s an image "
        "on a 2-core CPU for a 784-100-3 decoder: use --limit)",
    )
    add_fid_arguments(e)

    s = sub.add_parser("sample", help="decode samples z ~ p(z) to a PNG grid")
    s.add_argument("checkpoint")
    s.add_argument("-n", type=pictures(1), default=64, help=f"number of samples (at most {MAX_PICTURES:,})")
    s.add_argument("-o", "--output", type=output_png, required=True)
    s.add_argument("--seed", type=int, default=0)

    m = sub.add_parser("manifold", help="the paper's Figure 4: decoded latent grid as a PNG")
    m.add_argument("checkpoint")
    m.add_argument(
        "--grid", type=number(int, 2, MAX_GRID), default=20, help=f"points per side (2 to {MAX_GRID})"
    )
    m.add_argument(
        "--range",
        type=float,
        nargs=2,
        default=(0.05, 0.95),
        metavar=("LO", "HI"),
        help="unit-square range mapped through the inverse Gaussian CDF",
    )
    m.add_argument("-o", "--output", type=output_png, required=True)

    r = sub.add_parser("reconstruct", help="images and their reconstructions as a PNG")
    r.add_argument("checkpoint")
    r.add_argument("images", nargs="*", help="image files (default: the first test images)")
    r.add_argument("-n", type=pictures(1), default=10, help="test images when no files are given")
    r.add_argument("-o", "--output", type=output_png, help="PNG: inputs above their reconstructions")
    r.add_argument(
        "--json",
        action="store_true",
        help="print a JSON list, one object per image: file, elbo (nats), percentile (of the test "
        "set's ELBO), score (strangeness), score_percentile, stranger; or file and error",
    )

    add_export_parser(sub)
    add_derive_parser(sub)
    _add_data_parsers(sub)
    add_classifier_parser(sub)


def _add_data_parsers(sub) -> None:
    """``vae-explorer data fetch|add|info``."""
    d = sub.add_parser("data", help="fetch, add or describe a dataset")
    dsub = d.add_subparsers(dest="data_command", required=True, parser_class=Parser, metavar="ACTION")
    f = dsub.add_parser("fetch", help="download (or generate) and verify a dataset into the cache")
    f.add_argument("name", choices=DATASETS)
    f.add_argument(
        "--from",
        dest="source_file",
        help="frey-face: path of frey_rawface.mat; cifar10: path of cifar-10-python.tar.gz",
    )
    a = dsub.add_parser("add", help="a folder of your own images as a dataset (class subfolders: labels)")
    a.add_argument("name", help="the dataset's name (letters, digits, . _ -)")
    a.add_argument("path", help="the folder of PNG, JPEG, WebP, BMP or GIF images")
    a.add_argument("--size", default="32", help="image size: 32, or 48x32 (height x width); default 32")
    a.add_argument("--grey", action="store_true", help="greyscale (default: colour)")
    a.add_argument(
        "--fit",
        choices=("crop", "pad"),
        default="crop",
        help="crop: centre-crop to the shape, then resize (default); pad: resize to fit, pad with black",
    )
    a.add_argument(
        "--test-fraction", type=number(float, 0.0, 1.0), default=0.1, help="share of images in the test split"
    )
    a.add_argument("--replace", action="store_true", help="replace a dataset of that name")
    i = dsub.add_parser("info", help="counts, shape, source and checksums")
    i.add_argument("name", help=f"{', '.join(DATASETS)} or a dataset you added")
    i.add_argument("--json", action="store_true")


def _dataset_of(checkpoint: str) -> str:
    from explorer.checkpoints import dataset_of, read_config

    return dataset_of(read_config(checkpoint))


def evaluate_checkpoint(checkpoint: str, k: int, limit: int | None, split: str, device: str, quiet: bool):
    """(model, dataset, binarized, Evaluation) for a checkpoint, with a progress bar."""
    from tqdm import tqdm

    from explorer.checkpoints import load_checkpoint
    from explorer.devices import pick_device
    from explorer.evaluate import eval_images, evaluate

    if k < 0:
        raise ExplorerError(f"--k must be >= 0 (0: ELBO only), got {k}")
    model = load_checkpoint(checkpoint, pick_device(device))
    dataset = _dataset_of(checkpoint)
    binarized = _run_binarizes(checkpoint, dataset, model.config.likelihood)
    x, _ = eval_images(dataset, split, binarized, limit)
    # A bar only on a terminal (tqdm's disable=None), as train's: no carriage returns in a log file
    off = True if quiet or k == 0 or not model.config.variational else None
    with tqdm(total=len(x), desc=f"L_{k}", disable=off) as bar:
        result = evaluate(model, x, k=k, progress=bar.update)
    return model, dataset, binarized, result


def _run_binarizes(checkpoint: str, dataset: str, likelihood: str) -> bool:
    """Whether the run binarised its images (its own --binarize), so that evaluation scores the
    test set it trained against; the dataset's rule for a checkpoint without a training record."""
    from explorer import datasets
    from explorer.checkpoints import read_config
    from explorer.config import TrainConfig

    try:
        return TrainConfig(**read_config(checkpoint)["train"]).binarized(likelihood)
    except (KeyError, TypeError, ValueError):
        return datasets.binarized(dataset, likelihood)


def cmd_evaluate(args) -> None:
    check_fid_arguments(args)  # before the evaluation's minutes
    model, dataset, binarized, result = evaluate_checkpoint(
        args.checkpoint, args.k, args.limit, args.split, args.device, args.json
    )
    figures = {
        "checkpoint": str(args.checkpoint),
        "dataset": dataset,
        "split": args.split,
        **result.to_dict(),
    }
    if args.estimator == "paper-hmc":
        from explorer.cli_paper import paper_estimate

        figures["paper_hmc"] = paper_estimate(args.checkpoint, model, dataset, binarized, args)
    if args.fid:
        figures["fid"] = fid_figures(model, dataset, args)
        if args.save_card:
            save_to_card(args.checkpoint, figures["fid"], args)
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    _print_evaluation(model, dataset, binarized, result, args.split)
    if "paper_hmc" in figures:
        paper = figures["paper_hmc"]
        print(f"log p(x) by the paper's Appendix D estimator: "
              f"{paper['log_likelihood']:.2f} +- {paper['se']:.2f} "
              f"nats ({paper['n']} images, {paper['seconds']:.0f} s)")  # fmt: skip
    if args.fid:
        print_fid(figures["fid"])


def _print_evaluation(model, dataset: str, binarized: bool, result, split: str) -> None:
    """``evaluate``'s figures as lines for a person."""
    from explorer.evaluate import ACTIVE_UNIT_THRESHOLD

    grey_bernoulli = model.config.likelihood == "bernoulli" and not binarized
    label = "NLL (grey-level data: not a normalised likelihood)" if grey_bernoulli else "NLL"
    print(f"{dataset} {split}, {result.n} images")
    if result.elbo is None:  # an autoencoder
        _print_autoencoder(model, result)
        return
    print(
        f"  ELBO          {result.elbo:9.2f} +/- {result.elbo_se:.2f} nats "
        f"(reconstruction {result.recon:.2f}, KL {result.kl:.2f})"
    )
    if result.nll is not None:
        print(f"  {label:<13} {result.nll:9.2f} +/- {result.log_likelihood_se:.2f} nats (K = {result.k})")
    if result.bits_per_dim is not None:
        what = "NLL" if result.nll is not None else "-ELBO"
        print(f"  bits/dim      {result.bits_per_dim:9.3f} ({what}; {model.config.likelihood} likelihood)")
    dims = model.config.latent_dim
    print(f"  active units  {result.active_units:9d} of {dims} (Cov_x E_q[z_j] > {ACTIVE_UNIT_THRESHOLD})")
    shown = ", ".join(f"{v:.2f}" for v in result.kl_per_dim[:20]) + (" ..." if dims > 20 else "")
    print(f"  KL per dim    {shown}")
    print(f"  time          {result.seconds:9.1f} s")


def _print_autoencoder(model, result) -> None:
    """``evaluate``'s lines for a deterministic autoencoder: its reconstruction term and why the
    VAE's other figures are absent."""
    kind = "denoising autoencoder" if model.config.model == "dae" else "autoencoder"
    print(
        f"  log p(x|z)    {result.recon:9.2f} +/- {result.recon_se:.2f} nats (reconstruction term, z = f(x))"
    )
    print(
        f"  no ELBO, KL or NLL: {'an' if kind[0] == 'a' else 'a'} {kind} has no posterior or prior, "
        "so no bound on log p(x)"
    )
    spread = ", ".join(f"{v:.2f}" for v in result.posterior_mean_variance[:20])
    print(f"  code variance {spread}{' ...' if len(result.posterior_mean_variance) > 20 else ''}")
    print(f"  time          {result.seconds:9.1f} s")


def cmd_sample(args) -> None:
    import torch

    from explorer.checkpoints import load_checkpoint
    from explorer.images import make_grid, save_png

    model = load_checkpoint(args.checkpoint)
    gen = torch.Generator().manual_seed(args.seed)
    images = torch.cat([model.sample(min(1000, args.n - i), gen) for i in range(0, args.n, 1000)])
    ncol = max(1, int(round(args.n**0.5)))
    print(f"wrote {save_png(make_grid(images, ncol), args.output, scale=2)}")


def cmd_manifold(args) -> None:
    from explorer.checkpoints import load_checkpoint
    from explorer.images import make_grid, save_png
    from explorer.latent import manifold

    model = load_checkpoint(args.checkpoint)
    try:
        images = manifold(model, args.grid, *args.range)
    except ValueError as exc:
        raise ExplorerError(str(exc)) from None
    print(f"wrote {save_png(make_grid(images, args.grid, pad=0), args.output, scale=2)}")


def cmd_reconstruct(args) -> int:
    """Reconstruct image files (or the first test images) and judge each against the test set:
    ELBO, its percentile, strangeness and the stranger verdict; a PNG of inputs over
    reconstructions with -o, a JSON list with --json. Exits 1 when any file was refused."""
    import torch

    from explorer.checkpoints import load_checkpoint, resolve
    from explorer.data import load_dataset
    from explorer.derived import ensure
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
        figures = ensure(resolve(args.checkpoint), model, ("elbo", "detector"))  # stored beside it
        judged = Reference(figures.elbo, figures.detector).judge(model, x)
        if args.output is not None:
            with torch.no_grad():
                recon = model.decode(model.encode(x)[0]).mean
            picture = make_grid(torch.cat([x, recon]), len(x))  # inputs above, reconstructions below
            written = save_png(picture, args.output, scale=2)
    entries += [{"file": name, **j.to_dict()} for name, j in zip(names, judged)]
    score = "ELBO"
    if not model.config.variational:  # an autoencoder's figure is its reconstruction term
        score = "log p(x|z)"
        for e in entries:
            if "elbo" in e:
                e["log_p_x_given_z"] = e.pop("elbo")
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
                f"{e['file']}: {score} {e.get('elbo', e.get('log_p_x_given_z')):.2f} nats, higher than "
                f"{e['percentile']:.1f}% of the test "
                f"images; strangeness {e['score']:.1f}, stranger than {e['score_percentile']:.1f}% "
                f"({verdict})"
            )
    if judged and args.output is not None:
        print(f"wrote {written}", file=sys.stderr if args.json else sys.stdout)
    return EXIT_ERROR if any("error" in e for e in entries) else 0


def cmd_data(args) -> None:
    from explorer import data

    if args.data_command == "fetch":
        if args.source_file:
            variable = {"frey-face": "VAE_EXPLORER_FREY_MAT", "cifar10": "VAE_EXPLORER_CIFAR_ARCHIVE"}
            if args.name not in variable:
                raise ExplorerError(
                    "--from is only for frey-face (frey_rawface.mat) and cifar10 (cifar-10-python.tar.gz)"
                )
            os.environ[variable[args.name]] = args.source_file
        folder = data.fetch(args.name)
        print(f"{args.name}: verified in {folder}")
        return
    if args.data_command == "add":
        _add_folder(args)
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


def _add_folder(args) -> None:
    from tqdm import tqdm

    from explorer.imagefolder import add_folder

    with tqdm(desc=f"reading {args.path}", unit=" files", leave=False, disable=None) as bar:
        done = add_folder(
            args.name, args.path, args.size, args.grey, args.fit, args.test_fraction, args.replace, bar.update
        )
    print(
        f"{args.name}: {done.train:,} train + {done.test:,} test images, classes: "
        f"{', '.join(done.classes)}; stored in {done.folder}"
    )
    for file, why in done.skipped:
        print(f"  skipped {file}: {why}", file=sys.stderr)
    if done.skipped:
        print(f"{len(done.skipped)} file(s) skipped (listed above)", file=sys.stderr)
    print(f"train on it: vae-explorer train --dataset {args.name} --arch conv --name {args.name}-conv")


TOOLS = {
    "evaluate": cmd_evaluate,
    "sample": cmd_sample,
    "manifold": cmd_manifold,
    "reconstruct": cmd_reconstruct,
    "export": cmd_export,
    "derive": cmd_derive,
    "data": cmd_data,
    "classifier": cmd_classifier,
}
