"""Prepared datasets: parse sources (cached, in a process pool), split by piece, cut windows.

A dataset folder holds::

    windows.npz     train (N, T) and valid (M, T) int16 token windows; train_first_bar (N,) and
                    valid_first_bar (M,): the number in its tune of each window's first bar;
                    train_tune_bars (N,) and valid_tune_bars (M,): its tune's bar lines in all
    pieces.npz      every usable piece's tokens: tokens (sum L,), offsets (P+1,), valid (P,) bool
    tokenizer.json  the tokenizer config and vocabulary
    manifest.json   summary plus one entry per input piece (source, sha256, notes, windows, split
                    or the reason it was skipped)

Pieces shorter than T tokens give no window and are listed as skipped with that reason.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
import zipfile
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch

from seqgan_music.config import TokenizerConfig, to_dict
from seqgan_music.errors import UserError
from seqgan_music.fileio import atomic_save_npz, atomic_write_text, cache_root, check_writable_dir
from seqgan_music.metrics import KEYS, key_index
from seqgan_music.sources import Item, Limits, PieceResult, expand_sources, items_from_uploads, parse_item
from seqgan_music.tokenizer import Tokenizer

CACHE_VERSION = 2
Progress = Callable[[int, int], None]


@dataclass
class PrepareReport:
    pieces: int = 0  # usable pieces
    skipped: list[dict] = field(default_factory=list)  # {"source", "reason"}
    train_windows: int = 0
    valid_windows: int = 0
    train_pieces: int = 0
    valid_pieces: int = 0
    cached_files: int = 0  # input files whose parse came from the cache
    parsed_files: int = 0
    seconds: float = 0.0


def read_report(path: str) -> PrepareReport:
    """The report of the dataset folder ``path`` as ``prepare`` returned it, from its manifest."""
    try:
        with open(os.path.join(path, "manifest.json"), encoding="utf-8") as fh:
            manifest = json.load(fh)
        summary = {k: v for k, v in manifest["summary"].items() if k != "skipped"}
        skipped = [{"source": e["source"], "reason": e["skipped"]} for e in manifest["entries"] if "skipped" in e]
        return PrepareReport(**summary, skipped=skipped)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UserError(f"{path}: damaged dataset manifest ({exc})") from None


@dataclass
class PreparedDataset:
    """A loaded dataset folder. train/valid: (N, T) int64 tensors, train_place/valid_place
    (N, 2) where each window lies in its tune (:mod:`seqgan_music.bar_context`: its first bar's
    number, the tune's bar lines in all; zeros for datasets prepared before they were stored);
    pieces: list of (L,) arrays."""

    path: str
    tokenizer: Tokenizer
    train: torch.Tensor
    valid: torch.Tensor
    pieces: list[np.ndarray]
    piece_is_valid: np.ndarray
    train_place: torch.Tensor
    valid_place: torch.Tensor

    @property
    def seq_len(self) -> int:
        return self.train.shape[1]

    def train_tunes(self) -> list[np.ndarray]:
        """The training pieces, whole: (L,) token arrays."""
        return [p for p, valid in zip(self.pieces, self.piece_is_valid) if not valid]


# ---------------------------------------------------------------- cache


def _cache_key(item: Item, tok_cfg: TokenizerConfig, limits: Limits) -> str:
    parse_cfg = {k: v for k, v in to_dict(tok_cfg).items() if k not in ("seq_len", "hop", "transpose", "key_to_c", "home_keys")}
    blob = json.dumps([CACHE_VERSION, item.sha256, item.kind, parse_cfg, asdict(limits)], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def _cache_load(path: str, item: Item) -> list[PieceResult] | None:
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(z["meta"].tobytes().decode("utf-8"))
            tokens, offsets = z["tokens"], z["offsets"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, json.JSONDecodeError):
        return None  # a damaged cache entry is simply parsed again
    out = []
    for i, (suffix, notes, reason, key) in enumerate(meta):
        piece = None if reason else tokens[offsets[i] : offsets[i + 1]]
        out.append(PieceResult(item.label + suffix, notes, piece, reason, key))
    return out


def _cache_store(path: str, item: Item, results: list[PieceResult]) -> None:
    meta = [(r.label[len(item.label) :], r.notes, r.reason, r.key) for r in results]
    lengths = [0 if r.tokens is None else len(r.tokens) for r in results]
    tokens = np.concatenate([r.tokens for r in results if r.tokens is not None] or [np.zeros(0, np.int16)])
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    meta_bytes = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
    with contextlib.suppress(OSError):  # a read-only or full cache folder only costs speed
        atomic_save_npz(path, tokens=tokens.astype(np.int16), offsets=offsets, meta=meta_bytes)


def _parse_job(args: tuple[Item, TokenizerConfig, Limits]) -> list[PieceResult]:
    return parse_item(*args)


def parse_all(
    items: list[Item], tok_cfg: TokenizerConfig, limits: Limits, cache_dir: str | None, workers: int,
    progress: Progress | None, report: PrepareReport,
) -> list[list[PieceResult]]:
    """Piece results per item, from the cache where possible, else parsed in a process pool."""
    results: list[list[PieceResult] | None] = [None] * len(items)
    keys = [_cache_key(it, tok_cfg, limits) for it in items]
    if cache_dir:
        os.makedirs(cache_dir, exist_ok=True)
        for i, (item, key) in enumerate(zip(items, keys)):
            path = os.path.join(cache_dir, key + ".npz")
            results[i] = _cache_load(path, item) if os.path.exists(path) else None
    todo = [i for i, r in enumerate(results) if r is None]
    report.cached_files = len(items) - len(todo)
    report.parsed_files = len(todo)
    done = report.cached_files
    if progress:
        progress(done, len(items))
    jobs = [(items[i], tok_cfg, limits) for i in todo]
    if workers > 1 and len(todo) > 1:
        # the largest files first, so one big file does not finish last on its own
        order = sorted(range(len(todo)), key=lambda j: -items[todo[j]].size)
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = {pool.submit(_parse_job, jobs[j]): todo[j] for j in order}
            for fut in as_completed(futures):
                results[futures[fut]] = fut.result()
                done += 1
                if progress:
                    progress(done, len(items))
    else:
        for i, job in zip(todo, jobs):
            results[i] = _parse_job(job)
            done += 1
            if progress:
                progress(done, len(items))
    if cache_dir:
        for i in todo:
            _cache_store(os.path.join(cache_dir, keys[i] + ".npz"), items[i], results[i])
    return results  # type: ignore[return-value]


# ---------------------------------------------------------------- prepare


def windows_of(tokenizer: Tokenizer, tokens: np.ndarray, ends: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(W, T) windows of one piece about ``hop`` tokens apart (at bar lines where the encoding has
    them, :meth:`Tokenizer.window_starts`), and (W, 2) their places: the number of bar lines before
    each (its first bar's number in the tune) and the piece's bar lines in all; (0, T) and (0, 2)
    when shorter than T. With an END token the last
    window reaches the tune's end, padded with END; ``ends=False`` leaves out such windows."""
    T, hop = tokenizer.config.seq_len, tokenizer.config.hop
    starts = tokenizer.window_starts(tokens, T, hop) if len(tokens) >= T else np.zeros(0, np.int64)
    if not ends:
        starts = starts[starts + T < len(tokens)] if tokenizer.end_token is not None else starts
    if not len(starts):
        return np.zeros((0, T), dtype=np.int16), np.zeros((0, 2), dtype=np.int16)
    padded = tokens if tokenizer.end_token is None else np.append(tokens, np.full(T, tokenizer.end_token))
    is_bar = np.isin(tokens, tokenizer.bar_tokens)
    starts = np.asarray(starts)
    before = np.cumsum(is_bar)[starts] - is_bar[starts]  # bar lines before each window's first token
    place = np.stack([before, np.full(len(starts), is_bar.sum())], 1)
    windows = [tokenizer.mark_repeats(padded[s : s + T]) for s in starts]  # marks from the window's own bars
    return np.stack(windows).astype(np.int16), place.astype(np.int16)


def covering_starts(tokens: np.ndarray, T: int, bar_tokens: list[int]) -> list[int]:
    """Starts of windows of T that cover all of ``tokens``: every T tokens, the last one ending at
    the end; with bar lines, each at the latest bar line that leaves no gap."""
    L = len(tokens)
    bars = np.flatnonzero(np.isin(tokens, bar_tokens)) if bar_tokens else np.zeros(0, np.int64)
    if not len(bars) or bars[0] != 0:
        starts = list(range(0, max(L - T, 0) + 1, T))
        return starts + ([L - T] if starts[-1] + T < L else [])
    starts = [0]
    while starts[-1] + T < L:
        latest = int(bars[bars <= starts[-1] + T].max())  # a bar line inside the window or at its end
        starts.append(latest if latest > starts[-1] else starts[-1] + T)
    return starts


def split_pieces(n: int, valid_fraction: float, seed: int) -> np.ndarray:
    """(n,) bool, True for validation pieces: a seeded shuffle by piece, never by window."""
    is_valid = np.zeros(n, dtype=bool)
    n_valid = int(round(n * valid_fraction))
    if n >= 2 and valid_fraction > 0:
        n_valid = min(max(n_valid, 1), n - 1)
        is_valid[np.random.default_rng(seed).permutation(n)[:n_valid]] = True
    return is_valid


def prepare(
    sources: list[str], out_dir: str, tok_cfg: TokenizerConfig | None = None, *, valid_fraction: float = 0.1,
    seed: int = 0, limits: Limits | None = None, cache_dir: str | None = "default", workers: int | None = None,
    progress: Progress | None = None, uploads: list[tuple[str, bytes]] | None = None,
) -> PrepareReport:
    """Prepare a dataset folder from sources (files, folders, .zip, ``builtin:NAME``) and/or
    ``uploads``, (name, bytes) pairs of .mid/.midi/.zip files held in memory.

    Raises UserError when the sources are unusable or nothing usable remains; the old contents of
    ``out_dir`` are replaced only when the new dataset is complete.
    """
    start = time.perf_counter()
    tok_cfg = tok_cfg or TokenizerConfig()
    tokenizer = Tokenizer(tok_cfg)
    limits = limits or Limits()
    if not sources and not uploads:
        raise UserError("no sources given")
    if not 0 <= valid_fraction < 1:
        raise UserError(f"the validation fraction must lie in [0, 1), not {valid_fraction}")
    _check_out_dir(out_dir)
    report = PrepareReport()
    items, skipped = expand_sources(sources, limits)
    if uploads:
        more_items, more_skipped = items_from_uploads(uploads, limits)
        items, skipped = items + more_items, skipped + more_skipped
    if not items and not skipped:
        raise UserError(f"{', '.join(sources)[:300]}: no MIDI, ABC or MusicXML files found")
    cache_dir = cache_root() if cache_dir == "default" else cache_dir
    per_item = parse_all(items, tok_cfg, limits, cache_dir, workers or os.cpu_count() or 1, progress, report)
    return _write_dataset(items, per_item, skipped, tokenizer, out_dir, valid_fraction, seed, report, start)


def _write_dataset(items, per_item, skipped, tokenizer, out_dir, valid_fraction, seed, report, start):
    cfg = tokenizer.config
    entries: list[dict] = [{"source": r.label, "skipped": r.reason} for r in skipped]
    usable: list[tuple[PieceResult, str]] = []
    for item, results in zip(items, per_item):
        for r in results:
            if r.reason is None and len(r.tokens) < cfg.seq_len:
                r = PieceResult(r.label, r.notes, None, f"shorter than one window ({len(r.tokens)} < {cfg.seq_len} tokens)")
            if r.reason is None:
                usable.append((r, item.sha256))
            else:
                entries.append({"source": r.label, "sha256": item.sha256, "notes": r.notes, "skipped": r.reason})
    keys: list[dict] = [{}] * len(usable)  # each tune's key before it was moved to C, as manifest fields
    if cfg.key_to_c:
        usable, keys, home_keys = _moved_to_c(tokenizer, usable, entries)
        tokenizer = Tokenizer(replace(cfg, home_keys=home_keys))
        cfg = tokenizer.config
    report.skipped = [{"source": e["source"], "reason": e["skipped"]} for e in entries]
    if not usable:
        reasons = "; ".join(f"{os.path.basename(e['source'])}: {e['skipped']}" for e in entries[:3])
        more = f"; and {len(entries) - 3} more" if len(entries) > 3 else ""
        raise UserError(f"no usable melodies in {', '.join(items_label(items, skipped))}: every input was skipped "
                        f"({reasons}{more})"[:600])
    is_valid = split_pieces(len(usable), valid_fraction, seed)
    train, valid = [], []  # (windows, places) pairs
    for (r, sha), key, val in zip(usable, keys, is_valid):
        wins = windows_of(tokenizer, r.tokens)
        (valid if val else train).append(wins)
        n_aug = 0
        if not val:
            for k in range(-cfg.transpose, cfg.transpose + 1):
                moved = tokenizer.transpose(r.tokens, k) if k else None
                if moved is not None:
                    train.append(windows_of(tokenizer, moved))
                    n_aug += len(train[-1][0])
        entries.append({
            "source": r.label, "sha256": sha, "notes": r.notes, "tokens": len(r.tokens), "windows": len(wins[0]),
            "transposed_windows": n_aug, "split": "valid" if val else "train", **key,
        })
    T = cfg.seq_len
    train_arr, train_place = (np.concatenate(x) for x in zip(*train)) if train else (np.zeros((0, T), np.int16), np.zeros((0, 2), np.int16))
    valid_arr, valid_place = (np.concatenate(x) for x in zip(*valid)) if valid else (np.zeros((0, T), np.int16), np.zeros((0, 2), np.int16))
    if len(train_arr) == 0:
        raise UserError("no training windows: every usable piece landed in the validation split")
    report.pieces = len(usable)
    report.valid_pieces = int(is_valid.sum())
    report.train_pieces = report.pieces - report.valid_pieces
    report.train_windows, report.valid_windows = len(train_arr), len(valid_arr)
    tokens = [r.tokens for r, _ in usable]
    report.seconds = time.perf_counter() - start
    summary = {k: v for k, v in asdict(report).items() if k != "skipped"}
    summary["skipped"] = len(report.skipped)
    manifest = {"summary": summary, "valid_fraction": valid_fraction, "seed": seed, "entries": entries}
    _save_dataset(out_dir, (train_arr, train_place), (valid_arr, valid_place), tokens, is_valid, tokenizer, manifest)
    return report


def _save_dataset(out_dir: str, train: tuple[np.ndarray, np.ndarray], valid: tuple[np.ndarray, np.ndarray],
                  tokens: list[np.ndarray], is_valid: np.ndarray, tokenizer: Tokenizer, manifest: dict) -> None:
    """Write a dataset folder next to ``out_dir`` and swap it in: the (windows, places) of each
    split, the pieces' tokens with their split, the tokenizer and the manifest."""
    offsets = np.concatenate([[0], np.cumsum([len(t) for t in tokens])]).astype(np.int64)
    tmp = out_dir.rstrip("/") + f".tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    atomic_save_npz(os.path.join(tmp, "windows.npz"), train=train[0], valid=valid[0],
                    train_first_bar=train[1][:, 0], valid_first_bar=valid[1][:, 0],
                    train_tune_bars=train[1][:, 1], valid_tune_bars=valid[1][:, 1])
    atomic_save_npz(os.path.join(tmp, "pieces.npz"), tokens=np.concatenate(tokens).astype(np.int16), offsets=offsets,
                    valid=is_valid)
    tokenizer.save(os.path.join(tmp, "tokenizer.json"))
    atomic_write_text(os.path.join(tmp, "manifest.json"), json.dumps(manifest, indent=1))
    _swap_in(tmp, out_dir)


