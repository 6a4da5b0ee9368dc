"""Fuzzing of the readers (MIDI, ABC, MusicXML) and the tokenizer with mutated files and random
bytes.

Every case must end in a parsed melody or a skip reason (the project's own error); any other
exception, a case slower than ``max_seconds``, or a case that allocates more than ``max_mb``
(traced by tracemalloc) is a finding. A case still running at ``HANG_FACTOR`` times
``max_seconds`` is stopped and reported, so one runaway input cannot hang the run.
``seqgan-music fuzz`` runs it; the test suite runs a fixed-seed few hundred cases.
"""

from __future__ import annotations

import contextlib
import io
import signal
import threading
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable

import mido
import numpy as np
import pretty_midi

from seqgan_music.config import ENCODING_NAMES, TokenizerConfig
from seqgan_music.fuzz_text import (
    ABC_MUTATIONS,
    MUSICXML_MUTATIONS,
    flip_bytes,
    seed_abc,
    seed_musicxml,
    truncate_bytes,
)
from seqgan_music.sources import Item, Limits, parse_item


def seed_midis(rng: np.random.Generator, count: int = 6) -> list[bytes]:
    """Small valid multi-track MIDI files to mutate (made here, in memory)."""
    out = []
    for _ in range(count):
        pm = pretty_midi.PrettyMIDI(initial_tempo=float(rng.integers(60, 180)))
        for _ in range(int(rng.integers(0, 3))):  # time signatures (the bars encoding reads them), odd ones too
            numerator, denominator = int(rng.choice([1, 2, 3, 4, 5, 6, 7, 9, 12, 15])), int(rng.choice([1, 2, 4, 8, 16, 32]))
            pm.time_signature_changes.append(pretty_midi.TimeSignature(numerator, denominator, float(rng.uniform(0, 2))))
        for track in range(int(rng.integers(1, 4))):
            inst = pretty_midi.Instrument(program=int(rng.integers(0, 128)), is_drum=track == 2)
            t = 0.0
            for _ in range(int(rng.integers(5, 40))):
                d = float(rng.choice([0.0, 0.1, 0.25, 0.5]))
                inst.notes.append(pretty_midi.Note(int(rng.integers(1, 128)), int(rng.integers(0, 128)), t, t + d))
                t += float(rng.choice([0.0, 0.125, 0.25]))
            pm.instruments.append(inst)
        buf = io.BytesIO()
        pm.write(buf)
        out.append(buf.getvalue())
    return out


def _header(rng, data: bytes) -> bytes:
    """Absurd header values: format, track count, time division."""
    b = bytearray(data)
    field = int(rng.integers(0, 3))
    value = rng.choice([0, 1, 2, 3, 0x7FFF, 0x8000, 0xFFFF, int(rng.integers(0, 65536))])
    b[8 + 2 * field : 10 + 2 * field] = int(value).to_bytes(2, "big")
    return bytes(b)


def _giant_delta(rng, data: bytes) -> bytes:
    """A maximal variable-length delta time spliced in after a track header."""
    pos = data.find(b"MTrk", 14)
    if pos < 0:
        return data
    b = bytearray(data)
    b[pos + 8 : pos + 8] = b"\x8f\xff\xff\x7f\x90\x3c\x40"
    length = int.from_bytes(b[pos + 4 : pos + 8], "big") + 7
    b[pos + 4 : pos + 8] = length.to_bytes(4, "big")
    return bytes(b)


def _running_status(rng, data: bytes) -> bytes:
    """Drop status bytes so data bytes run on under a stale (or no) running status."""
    b = bytearray(data)
    idx = [i for i in range(14, len(b)) if 0x80 <= b[i] <= 0xEF]
    for i in sorted(rng.choice(idx, size=min(len(idx), int(rng.integers(1, 6))), replace=False), reverse=True):
        del b[i]
    return bytes(b)


def _notes_edge(rng, data: bytes) -> bytes:
    """Zero-length, overlapping, unterminated and orphan-off notes built with mido."""
    mf = mido.MidiFile(ticks_per_beat=int(rng.choice([1, 96, 480, 32767])))
    track = mido.MidiTrack()
    for _ in range(int(rng.integers(1, 60))):
        kind = rng.choice(["note_on", "note_off"])
        track.append(mido.Message(str(kind), note=int(rng.integers(0, 128)), velocity=int(rng.integers(0, 128)),
                                  time=int(rng.choice([0, 0, 1, 10, 100000]))))
    mf.tracks.append(track)
    buf = io.BytesIO()
    mf.save(file=buf)
    return buf.getvalue()


