"""Melody extraction: one monophonic voice (:class:`Melody`) from a MIDI file or from note lists.

Which track is the melody (:func:`select_notes`), its reduction to one voice by skyline, and the
metre and downbeat that place its bar lines. Token encodings are :mod:`seqgan_music.tokenizer`'s.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pretty_midi

from seqgan_music.config import TokenizerConfig


@dataclass
class Melody:
    """One monophonic voice. Arrays of equal length n, sorted by onset, not overlapping.

    pitch: (n,) int MIDI numbers; start_q, end_q: (n,) float quarter notes from the piece start;
    start_s, end_s: (n,) float seconds.
    """

    pitch: np.ndarray
    start_q: np.ndarray
    end_q: np.ndarray
    start_s: np.ndarray
    end_s: np.ndarray
    meter: str = "4/4"  # time signature as "numerator/denominator"
    downbeat_q: float = 0.0  # a time (quarter notes) where a bar starts
    keys: tuple[int, ...] = ()  # keys (tonic + 12 for minor) the source's key signature allows; () if it states none

    def __len__(self) -> int:
        return len(self.pitch)


# semitones from a key signature's major tonic to the tonic of each mode; the modes with a minor
# third count as minor keys
MODE_TONICS = {"major": 0, "ionian": 0, "dorian": 2, "phrygian": 4, "lydian": 5, "mixolydian": 7,
               "minor": 9, "aeolian": 9, "locrian": 11}
MINOR_MODES = ("dorian", "phrygian", "minor", "aeolian", "locrian")


def signature_keys(major_tonic: int, mode: str | None = None) -> tuple[int, ...]:
    """The keys (tonic + 12 for minor) a key signature allows, given the pitch class of its major
    key's tonic: the one key its ``mode`` names, else its major key and its relative minor (MIDI
    files often mark every key major, so their mode is not taken)."""
    mode = (mode or "").lower()
    if mode not in MODE_TONICS:
        return major_tonic % 12, (major_tonic + 9) % 12 + 12
    return ((major_tonic + MODE_TONICS[mode]) % 12 + 12 * (mode in MINOR_MODES),)


class SkipPiece(Exception):
    """A piece that yields no melody; ``str(exc)`` is the reason shown in reports."""


def _track_notes(inst: pretty_midi.Instrument) -> np.ndarray:
    """(n, 3) array of start_s, end_s, pitch for one instrument's notes."""
    return np.array([(n.start, n.end, n.pitch) for n in inst.notes], dtype=np.float64).reshape(-1, 3)


def _polyphony(notes: np.ndarray) -> float:
    """Fraction of notes that start while an earlier note of the same track still sounds."""
    if len(notes) < 2:
        return 0.0
    order = np.argsort(notes[:, 0], kind="stable")
    starts, ends = notes[order, 0], notes[order, 1]
    running_end = np.maximum.accumulate(ends)[:-1]
    return float(np.mean(starts[1:] < running_end - 1e-6))


def melody_score(notes: np.ndarray) -> float:
    """Heuristic melody-likeness of one track: many notes, high register, little polyphony."""
    if len(notes) == 0:
        return -np.inf
    return float(np.log1p(len(notes)) + np.mean(notes[:, 2]) / 12.0 - 4.0 * _polyphony(notes))


def select_notes(pm: pretty_midi.PrettyMIDI, cfg: TokenizerConfig) -> np.ndarray:
    """Pick the melody voice's candidate notes, (n, 3) start_s, end_s, pitch (still polyphonic)."""
    pitched = [inst for inst in pm.instruments if not inst.is_drum and inst.notes]
    if not pitched:
        if any(inst.notes for inst in pm.instruments):
            raise SkipPiece("drums only: no pitched notes")
        raise SkipPiece("no notes")
    if cfg.track is not None:
        return _track_notes(_find_track(pm, cfg.track))
    if cfg.skyline_all:
        return np.concatenate([_track_notes(inst) for inst in pitched])
    return max((_track_notes(inst) for inst in pitched), key=melody_score)


