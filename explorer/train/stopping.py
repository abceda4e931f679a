"""A stop asked of a training process (Ctrl-C, the Train page's Stop: SIGINT or SIGTERM), kept as
a flag that the loop reads between steps, so that a stop saves a checkpoint instead of killing
the process mid-write."""

from __future__ import annotations

import signal


class StopRequest:
    """Turns SIGINT/SIGTERM into a flag checked between steps, so a stop saves a checkpoint; one entered
    in another (the trainer's, in the one over a run's start) keeps a stop the outer one had."""

    def __init__(self) -> None:
        self.requested = False
        self._old = {}

    def __enter__(self) -> StopRequest:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: cannot install handlers
                continue
            outer = getattr(self._old[sig], "__self__", None)
            self.requested |= isinstance(outer, StopRequest) and outer.requested
        return self

    def _handle(self, signum, frame) -> None:
        self.requested = True

    def __exit__(self, *exc) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)