def _moved_to_c(tokenizer: Tokenizer, usable: list[tuple[PieceResult, str]], entries: list[dict]):
    """Each usable tune moved to tonic C by :meth:`Tokenizer.shift_to_tonic` (major tunes to C
    major, minor ones to C minor) from the key of its source's key signature, else the key its
    notes suggest; a tune no shift fits into the pitch range is skipped with an entry.
    -> (kept (tune, sha256) pairs, each one's key before as manifest fields, the 24 counts of those
    keys, index tonic + 12 for minor)."""
    kept, names, counts = [], [], [0] * 24
    for r, sha in usable:
        key = key_index(tokenizer.decode_notes(r.tokens)) if r.key is None else r.key
        shift = tokenizer.shift_to_tonic(r.tokens, 0, key % 12)
        if shift is None:
            entries.append({"source": r.label, "sha256": sha, "notes": r.notes,
                            "skipped": f"its key ({KEYS[key]}) cannot move to C: notes would leave the pitch range"})
            continue
        kept.append((replace(r, tokens=tokenizer.transpose(r.tokens, shift)), sha))
        names.append({"key": KEYS[key], "key_from": "notes" if r.key is None else "key signature"})
        counts[key] += 1
    return kept, names, counts


def items_label(items: list[Item], skipped: list[PieceResult]) -> list[str]:
    labels = [it.label for it in items] + [s.label for s in skipped]
    return labels[:3] + ([f"... ({len(labels)} inputs)"] if len(labels) > 3 else [])


