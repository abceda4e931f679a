"""The command-line side of sample quality: ``vae-explorer evaluate --fid`` and
``vae-explorer classifier`` (the feature network of the offline FID). See ``explorer.fid``."""

from __future__ import annotations

from pathlib import Path

from explorer.cli.args import positive
from explorer.errors import ExplorerError

MIN_SAMPLES = 200  # explorer.fid.MIN_SAMPLES, for the help (not imported: the parser loads no torch)


def add_fid_arguments(e) -> None:
    """The FID flags of ``evaluate``."""
    e.add_argument(
        "--fid",
        action="store_true",
        help="also the Fréchet distance (FID) of the model's samples from N(0, I) to the test set, and "
        "of the test set to the training set (a floor for the figure)",
    )
    e.add_argument(
        "--fid-features",
        choices=("classifier", "inception"),
        default="classifier",
        help="classifier (default): a small CNN trained on the dataset, shipped, offline; its FID is "
        "not comparable with published (Inception) figures. inception: the standard features (needs "
        "torch-fidelity and downloads its weights once)",
    )
    e.add_argument(
        "--fid-classifier",
        metavar="FOLDER",
        help="with classifier features: the feature classifier in FOLDER (written by vae-explorer "
        "classifier DATASET --out FOLDER) instead of the shipped pretrained/classifiers/DATASET",
    )
    e.add_argument(
        "--fid-samples",
        type=positive(int),
        default=10_000,
        help=f"samples from the model (default 10,000, at least {MIN_SAMPLES}, 2,049 with inception "
        "features); the real side is as many test images as the test set has, up to that, and each "
        "side needs as many",
    )
    e.add_argument(
        "--save-card",
        action="store_true",
        help="with --fid: write the figures into the checkpoint's card.json",
    )


def add_classifier_parser(sub) -> None:
    c = sub.add_parser("classifier", help="train the small CNN whose features the offline FID uses")
    c.add_argument("dataset", help="a dataset with labels: mnist, fashion-mnist, shapes, or an added folder")
    c.add_argument(
        "--out", help="folder to write (default: pretrained/classifiers/DATASET, which evaluate --fid uses)"
    )
    c.add_argument(
        "--replace",
        action="store_true",
        help="overwrite a classifier already there (the cards' FIDs were measured with it: measure them "
        "again)",
    )
    c.add_argument("--epochs", type=positive(int), default=5)
    c.add_argument("--seed", type=int, default=0)


def cmd_classifier(args) -> None:
    from explorer.data.cache import load_dataset
    from explorer.fid import classifier_dir, train_classifier

    out = args.out or classifier_dir(args.dataset)
    if (Path(out) / "classifier.safetensors").exists() and not args.replace:
        raise ExplorerError(
            f"{out} already holds a feature classifier, with which the shipped cards' FIDs were measured; "
            "pass --replace to train a new one there (and measure the FIDs again), or --out another folder"
        )
    train, test = (load_dataset(args.dataset, split) for split in ("train", "test"))
    card = train_classifier(
        args.dataset, (train.images, train.labels), (test.images, test.labels), out, args.epochs, args.seed
    )
    print(
        f"{args.dataset} feature classifier in {out}: test accuracy {100 * card['test_accuracy']:.2f}% "
        f"on {card['test_images']:,} images, {card['parameters']:,} parameters, {card['train_seconds']:.0f} s"
    )


