"""The ``vae-explorer`` command: train, evaluate, sample, manifold, reconstruct, export, data.

Parsing happens here and in ``cli_train`` and ``cli_tools`` and nowhere else; each command calls
into the library. Errors meant for a person (bad flags, paths, broken checkpoints, missing data)
print one line and exit non-zero.
"""

from __future__ import annotations

import atexit
import os
import shlex
import sys
import threading

from explorer.cli_args import EXIT_ERROR, EXIT_INTERRUPTED, Parser
from explorer.cli_evidence import add_evidence_parser, cmd_evidence
from explorer.cli_paper import add_paper_parser, cmd_paper
from explorer.cli_tools import TOOLS, add_tool_parsers
from explorer.cli_train import COMMAND_ENV, add_train_parser, cmd_train
from explorer.errors import ExplorerError

COMMANDS = {"train": cmd_train, "paper": cmd_paper, **TOOLS, "evidence": cmd_evidence}


def build_parser() -> Parser:
    p = Parser(prog="vae-explorer", description="Train, evaluate and explore VAEs (AEVB).")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser, metavar="COMMAND")
    add_train_parser(sub)
    add_tool_parsers(sub)
    add_paper_parser(sub)
    add_evidence_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    args.command_line = os.environ.pop(COMMAND_ENV, None) or shlex.join(["vae-explorer", *argv])
    args.argv = list(argv)
    try:
        code = COMMANDS[args.command](args)
    except (ExplorerError, ValueError) as exc:  # ValueError: a config's validation
        print(f"vae-explorer {args.command}: error: {exc}", file=sys.stderr)
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
    those thousands of modules takes 0.8 s on the 2-core bench host, after everything is written
    (bench/README.md, start-up). Every file a command writes is closed (checkpoints and run files
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


if __name__ == "__main__":
    entry()
