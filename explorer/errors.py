"""Error types whose message is meant for a person: what happened and what to do.

The CLI prints these as one line and exits non-zero; the app shows them with ``st.error``.
Anything else that escapes is a bug.
"""


class ExplorerError(Exception):
    """Base class for errors with a user-facing message."""


class DatasetError(ExplorerError):
    """A dataset could not be found, fetched or verified."""


class CheckpointError(ExplorerError):
    """A checkpoint is missing, truncated, corrupted, of the wrong kind, or does not match."""


class ImageError(ExplorerError):
    """An image cannot be read or used as model input."""


class SourceFailed(Exception):
    """One source could not give a dataset's files (offline, a bad checksum, an unreadable file).

    Not shown alone: ``explorer.data.cache.fetch`` tries the next source and, when every one
    failed, raises one ``DatasetError`` that names each source and its reason."""
