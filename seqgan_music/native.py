"""The fused C kernels of ``kernels.c``: compiled on first use with the system C compiler, cached,
loaded with ctypes. CPU tensors only; without a compiler (or with SEQGAN_MUSIC_NATIVE=0) the
rollout runs its PyTorch path instead, with the same results up to float rounding.

The shared library lives in ``<cache root>/kernels`` (:func:`fileio.cache_root`; ``SEQGAN_MUSIC_CACHE``
moves it), named by a hash of the source, the flags, the compiler and the CPU, so a changed kernel or
machine rebuilds. Loading a library runs its code, so the folder must be private: a directory (not a
link) owned by this user with mode 0700 (a looser one of ours is tightened and emptied; anyone
else's is refused). Each build records the library's SHA-256 beside it, and a library is loaded only
if it is a regular file of ours, not writable by others, whose content matches that record;
anything else is rebuilt.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import stat
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import torch

from seqgan_music.fileio import atomic_write_bytes, atomic_write_text, cache_root

SOURCE = Path(__file__).with_name("kernels.c")
# read at import, so that a process builds the kernels its wrappers below were written for even if
# the installed package changes while it runs
SOURCE_TEXT = SOURCE.read_text()
FLAGS = ["-O3", "-fno-math-errno", "-fno-trapping-math", "-fPIC", "-shared"]
MAX_VOCAB = 1 << 16  # the sampling kernel keeps a row of V probabilities on the thread's stack

_P, _I = ctypes.c_void_p, ctypes.c_int64
SIGNATURES = {
    "rollout_step": [_P, _I, _P, _I, _I, _P, _P, _P, _P, _I, _I, ctypes.c_int],
    "pool_windows": [_P, _I, _I, _I, _I, _I, _I, _I, _P, _P, _P, _P, _P, _P, _I],
    "highway_real_prob": [_P, _P, _P, ctypes.c_float, _I, _I, _P],
    "lstm_rows": [_P, _I, _I, _P, _I, _P, _P, _I],
}


def _cpu_id() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            return next((line for line in fh if line.startswith("flags")), platform.processor())
    except OSError:
        return platform.processor()


def _build(compiler: str, target: Path) -> bytes:
    """Compile, dropping OpenMP and then -march=native if the compiler lacks them; returns the library."""
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        out, source = Path(tmp) / target.name, Path(tmp) / SOURCE.name
        source.write_text(SOURCE_TEXT)
        for extra in (["-march=native", "-fopenmp"], ["-fopenmp"], ["-march=native"], []):
            result = subprocess.run([compiler, *FLAGS, *extra, str(source), "-o", str(out)], capture_output=True)
            if result.returncode == 0:
                return out.read_bytes()
        raise OSError(f"{compiler} could not build {SOURCE.name}: {result.stderr.decode(errors='replace')[-300:]}")


def private_dir(path: Path) -> Path:
    """``path`` created if needed and made private (see module doc); OSError if it cannot be trusted."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise OSError(f"{path}: not a directory owned by this user")
    if stat.S_IMODE(info.st_mode) != 0o700:  # others could have written here: trust nothing in it
        os.chmod(path, 0o700)
        for entry in path.iterdir():
            if entry.is_file() or entry.is_symlink():
                entry.unlink()
    return path


