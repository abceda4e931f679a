"""The ``vae-explorer`` commands that use a trained model: evaluate, sample, manifold, reconstruct."""

from __future__ import annotations

import json
import math
import sys

from explorer.cli.args import (
    EXIT_ERROR,
    MAX_GRID,
    MAX_PICTURES,
    device,
    number,
    output_png,
    pictures,
    positive,
)
from explorer.cli.fid import add_fid_arguments, check_fid_arguments, fid_figures, print_fid, save_to_card
from explorer.config import DEVICES
from explorer.errors import ExplorerError


def add_model_parsers(sub) -> None:
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
        "estimator (HMC posterior samples; reliable for small latent spaces; on a 2-core CPU about "
        "0.1-0.5 s an image for a 784-100-3 decoder, 2-3 s for mnist-z2's 784-512-512-2: use --limit)",
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
        help="print a JSON list, one object per image: file, elbo (nats), percentile (of the test set's "
        "ELBO), test_images (how many it is ranked among), score (strangeness), score_percentile, stranger "
        "(null where bench/ood.py found the detector short of its targets or has not measured it: shapes, "
        "photographs, folders), reasons (what made a stranger strange), notes (a picture whose ground "
        "is unlike the test images': why it comes back unlike itself); or file and error",
    )


def _dataset_of(checkpoint: str) -> str:
    from explorer.checkpoints import dataset_of, read_config

    return dataset_of(read_config(checkpoint))