def check_fid_arguments(args) -> None:
    """Refuse FID flags that would be ignored or would make a meaningless figure, before any work.

    Raises:
        ExplorerError: what is wrong and what to pass instead.
    """
    defaults = {
        "fid_features": "classifier",
        "fid_samples": 10_000,
        "save_card": False,
        "fid_classifier": None,
    }
    given = [name for name, value in defaults.items() if getattr(args, name) != value]
    if given and not args.fid:
        raise ExplorerError(f"--{given[0].replace('_', '-')} sets up the FID: add --fid")
    if args.fid_classifier is not None and args.fid_features != "classifier":
        raise ExplorerError(
            f"--fid-classifier gives classifier features, and --fid-features is {args.fid_features}: "
            "leave out one of them"
        )
    from explorer.fid import min_images

    need = min_images(args.fid_features)
    if args.fid and args.fid_samples < need:
        raise ExplorerError(
            f"--fid-samples {args.fid_samples} is too few to estimate the features' covariance; use at "
            f"least {need:,} with {args.fid_features} features (the cards use 10,000)"
        )
    if args.fid:
        from explorer.checkpoints import dataset_of, read_config

        try:
            dataset = dataset_of(read_config(args.checkpoint))
        except ExplorerError:
            dataset = None  # the evaluation says what is wrong with the checkpoint
        if dataset is not None:
            check_fid_sets(dataset, args.fid_samples, args.fid_features)
            if args.fid_classifier is not None:
                from explorer.fid import load_classifier

                load_classifier(dataset, args.fid_classifier)  # there, readable, of this dataset
    if args.save_card:
        from explorer.cards import Card

        Card.read(args.checkpoint)  # no card to write into: said before the work


def check_fid_sets(dataset: str, n: int, features: str) -> None:
    """Refuse FID on a dataset whose test or training split (up to ``n`` images of each, as
    ``fid_figures`` takes them) is smaller than every set in the comparison must be.

    Raises:
        ExplorerError: how many images there are and how many are needed.
    """
    from explorer.data.cache import load_dataset
    from explorer.fid import too_few

    sets = {
        f"test images in {dataset}": min(n, len(load_dataset(dataset, "test"))),
        f"training images in {dataset} (the floor's reference)": min(n, len(load_dataset(dataset, "train"))),
    }
    short = too_few(sets, features)
    if short:
        raise ExplorerError(f"{short}. Measure FID on a dataset with more images, or leave out --fid")


def fid_figures(model, dataset: str, args) -> dict:
    """The model's FID and the test-against-train floor, as ``evaluate --fid`` reports them.
    Real images are the dataset's grey levels (/ 255) whatever the model's binarisation: the
    samples are decoder means, which are grey too."""
    from explorer.data.cache import eval_images
    from explorer.fid import frechet_distance, model_samples

    n = args.fid_samples
    check_fid_sets(dataset, n, args.fid_features)  # every set: the samples, test and training images
    test, _ = eval_images(dataset, "test", binarized=False, limit=n)
    train, _ = eval_images(dataset, "train", binarized=False, limit=n)
    samples = model_samples(model, n)
    what = "decoder means at z ~ N(0, I)"
    folder = getattr(args, "fid_classifier", None)
    figures = {
        "model": frechet_distance(
            test, samples, dataset, args.fid_features, f"{len(test):,} test images",
            f"{n:,} samples ({what})", classifier_folder=folder,
        ).to_dict(),
        "test_vs_train": frechet_distance(
            train, test, dataset, args.fid_features, f"{len(train):,} training images",
            f"{len(test):,} test images", classifier_folder=folder,
        ).to_dict(),
    }  # fmt: skip
    return figures


def print_fid(figures: dict) -> None:
    model, floor = figures["model"], figures["test_vs_train"]
    label = f"FID ({model['features']} features)"
    print(f"  {label:<28} {model['value']:9.3f}  samples: {model['generated']} against {model['real']}")
    print(
        f"  {'  floor: test vs train':<28} {floor['value']:9.3f}  "
        f"({floor['generated']} against {floor['real']})"
    )
    print(f"  features: {model['feature_source']}")
    if model["features"] == "classifier":
        print("  (not comparable with Inception FID, the figure papers report)")


def save_to_card(checkpoint: str, figures: dict, args=None) -> Path:
    """Write ``figures`` under ``sample_quality`` in the checkpoint's card (``explorer.cards``),
    with the command that measured them.

    Raises:
        CheckpointError: the checkpoint has no card.json (export the run first).
    """
    from explorer.cards import save_sample_quality
    from explorer.checkpoints import resolve

    flags = ""
    if args is not None and args.fid_samples != 10_000:
        flags += f" --fid-samples {args.fid_samples}"
    if args is not None and args.fid_features != "classifier":
        flags += f" --fid-features {args.fid_features}"
    command = f"vae-explorer evaluate {resolve(checkpoint).name} --k 0 --fid{flags} --save-card"
    return save_sample_quality(checkpoint, figures, command)


COMMANDS = {"classifier": cmd_classifier}
