"""``vae-explorer data fetch|add|info``: the datasets in the cache, and a folder of a person's own
images added as a dataset."""

from __future__ import annotations

import argparse
import json
import os
import sys

from explorer.cli.args import Parser, number
from explorer.data.specs import DATASETS, SIZE_HELP
from explorer.errors import ExplorerError


def add_data_parser(sub) -> None:
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
    a.add_argument(
        "--size",
        default="32",
        help=f"image size: {SIZE_HELP}; default 32",
    )
    a.add_argument("--grey", action="store_true", help="greyscale (default: colour)")
    a.add_argument(
        "--fit",
        choices=("crop", "pad"),
        default="crop",
        help="crop: centre-crop to the shape, then resize (default); pad: resize to fit, pad with black",
    )
    a.add_argument(
        "--test-fraction",
        type=_test_fraction,
        default=0.1,
        help="share of the images in the test split, between 0 and 1, both excluded; default 0.1",
    )
    a.add_argument("--replace", action="store_true", help="replace a dataset of that name")
    i = dsub.add_parser("info", help="counts, shape, source and checksums")
    i.add_argument("name", help=f"{', '.join(DATASETS)} or a dataset you added")
    i.add_argument("--json", action="store_true")


def cmd_data(args) -> None:
    from explorer.data import cache as data

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


def _test_fraction(text: str) -> float:
    """``--test-fraction``: a number, refused as the library refuses it (``check_test_fraction``)."""
    from explorer.data.folders import check_test_fraction
    from explorer.errors import DatasetError

    value = number(float)(text)
    try:
        return check_test_fraction(value)
    except DatasetError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("the test fraction ")) from None


def _add_folder(args) -> None:
    from tqdm import tqdm

    from explorer.data.folders import add_folder

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
    print(f"train on it: {_train_command(args.name, args.size)}")
    if args.replace:
        _name_outdated_runs(args.name)


def _name_outdated_runs(name: str) -> None:
    """After ``--replace``: the runs trained on the dataset as it was, which every command that
    measures a model on its data now refuses (``explorer.data.record``), and the way on."""
    from explorer.data.record import outdated_models
    from explorer.train.runfolder import list_runs, runs_root

    runs = outdated_models(name, (runs_root() / run for run in list_runs()))
    if runs:
        print(
            f"note: {len(runs)} run(s) were trained on other data under the name {name}: "
            f"{', '.join(r.name for r in runs)}. "
            "The app, evaluate, evidence, reconstruct, export and derive refuse them on the new data; train "
            f"one from them on it with: vae-explorer train --out NEW_RUN --init-from RUN --dataset {name}",
            file=sys.stderr,
        )


def _train_command(name: str, size: str) -> str:
    """The command that trains a conv model of the dataset just added: the default channels, or as
    many of them as the images' smaller side can halve (a 4x4 dataset: two stride-2 convolutions)."""
    from explorer.config import ModelConfig
    from explorer.data.folders import parse_size

    default = ModelConfig().channels
    fit = default[: max(1, min(parse_size(size)).bit_length() - 1)]
    channels = "" if fit == default else f" --channels {','.join(map(str, fit))}"
    return f"vae-explorer train --dataset {name} --arch conv{channels} --name {name}-conv"


COMMANDS = {"data": cmd_data}
