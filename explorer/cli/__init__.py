"""The ``vae-explorer`` command: train, evaluate, sample, manifold, reconstruct, export, data,
classifier; ``python -m explorer.cli`` runs it too.

One module per command group parses its flags and calls into the library: ``train`` (one call
into ``explorer.train.run``), ``models`` (evaluate, sample, manifold, reconstruct), ``export``,
``data``, ``fid`` (the classifier command and the FID flags of evaluate) and ``paper`` (the
paper's experiments); ``args`` holds the
argument types they share. Errors meant for a person (bad flags, paths, broken checkpoints,
missing data) print one line and exit non-zero.
"""

from __future__ import annotations

import atexit
import os
import shlex
import sys
import threading

from explorer.cli import data, derive, evidence, export, fid, models, paper, train
from explorer.cli.args import EXIT_ERROR, EXIT_INTERRUPTED, Parser, check_checkpoints
from explorer.cli.train import COMMAND_ENV
from explorer.errors import ExplorerError

COMMANDS = {
    **train.COMMANDS,
    **models.COMMANDS,
    **export.COMMANDS,
    **derive.COMMANDS,
    **data.COMMANDS,
    **fid.COMMANDS,
    **paper.COMMANDS,
    **evidence.COMMANDS,
}


def build_parser() -> Parser:
    p = Parser(prog="vae-explorer", description="Train, evaluate and explore VAEs (AEVB).")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser, metavar="COMMAND")
    train.add_train_parser(sub)
    models.add_model_parsers(sub)
    export.add_export_parser(sub)
    derive.add_derive_parser(sub)
    data.add_data_parser(sub)
    fid.add_classifier_parser(sub)
    paper.add_paper_parser(sub)
    evidence.add_evidence_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    args.command_line = os.environ.pop(COMMAND_ENV, None) or shlex.join(["vae-explorer", *argv])
    args.argv = list(argv)
    try:
        check_checkpoints(args)  # a checkpoint that is not there: refused before torch is loaded
        code = COMMANDS[args.command](args)
    except (ExplorerError, ValueError) as exc:  # ValueError: a config's validation
        action = getattr(
            args, f"{args.command}_command", None
        )  # data add, paper figure2: as argparse names them
        print(f"vae-explorer {args.command}{f' {action}' if action else ''}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader went away (`| head`); what was written is kept
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return EXIT_ERROR
    return code or 0


def entry() -> None:
    """The ``vae-explorer`` console script and ``python -m explorer.cli``: ``main()``, then an
    exit that skips the interpreter's teardown.

    Once torch (and the torch._dynamo that torch.optim imports) is loaded, Python's teardown of
    those thousands of modules takes most of a second, after everything is written (the figure:
    bench/README.md, start-up). Every file a command writes is closed (checkpoints and run files
    are written atomically and synced) before ``main`` returns; here the exit handlers run, other
    non-daemon threads are joined and both streams flushed, as at a normal exit, and then the
    process ends without the teardown (the operating system frees its memory). ``main`` itself,
    which tests call in-process, returns as before.
    """
    code = main()
    try:
        for thread in threading.enumerate():
            if thread is not threading.main_thread() and not thread.daemon:
                thread.join()
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):  # a closed pipe (vae-explorer ... | head): nothing to keep
                pass
        os._exit(code)