def _trusted_bytes(path: Path) -> bytes | None:
    """The file's content if it is a regular file of ours that only we can write, else None."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o022:
        return None
    return path.read_bytes()


def _verified_library(compiler: str, folder: Path, key: str) -> Path:
    """The path of a library whose content matches its recorded hash, built (again) if needed."""
    target, record = folder / f"kernels-{key}.so", folder / f"kernels-{key}.sha256"
    content, recorded = _trusted_bytes(target), _trusted_bytes(record)
    if content is None or recorded is None or hashlib.sha256(content).hexdigest() != recorded.decode(errors="replace"):
        content = _build(compiler, target)
        atomic_write_bytes(str(target), content)
        atomic_write_text(str(record), hashlib.sha256(content).hexdigest())
    return target


@cache
def library() -> ctypes.CDLL | None:
    """The loaded kernels, or None when disabled or no compiler could build them."""
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if os.environ.get("SEQGAN_MUSIC_NATIVE", "1") == "0" or compiler is None:
        return None
    try:
        version = subprocess.run([compiler, "--version"], capture_output=True, text=True).stdout
        key = hashlib.sha256("\0".join([SOURCE_TEXT, *FLAGS, version, _cpu_id()]).encode()).hexdigest()[:16]
        lib = ctypes.CDLL(str(_verified_library(compiler, private_dir(kernel_dir()), key)))
    except OSError as exc:
        print(f"seqgan-music: fused CPU kernels not used ({exc}); the PyTorch path runs instead", file=sys.stderr)
        return None
    for name, argtypes in SIGNATURES.items():
        getattr(lib, name).argtypes = argtypes
        getattr(lib, name).restype = None
    return lib


def kernel_dir() -> Path:
    """The private folder of the compiled kernels."""
    return Path(cache_root()) / "kernels"


_switched_off = False


@contextmanager
def switched_off():
    """Run a block on the PyTorch path even where the kernels are available (side-by-side benchmarks)."""
    global _switched_off
    before, _switched_off = _switched_off, True
    try:
        yield
    finally:
        _switched_off = before


def available(device: torch.device, vocab: int = 0) -> bool:
    """Whether the kernels serve a model of ``vocab`` tokens on ``device``."""
    return device.type == "cpu" and vocab <= MAX_VOCAB and not _switched_off and library() is not None


def _ptr(t: torch.Tensor, dtype: torch.dtype = torch.float32, offset: int = 0) -> ctypes.c_void_p:
    """Address of ``t``'s element ``offset``; the kernels read raw memory, so check first."""
    if t.dtype != dtype or not t.is_contiguous() or t.device.type != "cpu":
        raise ValueError(f"native kernels need contiguous CPU {dtype} tensors, got {t.dtype} {tuple(t.stride())}")
    return ctypes.c_void_p(t.data_ptr() + offset * t.element_size())


def rollout_step(hw: torch.Tensor, table: torch.Tensor, h: torch.Tensor, c: torch.Tensor, u: torch.Tensor,
                 tokens: torch.Tensor, column: int, advance: bool) -> None:
    """Sample one token per row and (if ``advance``) step its LSTM state, in place.

    hw (R, V + 4H): logits then recurrent gates h @ W_hh (the gates are overwritten), or (R, V) the
    logits alone when not ``advance``; table (V, 4H) the input gates per token
    (:meth:`Generator.step_tables` layout); h, c (R, H) contiguous; u (R,) uniform draws; the
    tokens go to ``tokens[:, column]`` of the (R, T) int64 ``tokens``.
    """
    R, V, H = hw.shape[0], table.shape[0], h.shape[1]
    width = V + 4 * H if advance else V
    if not (hw.dim() == table.dim() == h.dim() == tokens.dim() == 2 and hw.shape[1] == width
            and table.shape[1] == 4 * H and h.shape == c.shape == (R, H) and u.shape == (R,)
            and tokens.shape[0] == R and 0 <= column < tokens.shape[1] and 0 < V <= MAX_VOCAB):
        raise ValueError("rollout_step: inconsistent shapes")  # the kernel indexes raw memory
    library().rollout_step(_ptr(hw), hw.shape[1], _ptr(table), V, h.shape[1], _ptr(h), _ptr(c), _ptr(u),
                           _ptr(tokens, torch.int64, column), tokens.shape[1], R, int(advance))


def sample_rows(hw: torch.Tensor, vocab: int, u: torch.Tensor, tokens: torch.Tensor, column: int) -> None:
    """Draw one token per row from the logits ``hw[:, :vocab]`` of (R, W) ``hw`` (W >= vocab; the
    rest, e.g. recurrent gates, is left alone) with uniforms ``u`` (R,) into ``tokens[:, column]``."""
    R = hw.shape[0]
    if not (hw.dim() == tokens.dim() == 2 and 0 < vocab <= min(hw.shape[1], MAX_VOCAB) and u.shape == (R,)
            and tokens.shape[0] == R and 0 <= column < tokens.shape[1]):
        raise ValueError("sample_rows: inconsistent shapes")  # the kernel indexes raw memory
    library().rollout_step(_ptr(hw), hw.shape[1], _ptr(hw), vocab, 0, _ptr(hw), _ptr(hw), _ptr(u),
                           _ptr(tokens, torch.int64, column), tokens.shape[1], R, 0)


