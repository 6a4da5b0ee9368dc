"""Atomic file writes (temp file in the same folder, flush, fsync, rename) and the cache folder.

A process killed at any moment leaves either the old file or the new one, never a torn file.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Callable
from typing import IO

import numpy as np

from seqgan_music.errors import UserError


def cache_root() -> str:
    """Where prepared-piece caches and the compiled kernels live: ``$SEQGAN_MUSIC_CACHE``, else
    ``$XDG_CACHE_HOME/seqgan-music``, else ``~/.cache/seqgan-music``."""
    if os.environ.get("SEQGAN_MUSIC_CACHE"):
        return os.environ["SEQGAN_MUSIC_CACHE"]
    return os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "seqgan-music")


def check_writable_dir(path: str) -> None:
    """Create folder ``path`` if needed and prove a file can be written in it; a UserError naming it
    otherwise (under a file, on a read-only or virtual file system, without permission)."""
    try:
        os.makedirs(path, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise UserError(f"{path}: cannot write there ({exc.strerror or exc})") from None


def atomic_write(path: str, write: Callable[[IO[bytes]], None]) -> None:
    """Call ``write(fh)`` on a temp file next to ``path``, then atomically replace ``path``."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str, data: bytes) -> None:
    atomic_write(path, lambda fh: fh.write(data))


def atomic_write_text(path: str, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_save_npz(path: str, **arrays: np.ndarray) -> None:
    """np.savez (uncompressed) written atomically; load with ``np.load(path, allow_pickle=False)``."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())