def _random_bytes(rng, data: bytes) -> bytes:
    raw = rng.integers(0, 256, size=int(rng.integers(0, 400)), dtype=np.uint8).tobytes()
    return (b"MThd" + raw) if rng.random() < 0.5 else raw


MUTATIONS: dict[str, Callable] = {
    "byte_flip": flip_bytes, "truncate": truncate_bytes, "header": _header, "giant_delta": _giant_delta,
    "running_status": _running_status, "note_edges": _notes_edge, "random_bytes": _random_bytes,
}


KINDS = ("midi", "abc", "musicxml")
HANG_FACTOR = 4  # a case is stopped at this many times max_seconds


class CaseStopped(BaseException):
    """Raised in a runaway case (a BaseException: the readers' ``except Exception`` must not catch it)."""


@contextlib.contextmanager
def _stopped_after(seconds: float):
    """Interrupt the block after ``seconds`` (main thread only: elsewhere the block runs unbounded)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        raise CaseStopped

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _seeds(kind: str, rng: np.random.Generator) -> tuple[list, dict[str, Callable]]:
    """Valid inputs of ``kind`` to mutate, and that kind's mutations."""
    if kind == "abc":
        return [seed_abc(rng) for _ in range(6)], ABC_MUTATIONS
    if kind == "musicxml":
        return [seed_musicxml(rng) for _ in range(6)], MUSICXML_MUTATIONS
    return seed_midis(rng), MUTATIONS


def _run_case(item: Item, cfg: TokenizerConfig, limits: Limits, max_seconds: float) -> tuple[str, float, float]:
    """(outcome, seconds, peak MB) of one case; outcome 'melody', 'skipped', 'stopped' or 'Type: message'."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with _stopped_after(HANG_FACTOR * max_seconds):
            results = parse_item(item, cfg, limits)
        outcome = "melody" if results[0].tokens is not None else "skipped"
    except CaseStopped:
        outcome = "stopped"
    except Exception as exc:  # a finding: anything but a melody or a skip reason
        outcome = f"{type(exc).__name__}: {exc}"
    finally:
        peak_mb = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    return outcome, time.perf_counter() - start, peak_mb


def run_fuzz(cases: int = 300, seed: int = 0, max_seconds: float = 30.0, max_mb: float = 200.0,
             encodings=ENCODING_NAMES, kinds=KINDS) -> dict:
    """Run ``cases`` mutated inputs through parse_item, the kinds in turn. Returns counts per
    outcome and kind, and a list of findings. ``max_seconds`` is under tracemalloc, which slows
    music21's readers about 3x: 30 s traced is the hostile bench's 10 s untraced."""
    rng = np.random.default_rng(seed)
    seeds = {kind: _seeds(kind, rng) for kind in kinds}
    limits = Limits()
    outcomes: Counter = Counter()
    findings: list[str] = []
    for case in range(cases):
        kind = kinds[case % len(kinds)]
        kind_seeds, mutations = seeds[kind]
        name = list(mutations)[(case // len(kinds)) % len(mutations)]
        data = mutations[name](rng, kind_seeds[int(rng.integers(0, len(kind_seeds)))])
        cfg = TokenizerConfig(encoding=encodings[case % len(encodings)])
        item = Item(f"case{case}-{name}.{'mid' if kind == 'midi' else kind}", kind, data)
        outcome, took, peak_mb = _run_case(item, cfg, limits, max_seconds)
        where = f"case {case} ({kind} {name})"
        if outcome in ("melody", "skipped"):
            outcomes[f"{kind} {outcome}"] += 1
        elif outcome == "stopped":
            findings.append(f"{where}: still running after {HANG_FACTOR * max_seconds:g} s, stopped")
        else:
            findings.append(f"{where}: {outcome}")
        if took > max_seconds and outcome != "stopped":
            findings.append(f"{where}: took {took:.1f} s")
        if peak_mb > max_mb:
            findings.append(f"{where}: allocated {peak_mb:.0f} MB")
    return {"cases": cases, "seed": seed, "outcomes": dict(outcomes), "findings": findings}