def _find_track(pm: pretty_midi.PrettyMIDI, track: str) -> pretty_midi.Instrument:
    if str(track).lstrip("-").isdigit():
        index = int(track)
        if not 0 <= index < len(pm.instruments):
            raise SkipPiece(f"track {index} does not exist ({len(pm.instruments)} tracks)")
        inst = pm.instruments[index]
    else:
        named = [inst for inst in pm.instruments if inst.name.strip().lower() == str(track).strip().lower()]
        if not named:
            raise SkipPiece(f"no track named {track!r}")
        inst = named[0]
    if inst.is_drum or not inst.notes:
        raise SkipPiece(f"track {track!r} has no pitched notes")
    return inst


def skyline(notes: np.ndarray) -> np.ndarray:
    """Reduce (n, 3) start, end, pitch notes to one voice keeping the highest sounding pitch.

    A higher note that starts while a lower one sounds cuts it; a lower note that starts under a
    sounding higher note is dropped. Returns (m, 3), sorted, non-overlapping, positive lengths.
    """
    notes = notes[notes[:, 1] > notes[:, 0]]
    order = np.lexsort((-notes[:, 2], notes[:, 0]))
    out: list[list[float]] = []
    for start, end, pitch in notes[order]:
        if out:
            last = out[-1]
            if start <= last[0] + 1e-9:  # same onset: the first one is the highest
                continue
            if start < last[1]:
                if pitch <= last[2]:
                    continue
                last[1] = start
        out.append([start, end, pitch])
    return np.array(out, dtype=np.float64).reshape(-1, 3)


def extract_melody(pm: pretty_midi.PrettyMIDI, cfg: TokenizerConfig) -> Melody:
    """The melody of a MIDI file as one voice (selection per ``cfg``, then skyline)."""
    notes = skyline(select_notes(pm, cfg))
    if len(notes) == 0:
        raise SkipPiece("no notes with a positive length")
    ticks = np.array([[pm.time_to_tick(s), pm.time_to_tick(e)] for s, e in notes[:, :2]], dtype=np.float64)
    quarters = ticks / pm.resolution
    # the metre in force at the first note (MIDI's default 4/4 without a time signature event)
    signatures = [ts for ts in pm.time_signature_changes if ts.time <= notes[0, 0] + 1e-6]
    meter, downbeat = "4/4", 0.0
    if signatures:
        meter = f"{signatures[-1].numerator}/{signatures[-1].denominator}"
        downbeat = pm.time_to_tick(signatures[-1].time) / pm.resolution
    key_signatures = [ks.key_number for ks in pm.key_signature_changes if ks.time <= notes[0, 0] + 1e-6]
    keys = signature_keys(key_signatures[-1] % 12 + 3 * (key_signatures[-1] >= 12)) if key_signatures else ()
    return Melody(notes[:, 2].astype(np.int64), quarters[:, 0], quarters[:, 1], notes[:, 0], notes[:, 1], meter, downbeat,
                  keys)


def melody_from_quarters(pitch, start_q, end_q, qpm: float = 120.0, meter: str = "4/4", downbeat_q: float = 0.0,
                         keys: tuple[int, ...] = ()) -> Melody:
    """A Melody from note lists in quarter notes at a constant tempo ``qpm``; made monophonic.
    ``meter`` and ``downbeat_q`` (a bar line, in quarters) place the bar lines; ``keys`` are those
    the source's key signature allows (:func:`signature_keys`)."""
    sec = 60.0 / qpm
    notes = np.stack([np.asarray(start_q, float), np.asarray(end_q, float), np.asarray(pitch, float)], axis=1)
    notes = skyline(notes.reshape(-1, 3))
    return Melody(notes[:, 2].astype(np.int64), notes[:, 0], notes[:, 1], notes[:, 0] * sec, notes[:, 1] * sec,
                  meter, downbeat_q, tuple(keys))
