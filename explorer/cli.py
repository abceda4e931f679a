"""The ``vae-explorer`` command: train, evaluate, sample, manifold, reconstruct, export, data.

Parsing happens here and in ``cli_train`` and ``cli_tools`` and nowhere else; each command calls
into the library. Errors meant for a person (bad flags, paths, broken checkpoints, missing data)
print one line and exit non-zero.
"""

from __future__ import annotations

import os
import shlex
import sys

from explorer.cli_args import EXIT_ERROR, EXIT_INTERRUPTED, Parser
from explorer.cli_tools import TOOLS, add_tool_parsers
from explorer.cli_train import COMMAND_ENV, add_train_parser, cmd_train
from explorer.errors import ExplorerError

COMMANDS = {"train": cmd_train, **TOOLS}


def build_parser() -> Parser:
    p = Parser(prog="vae-explorer", description="Train, evaluate and explore VAEs (AEVB).")
    sub = p.add_subparsers(dest="command", required=True, parser_class=Parser, metavar="COMMAND")
    add_train_parser(sub)
    add_tool_parsers(sub)
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
    return code or 0


if __name__ == "__main__":
    sys.exit(main())
