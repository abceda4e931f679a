"""Small display helpers shared by pages. (The training form is ``explorer.ui.train_form``.)"""

from __future__ import annotations


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def distinct_uploads(uploads: list) -> tuple[list, list[tuple[str, str]]]:
    """The uploaded files with repeats of the same content left out (a file added twice), and the
    (repeat's name, first name) pairs that were left out."""
    import hashlib

    seen: dict[str, str] = {}
    kept, repeats = [], []
    for upload in uploads:
        digest = hashlib.sha256(upload.getvalue()).hexdigest()
        if digest in seen:
            repeats.append((upload.name, seen[digest]))
        else:
            seen[digest] = upload.name
            kept.append(upload)
    return kept, repeats