def scored(checkpoint: str, k: int, limit: int | None, split: str, device: str, quiet: bool):
    """``explorer.cards.evaluate_checkpoint`` with a bar for L_K on a terminal (tqdm's
    disable=None, as train's: no carriage returns in a log file), none when ``quiet``."""
    from tqdm import tqdm

    from explorer.cards import evaluate_checkpoint

    bar = None

    def tick(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:  # made at the first block: an autoencoder (no L_K) shows none
            bar = tqdm(total=total, desc=f"L_{k}", disable=None)
        bar.update(done)

    try:
        return evaluate_checkpoint(checkpoint, k, limit, split, device, progress=None if quiet else tick)
    finally:
        if bar is not None:
            bar.close()


def cmd_evaluate(args) -> None:
    check_fid_arguments(args)  # before the evaluation's minutes
    done = scored(args.checkpoint, args.k, args.limit, args.split, args.device, args.json)
    model, dataset, binarized, result = done.model, done.dataset, done.binarized, done.evaluation
    figures = {
        "checkpoint": str(args.checkpoint),
        "dataset": dataset,
        "split": args.split,
        **result.to_dict(),
        "encoder_trained": _encoder_trained(args.checkpoint),
    }
    if args.estimator == "paper-hmc":
        from explorer.cli.paper import paper_estimate

        figures["paper_hmc"] = paper_estimate(model, dataset, binarized, args)
    if args.fid:
        figures["fid"] = fid_figures(model, dataset, args)
        if args.save_card:
            save_to_card(args.checkpoint, figures["fid"], args)
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    _print_evaluation(model, dataset, binarized, result, args.split)
    if not figures["encoder_trained"]:
        from explorer.config import NO_ENCODER

        print("note: " + NO_ENCODER.replace("NAME", str(args.checkpoint)))
    if "paper_hmc" in figures:
        paper = figures["paper_hmc"]
        n = paper["n"]
        spread = f" +- {paper['se']:.2f} (standard error of the mean)" if n > 1 else ""
        print(f"log p(x) by the paper's Appendix D estimator: {paper['log_likelihood']:.2f}{spread} "
              f"nats, mean of {n:,} image{'s' if n != 1 else ''} ({paper['seconds']:.0f} s)")  # fmt: skip
    if args.fid:
        print_fid(figures["fid"])


def _encoder_trained(checkpoint: str) -> bool:
    """False for a Monte Carlo EM model (its encoder never trained); True otherwise, and for a
    bare checkpoint without config.json (nothing says otherwise)."""
    from explorer.checkpoints import read_config
    from explorer.config import encoder_trained
    from explorer.errors import CheckpointError

    try:
        return encoder_trained(read_config(checkpoint))
    except CheckpointError:
        return True


def _print_evaluation(model, dataset: str, binarized: bool, result, split: str) -> None:
    """``evaluate``'s figures as lines for a person."""
    from explorer.evaluate import ACTIVE_UNIT_THRESHOLD

    grey_bernoulli = model.config.likelihood == "bernoulli" and not binarized
    label = "NLL (grey-level data: not a normalised likelihood)" if grey_bernoulli else "NLL"
    print(f"{dataset} {split}, {result.n} images")
    if result.elbo is None:  # an autoencoder
        _print_autoencoder(model, result)
        return
    print(f"  ELBO          {result.elbo:9.2f}{_se(result.elbo_se)} nats "
          f"(reconstruction {result.recon:.2f}, KL {result.kl:.2f})")  # fmt: skip
    if result.nll is not None:
        print(f"  {label:<13} {result.nll:9.2f}{_se(result.log_likelihood_se)} nats (K = {result.k})")
    if result.bits_per_dim is not None:
        what = "NLL" if result.nll is not None else "-ELBO"
        print(f"  bits/dim      {result.bits_per_dim:9.3f} ({what}; {model.config.likelihood} likelihood)")
    dims = model.config.latent_dim
    if result.n < 2:  # the covariance over the test images needs two of them
        print(f"  active units  {'-':>9} of {dims} (Cov_x E_q[z_j] needs two test images, and there is one)")
    else:
        print(
            f"  active units  {result.active_units:9d} of {dims} (Cov_x E_q[z_j] > {ACTIVE_UNIT_THRESHOLD})"
        )
    shown = ", ".join(f"{v:.2f}" for v in result.kl_per_dim[:20]) + (" ..." if dims > 20 else "")
    print(f"  KL per dim    {shown}")
    print(f"  time          {result.seconds:9.1f} s")


def _se(value: float) -> str:
    """ " +/- 1.23" for a standard error; where it cannot be had (one test image: NaN), said so."""
    return (
        f" +/- {value:.2f}"
        if value is not None and math.isfinite(value)
        else " (one image: no standard error)"
    )


def _print_autoencoder(model, result) -> None:
    """``evaluate``'s lines for a deterministic autoencoder: its reconstruction term and why the
    VAE's other figures are absent."""
    kind = "denoising autoencoder" if model.config.model == "dae" else "autoencoder"
    print(f"  log p(x|z)    {result.recon:9.2f}{_se(result.recon_se)} nats (reconstruction term, z = f(x))")
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
    from explorer.pictures.images import make_grid, save_png

    model = load_checkpoint(args.checkpoint)
    gen = torch.Generator().manual_seed(args.seed)
    images = torch.cat([model.sample(min(1000, args.n - i), gen) for i in range(0, args.n, 1000)])
    ncol = max(1, int(round(args.n**0.5)))
    print(f"wrote {save_png(make_grid(images, ncol), args.output, scale=2)}")


def cmd_manifold(args) -> None:
    from explorer.checkpoints import load_checkpoint
    from explorer.explore.latent import manifold
    from explorer.pictures.images import make_grid, save_png

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
    from explorer.data.cache import load_dataset
    from explorer.data.uploads import preprocess_image
    from explorer.explore.derived import ensure
    from explorer.explore.strangers import Reference, verdict_measured
    from explorer.pictures.images import make_grid, save_png

    model = load_checkpoint(args.checkpoint)
    dataset = _dataset_of(args.checkpoint)
    test_x = load_dataset(dataset, "test").images.float() / 255.0
    # An autoencoder's figure is its reconstruction term, under its own name.
    key, score = ("elbo", "ELBO") if model.config.variational else ("log_p_x_given_z", "log p(x|z)")
    given = [(path, None) for path in args.images]
    given = given or [(f"test image {i}", test_x[i]) for i in range(min(args.n, len(test_x)))]
    entries, inputs = [], []  # one entry per input, in the order given
    for name, image in given:
        try:
            inputs.append(preprocess_image(name, dataset) if image is None else image)
            entries.append({"file": name})
        except ExplorerError as exc:
            entries.append({"file": name, "error": str(exc)})
    written = None
    if inputs:
        x = torch.stack(inputs)
        usable = [e for e in entries if "error" not in e]
        figures = ensure(resolve(args.checkpoint), model, ("elbo", "detector"))  # stored beside it
        measured = verdict_measured(dataset)  # else no verdict, as on the pages: null in the JSON
        for entry, judged in zip(usable, Reference(figures.elbo, figures.detector).judge(model, x)):
            entry.update(judged.to_dict(key), **({} if measured else {"stranger": None, "reasons": []}))
        for entry, note in zip(usable, _ground_notes(x, test_x, dataset)):
            entry["notes"] = [note] if note else []
        if args.output is not None:
            with torch.no_grad():
                recon = model.decode(model.encode(x)[0]).mean
            picture = make_grid(torch.cat([x, recon]), len(x))  # inputs above, reconstructions below
            written = save_png(picture, args.output, scale=2)
    if args.json:
        print(json.dumps(entries, indent=2))
    else:
        for e in entries:
            _print_judged(e, key, score)
    if written is not None:
        print(f"wrote {written}", file=sys.stderr if args.json else sys.stdout)
    return EXIT_ERROR if any("error" in e for e in entries) else 0


def _ground_notes(x, test_x, dataset: str) -> list[str | None]:
    """For a dataset of photographs or shapes: why each input (N, C, H, W) whose ground is unlike
    the test images' ``test_x`` will come back unlike itself (``photos.ground_note``), else None."""
    from explorer.data.specs import spec
    from explorer.pictures.photos import ground_levels, ground_note

    if spec(dataset).convention.kind != "photo":
        return [None] * len(x)
    levels = ground_levels(test_x.numpy())
    return [ground_note(picture, levels, dataset) for picture in x.numpy()]


def _print_judged(entry: dict, key: str, score: str) -> None:
    """One line of ``reconstruct`` for a person: the figure, its percentile, the verdict (none,
    and no strangeness, for a model whose detector is unmeasured: ``stranger`` None)."""
    from explorer.explore.strangers import rank_words

    if "error" in entry:
        print(f"{entry['file']}: refused: {entry['error']}", file=sys.stderr)
        return
    ranked = rank_words(entry["percentile"], entry["test_images"])
    line = f"{entry['file']}: {score} {entry[key]:.2f} nats, {ranked}"
    if entry["stranger"] is None:
        print(f"{line}; no stranger verdict (its detector misses its targets or is unmeasured: bench/ood.py)")
    else:
        verdict = "a STRANGER" if entry["stranger"] else "typical enough"
        strangeness = f"strangeness {entry['score']:.1f}, stranger than {entry['score_percentile']:.1f}%"
        why = (
            f"; what made it strange, most: {'; and '.join(entry['reasons'])}" if entry.get("reasons") else ""
        )
        print(f"{line}; {strangeness} ({verdict}){why}")
    for note in entry.get("notes", []):
        print(f"  note: {note}")


COMMANDS = {
    "evaluate": cmd_evaluate,
    "sample": cmd_sample,
    "manifold": cmd_manifold,
    "reconstruct": cmd_reconstruct,
}
