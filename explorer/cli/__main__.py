"""``python -m explorer.cli``: the ``vae-explorer`` command."""

from explorer.cli import entry

entry()