def lstm_rows(hw: torch.Tensor, vocab: int, inputs: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> None:
    """Step the LSTM state h, c (R, H) in place with the recurrent gates ``hw[:, vocab:]`` of (R,
    vocab + 4H) ``hw`` (overwritten) plus ``inputs`` (R, 4H), in :meth:`Generator.step_tables` layout."""
    R, H = h.shape
    if not (hw.dim() == inputs.dim() == 2 and hw.shape == (R, vocab + 4 * H) and inputs.shape == (R, 4 * H)
            and c.shape == (R, H) and vocab >= 0):
        raise ValueError("lstm_rows: inconsistent shapes")  # the kernel indexes raw memory
    library().lstm_rows(_ptr(hw), hw.shape[1], vocab, _ptr(inputs), H, _ptr(h), _ptr(c), R)


def pool_windows(tokens: torch.Tensor, widths: list[tuple[int, torch.Tensor, torch.Tensor, torch.Tensor]],
                 pooled: torch.Tensor, first: int = 1) -> None:
    """Fill pooled (P, R, F) with D's rectified pooled features; see ``pool_windows`` in kernels.c.

    tokens (P, R, T) int32, the completions of prefix lengths first .. first + P - 1; per filter
    width, (w, table (w V, n), bias (n,), inside (B, T - w + 1, n)), all contiguous.
    """
    P, R, T = tokens.shape
    V = widths[0][1].shape[0] // widths[0][0] if widths else 0
    B = widths[0][3].shape[0] if widths else 1
    for w, table, bias, inside in widths:
        n = table.shape[1]
        if not (table.shape == (w * V, n) and bias.shape == (n,) and inside.shape == (B, T - w + 1, n)):
            raise ValueError(f"pool_windows: inconsistent shapes for width {w}")
    if not (pooled.shape == (P, R, sum(t.shape[1] for _, t, _, _ in widths)) and first >= 1 and first + P <= T
            and R % B == 0):
        raise ValueError("pool_windows: inconsistent shapes")
    low, high = torch.aminmax(tokens) if tokens.numel() else (0, 0)
    if not 0 <= int(low) <= int(high) < V:
        raise ValueError("pool_windows: token ids outside the table")  # the kernel indexes raw memory

    def array(ctype, values):
        return (ctype * len(values))(*values)

    library().pool_windows(
        _ptr(tokens, torch.int32), first, P, R, B, T, V, len(widths),
        array(ctypes.c_int64, [w for w, _, _, _ in widths]), array(ctypes.c_int64, [t.shape[1] for _, t, _, _ in widths]),
        array(ctypes.c_void_p, [_ptr(t).value for _, t, _, _ in widths]),
        array(ctypes.c_void_p, [_ptr(b).value for _, _, b, _ in widths]),
        array(ctypes.c_void_p, [_ptr(i).value for _, _, _, i in widths]), _ptr(pooled), pooled.shape[2])


def highway_real_prob(z: torch.Tensor, x: torch.Tensor, w_diff: torch.Tensor, b_diff: float,
                      probs: torch.Tensor) -> None:
    """D's probability of real from its highway pre-activations; see ``highway_real_prob`` in kernels.c.

    z (R, 2F) gate then transform pre-activations; x (R, F) rectified pooled features; w_diff (F,)
    and b_diff the output layer's real minus fake row; writes probs (R,).
    """
    R, F = x.shape
    if not (z.shape == (R, 2 * F) and w_diff.shape == (F,) and probs.shape == (R,)):
        raise ValueError("highway_real_prob: inconsistent shapes")
    library().highway_real_prob(_ptr(z), _ptr(x), _ptr(w_diff), b_diff, F, R, _ptr(probs))
