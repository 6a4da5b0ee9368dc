"""Build MIDI files in memory for tests (pretty_midi objects and bytes)."""

from __future__ import annotations

import io

import numpy as np
import pretty_midi


def melody_pm(pitches, durations=None, qpm: float = 120.0, program: int = 0, start_beats: float = 0.0) -> pretty_midi.PrettyMIDI:
    """A one-track monophonic melody; durations in quarter notes (default all 0.5)."""
    pm = pretty_midi.PrettyMIDI(initial_tempo=qpm)
    inst = pretty_midi.Instrument(program=program, name="lead")
    sec = 60.0 / qpm
    t = start_beats
    for i, p in enumerate(pitches):
        d = 0.5 if durations is None else durations[i]
        inst.notes.append(pretty_midi.Note(90, int(p), t * sec, (t + d) * sec))
        t += d
    pm.instruments.append(inst)
    return pm


def song_pm(seed: int = 0, bars: int = 8, qpm: float = 110.0) -> pretty_midi.PrettyMIDI:
    """A multi-track 'pop song': bass, chord pad, a melody in the upper register, and drums."""
    rng = np.random.default_rng(seed)
    pm = pretty_midi.PrettyMIDI(initial_tempo=qpm)
    sec = 60.0 / qpm
    bass = pretty_midi.Instrument(program=33, name="bass")
    pad = pretty_midi.Instrument(program=89, name="pad")
    lead = pretty_midi.Instrument(program=73, name="flute")
    drums = pretty_midi.Instrument(program=0, is_drum=True, name="drums")
    scale = [0, 2, 4, 5, 7, 9, 11, 12]
    for bar in range(bars):
        root = [0, 5, 7, 0][bar % 4] + 48
        t0 = bar * 4 * sec
        bass.notes.append(pretty_midi.Note(80, root - 12, t0, t0 + 4 * sec))
        for iv in (0, 4, 7):
            pad.notes.append(pretty_midi.Note(60, root + iv, t0, t0 + 4 * sec))
        for beat in range(8):
            ts = t0 + beat * 0.5 * sec
            lead.notes.append(pretty_midi.Note(95, 72 + int(rng.choice(scale)), ts, ts + 0.45 * sec))
            drums.notes.append(pretty_midi.Note(100, 42, ts, ts + 0.1 * sec))
    pm.instruments.extend([bass, pad, lead, drums])
    return pm


def to_bytes(pm: pretty_midi.PrettyMIDI) -> bytes:
    buf = io.BytesIO()
    pm.write(buf)
    return buf.getvalue()


def write(pm: pretty_midi.PrettyMIDI, path) -> str:
    pm.write(str(path))
    return str(path)


def random_melody_pm(seed: int, notes: int = 64) -> pretty_midi.PrettyMIDI:
    rng = np.random.default_rng(seed)
    pitches = rng.integers(55, 80, size=notes)
    durations = rng.choice([0.25, 0.5, 1.0], size=notes)
    return melody_pm(pitches, durations)
