"""The files of one training run: ``last.pt``, ``mle.pt``, ``best.pt`` (checkpoint.py's format,
written atomically) and ``metrics.jsonl`` (one JSON line per completed unit)."""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import os
import socket
import time
from typing import Any

from seqgan_music.checkpoint import BEST, LAST, MLE, save_checkpoint
from seqgan_music.errors import UserError
from seqgan_music.fileio import atomic_write_text

METRICS = "metrics.jsonl"


def new_run_folder(runs_dir: str, prefix: str = "") -> str:
    """Create and return a new, empty run folder under ``runs_dir`` named PREFIX + the local time
    (``20261126-173000``), with ``-2``, ``-3``, ... when that name is taken (two runs started in
    the same second)."""
    os.makedirs(runs_dir, exist_ok=True)
    base = os.path.join(runs_dir, prefix + time.strftime("%Y%m%d-%H%M%S"))
    for n in itertools.count(1):
        path = base if n == 1 else f"{base}-{n}"
        with contextlib.suppress(FileExistsError):
            os.mkdir(path)
            return path


LOCK = ".lock"  # held (flock) by the process training in the folder; names it (pid, host, start)


class RunFolder:
    """Where a run's checkpoints and metrics live; only the main process writes."""

    def __init__(self, path: str):
        self.path = path
        self._locked = False

    @contextlib.contextmanager
    def locked(self):
        """Hold the folder's exclusive lock while training in it (re-entrant): a second training in
        the same folder (another ``train``, a ``train --resume``, the app) is a UserError naming the
        holder. The lock goes with the process, so a killed training leaves none behind."""
        if self._locked:
            yield
            return
        fd = os.open(self.file(LOCK), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
                raise UserError(f"{self.path}: another training is running in this folder ({holder}); "
                                "wait for it to end or choose another --out") from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"process {os.getpid()} on {socket.gethostname()} since {time.strftime('%H:%M:%S')}".encode(), 0)
            self._locked = True
            yield
        finally:
            self._locked = False
            os.close(fd)  # releases the lock

    def file(self, name: str) -> str:
        return os.path.join(self.path, name)

    @property
    def last(self) -> str:
        return self.file(LAST)

    def save(self, state: dict[str, Any], *, end_of_mle: bool = False, best_generator: dict | None = None) -> None:
        """``state`` as last.pt; also as mle.pt at the end of pre-training, and as best.pt with the
        selected generator's weights when a new best was chosen."""
        save_checkpoint(self.last, state)
        if end_of_mle:
            save_checkpoint(self.file(MLE), state)
        if best_generator is not None:
            save_checkpoint(self.file(BEST), dict(state, generator=best_generator))

    def save_missing(self, state: dict[str, Any]) -> None:
        """mle.pt and best.pt from ``state`` where the schedule never wrote them (no MLE epochs or
        no adversarial rounds), so that every finished run has all three."""
        for name in (MLE, BEST):
            if not os.path.exists(self.file(name)):
                save_checkpoint(self.file(name), state)

    def append_metrics(self, record: dict[str, Any]) -> None:
        with open(self.file(METRICS), "a", encoding="utf-8") as fh:
            fh.write(json.dumps(record) + "\n")

    def truncate_metrics(self, units_done: int) -> None:
        """Keep the metrics lines of the first ``units_done`` units (a kill can leave one unit ahead)."""
        path = self.file(METRICS)
        if not os.path.exists(path):
            return
        kept = []
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    break  # a torn last line from a hard kill
                if record.get("unit_index", -1) < units_done:
                    kept.append(json.dumps(record))
        atomic_write_text(path, "".join(k + "\n" for k in kept))