def _check_out_dir(out_dir: str) -> None:
    if os.path.isfile(out_dir):
        raise UserError(f"{out_dir}: exists and is a file, not a dataset folder")
    check_writable_dir(os.path.dirname(os.path.abspath(out_dir)))  # the new dataset is built beside it
    if os.path.isdir(out_dir) and os.listdir(out_dir) and not os.path.exists(os.path.join(out_dir, "manifest.json")):
        raise UserError(f"{out_dir}: folder is not empty and is not a dataset folder; choose another --out")


def _swap_in(tmp: str, out_dir: str) -> None:
    """Replace ``out_dir`` by the complete folder ``tmp`` (the old dataset survives until then)."""
    old = out_dir.rstrip("/") + f".old-{os.getpid()}"
    if os.path.isdir(out_dir):
        os.replace(out_dir, old)
    os.makedirs(os.path.dirname(os.path.abspath(out_dir)), exist_ok=True)
    os.replace(tmp, out_dir)
    shutil.rmtree(old, ignore_errors=True)


# ---------------------------------------------------------------- load


def load_dataset(path: str) -> PreparedDataset:
    """Load a prepared dataset folder; a missing or damaged file is a UserError naming it."""
    if not os.path.isdir(path):
        raise UserError(f"{path}: no such dataset folder (run 'seqgan-music prepare' first)")
    tokenizer = Tokenizer.load(os.path.join(path, "tokenizer.json"))
    reading = "windows.npz"
    try:
        with np.load(os.path.join(path, reading), allow_pickle=False) as z:
            train, valid = z["train"].astype(np.int64), z["valid"].astype(np.int64)
            places = [np.stack([z[f"{side}_{k}"].astype(np.int64) if f"{side}_{k}" in z else np.zeros(len(w), np.int64)
                                for k in ("first_bar", "tune_bars")], 1) for side, w in (("train", train), ("valid", valid))]
        reading = "pieces.npz"
        with np.load(os.path.join(path, reading), allow_pickle=False) as z:
            tokens, offsets, piece_valid = z["tokens"].astype(np.int64), z["offsets"], z["valid"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise UserError(f"{path}: damaged dataset ({reading}: {exc}); prepare it again") from None
    if train.ndim != 2 or train.shape[1] != tokenizer.config.seq_len or len(train) == 0:
        raise UserError(f"{path}: windows do not match the tokenizer's seq_len")
    if train.min() < 0 or max(train.max(), valid.max(initial=0)) >= tokenizer.vocab_size:
        raise UserError(f"{path}: tokens outside the vocabulary")
    if [len(b) for b in places] != [len(train), len(valid)] or min(b.min(initial=0) for b in places) < 0:
        raise UserError(f"{path}: window bar numbers do not match the windows")
    _check_pieces(path, tokens, offsets, piece_valid, tokenizer.vocab_size)
    pieces = [tokens[offsets[i] : offsets[i + 1]] for i in range(len(offsets) - 1)]
    return PreparedDataset(path, tokenizer, torch.from_numpy(train), torch.from_numpy(valid), pieces, piece_valid,
                           *(torch.from_numpy(b) for b in places))


def _check_pieces(path: str, tokens: np.ndarray, offsets: np.ndarray, valid: np.ndarray, vocab_size: int) -> None:
    """pieces.npz as ``prepare`` writes it: (N,) token ids in the vocabulary, N + 1 increasing
    offsets from 0 to the tokens' end, one validation flag per piece; a UserError naming it otherwise."""
    ok = (tokens.ndim == 1 and offsets.ndim == 1 and len(offsets) >= 2 and offsets.dtype.kind in "iu"
          and int(offsets[0]) == 0 and int(offsets[-1]) == len(tokens) and bool((np.diff(offsets) > 0).all())
          and valid.shape == (len(offsets) - 1,) and (len(tokens) == 0 or 0 <= tokens.min() <= tokens.max() < vocab_size))
    if not ok:
        raise UserError(f"{path}: damaged dataset (pieces.npz: its tokens, offsets or validation flags do not fit "
                        "together or the vocabulary); prepare it again")
