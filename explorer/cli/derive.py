"""``vae-explorer derive``: store beside a model what the pages need of its test set
(``explorer.explore.derived``), so that its first view reads it instead of measuring it."""

from __future__ import annotations

import shutil
import time


def add_derive_parser(sub) -> None:
    d = sub.add_parser(
        "derive",
        help="store beside a model what the pages need of its test set (its derived/ folder): codes, "
        "ELBO, units, stranger detector, density maps, and t-SNE and UMAP maps of wide latent spaces",
    )
    d.add_argument("checkpoint", nargs="+", help="run folders or shipped model names")
    d.add_argument(
        "--no-maps",
        action="store_true",
        help="leave out the t-SNE and UMAP maps (about a minute each for 10,000 codes on a 2-core CPU; "
        "the Latent space page fits and stores one when it is first asked for)",
    )
    d.add_argument(
        "--force", action="store_true", help="measure again even where the stored files are the model's"
    )


def cmd_derive(args) -> None:
    """Write (or check) each model's derived files and say their size and what they took."""
    from explorer.checkpoints import resolve
    from explorer.explore.derived import CORE, PARTS, ensure, folder_of

    for name in args.checkpoint:
        folder = resolve(name)
        if args.force:
            shutil.rmtree(folder_of(folder), ignore_errors=True)
        start = time.perf_counter()
        derived = ensure(folder, parts=CORE if args.no_maps else PARTS, must_store=True)
        _finish_cut_short(folder)
        files = sorted(folder_of(folder).iterdir())
        size = sum(f.stat().st_size for f in files)
        parts = ", ".join(f"{k} {v:.1f} s" for k, v in derived.seconds.items())
        print(
            f"{name}: {folder_of(folder)} ({size / 1e6:.2f} MB; {time.perf_counter() - start:.1f} s here; "
            f"measured: {parts})"
        )


def _finish_cut_short(folder) -> None:
    """A run whose process ended while it stored these figures after its last epoch (its status
    still "running" in that stage, its owner gone) is finished once they are stored: its status
    says so (it stayed "running", which the Train page showed as lost)."""
    from explorer.train.runfolder import RunFolder, pid_alive

    run = RunFolder(folder)
    status = run.read_status() or {}
    owner_gone = not pid_alive(int(status.get("pid", 0)) or -1)
    if status.get("state") == "running" and status.get("stage") and owner_gone:
        own = ("state", "pid", "time")
        kept = {k: v for k, v in status.items() if k not in own and not k.startswith("stage")}
        run.write_status("finished", **kept, derived="stored")


COMMANDS = {"derive": cmd_derive}
