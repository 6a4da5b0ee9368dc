"""The fused C kernels of ``kernels.c``: compiled on first use with the system C compiler, cached,
loaded with ctypes. CPU tensors only; without a compiler (or with SEQGAN_MUSIC_NATIVE=0) the
rollout runs its PyTorch path instead, with the same results up to float rounding.

The shared library lives in ``$XDG_CACHE_HOME/seqgan-music`` (default ``~/.cache``), named by a
hash of the source, the flags, the compiler and the CPU, so a changed kernel or machine rebuilds.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import torch

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
}


def _cpu_id() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            return next((line for line in fh if line.startswith("flags")), platform.processor())
    except OSError:
        return platform.processor()


def _build(compiler: str, target: Path) -> None:
    """Compile, dropping OpenMP and then -march=native if the compiler lacks them; atomic rename."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        out, source = Path(tmp) / target.name, Path(tmp) / SOURCE.name
        source.write_text(SOURCE_TEXT)
        for extra in (["-march=native", "-fopenmp"], ["-fopenmp"], ["-march=native"], []):
            result = subprocess.run([compiler, *FLAGS, *extra, str(source), "-o", str(out)], capture_output=True)
            if result.returncode == 0:
                os.replace(out, target)
                return
        raise OSError(f"{compiler} could not build {SOURCE.name}: {result.stderr.decode(errors='replace')[-300:]}")


@cache
def library() -> ctypes.CDLL | None:
    """The loaded kernels, or None when disabled or no compiler could build them."""
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if os.environ.get("SEQGAN_MUSIC_NATIVE", "1") == "0" or compiler is None:
        return None
    try:
        version = subprocess.run([compiler, "--version"], capture_output=True, text=True).stdout
        key = hashlib.sha256("\0".join([SOURCE_TEXT, *FLAGS, version, _cpu_id()]).encode()).hexdigest()[:16]
        target = _cache_dir() / f"kernels-{key}.so"
        if not target.exists():
            _build(compiler, target)
        lib = ctypes.CDLL(str(target))
    except OSError:
        return None
    for name, argtypes in SIGNATURES.items():
        getattr(lib, name).argtypes = argtypes
        getattr(lib, name).restype = None
    return lib


def _cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "seqgan-music"


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
    R, V = hw.shape[0], table.shape[0]
    width = V + 4 * h.shape[1] if advance else V
    if not (len(h) == len(c) == len(u) == len(tokens) == R and hw.shape[1] == width):
        raise ValueError("rollout_step: inconsistent shapes")
    library().rollout_step(_ptr(hw), hw.shape[1], _ptr(table), V, h.shape[1], _ptr(h), _ptr(c), _ptr(u),
                           _ptr(tokens, torch.int64, column), tokens.shape[1], R, int(advance))


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
