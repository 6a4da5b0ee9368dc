"""Melody extraction, quantization, and the two token encodings.

A :class:`Melody` is one voice: note arrays with onsets and ends in quarter notes (beats) and in
seconds. Two encodings turn it into token ids:

``melody`` (default)
    A beat grid of ``steps_per_quarter`` steps per quarter note (tempo-aware: positions come from
    MIDI ticks, not seconds). Token 0 = REST, 1 = HOLD (the sounding note continues), 2 + k =
    NOTE_ON(pitch_low + k). Every sequence decodes to a valid melody: a HOLD with no sounding note
    is a rest. Pitches outside the range move by octaves into it.
``paper``
    The SeqGAN paper's Nottingham representation: the sounding pitch sampled every
    ``sample_seconds`` (0.4 s), token 0 = silence, 1..88 = piano keys A0..C8 (MIDI 21..108).

Token 0 is also the generator's start token in both encodings.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pretty_midi

from seqgan_music.config import TokenizerConfig, from_dict, to_dict
from seqgan_music.errors import UserError

REST = 0
HOLD = 1
PIANO_LOW, PIANO_HIGH = 21, 108


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

    def __len__(self) -> int:
        return len(self.pitch)


class SkipPiece(Exception):
    """A piece that yields no melody; ``str(exc)`` is the reason shown in reports."""


# ---------------------------------------------------------------- melody extraction


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
    return Melody(notes[:, 2].astype(np.int64), quarters[:, 0], quarters[:, 1], notes[:, 0], notes[:, 1])


def melody_from_quarters(pitch, start_q, end_q, qpm: float = 120.0) -> Melody:
    """A Melody from note lists in quarter notes at a constant tempo ``qpm``; made monophonic."""
    sec = 60.0 / qpm
    notes = np.stack([np.asarray(start_q, float), np.asarray(end_q, float), np.asarray(pitch, float)], axis=1)
    notes = skyline(notes.reshape(-1, 3))
    return Melody(notes[:, 2].astype(np.int64), notes[:, 0], notes[:, 1], notes[:, 0] * sec, notes[:, 1] * sec)


def fold_pitch(pitch: np.ndarray, low: int, high: int) -> np.ndarray:
    """Move pitches by whole octaves into [low, high] (the range spans at least an octave)."""
    pitch = np.asarray(pitch, dtype=np.int64).copy()
    below = pitch < low
    pitch[below] += 12 * np.ceil((low - pitch[below]) / 12).astype(np.int64)
    above = pitch > high
    pitch[above] -= 12 * np.ceil((pitch[above] - high) / 12).astype(np.int64)
    return pitch


# ---------------------------------------------------------------- the tokenizer


class MelodyGrid:
    """The melody encoding: one token per grid step (``steps_per_quarter`` per quarter note); REST,
    HOLD (the sounding note goes on), NOTE_ON per pitch in ``pitch_low..pitch_high``."""

    def __init__(self, cfg: TokenizerConfig):
        self.cfg = cfg
        self.low, self.high = cfg.pitch_low, cfg.pitch_high  # the pitch range a token can hold
        self.steps_per_bar: int | None = 4 * cfg.steps_per_quarter  # a bar of 4/4
        self.grid = cfg.steps_per_quarter  # what the time axis is measured in (see Tokenizer.meaning)

    def token_names(self) -> list[str]:
        return ["REST", "HOLD"] + [f"NOTE_ON_{p}" for p in range(self.low, self.high + 1)]

    def token_pitch(self, tokens: np.ndarray) -> np.ndarray:
        return np.where(tokens >= 2, tokens - 2 + self.low, -1)

    def sounding_pitch(self, tokens: np.ndarray, pitch: np.ndarray) -> np.ndarray:
        out = pitch.copy()
        for t in range(1, tokens.shape[-1]):
            out[..., t] = np.where(tokens[..., t] == HOLD, out[..., t - 1], out[..., t])
        return out

    def continues(self, token: int, pitch: int, current: list[int] | None) -> bool:
        """Whether the token at this step extends the current note."""
        return token == HOLD

    def steps_for(self, bars: int, qpm: float) -> int:
        return bars * self.steps_per_bar

    def step_seconds(self, qpm: float) -> float:
        return 60.0 / qpm / self.cfg.steps_per_quarter

    def encode(self, melody: Melody) -> np.ndarray:
        spq = self.cfg.steps_per_quarter
        on = np.round(melody.start_q * spq).astype(np.int64)
        off = np.maximum(np.round(melody.end_q * spq).astype(np.int64), on + 1)
        pitch = fold_pitch(melody.pitch, self.low, self.high)
        on, off = on - on.min(), off - on.min()
        tokens = np.full(int(off.max()), REST, dtype=np.int64)
        for i in range(len(on)):
            if i + 1 < len(on) and on[i + 1] == on[i]:
                continue  # two onsets quantized to one step: the later onset wins
            end = off[i] if i + 1 == len(on) else min(off[i], on[i + 1])
            tokens[on[i]] = 2 + pitch[i] - self.low
            tokens[on[i] + 1 : end] = HOLD
        return tokens


class PaperSamples:
    """The SeqGAN paper's encoding: the sounding pitch every ``sample_seconds``; token 0 = silence,
    1..88 = piano keys. No beat grid, so no bars."""

    def __init__(self, cfg: TokenizerConfig):
        self.cfg = cfg
        self.low, self.high = PIANO_LOW, PIANO_HIGH
        self.steps_per_bar: int | None = None
        self.grid = cfg.sample_seconds

    def token_names(self) -> list[str]:
        return ["SILENCE"] + [f"PITCH_{p}" for p in range(self.low, self.high + 1)]

    def token_pitch(self, tokens: np.ndarray) -> np.ndarray:
        return np.where(tokens > 0, tokens - 1 + self.low, -1)

    def sounding_pitch(self, tokens: np.ndarray, pitch: np.ndarray) -> np.ndarray:
        return pitch

    def continues(self, token: int, pitch: int, current: list[int] | None) -> bool:
        return current is not None and pitch == current[0]

    def steps_for(self, bars: int, qpm: float) -> int:
        return max(1, round(bars * 4 * 60.0 / qpm / self.cfg.sample_seconds))

    def step_seconds(self, qpm: float) -> float:
        return self.cfg.sample_seconds

    def encode(self, melody: Melody) -> np.ndarray:
        period = self.cfg.sample_seconds
        t0 = melody.start_s.min()
        times = t0 + period * np.arange(int(np.ceil((melody.end_s.max() - t0) / period - 1e-6)))
        idx = np.searchsorted(melody.start_s, times + 1e-9, side="right") - 1
        sounding = (idx >= 0) & (times < melody.end_s[np.clip(idx, 0, None)] - 1e-9)
        pitch = fold_pitch(melody.pitch, self.low, self.high)[np.clip(idx, 0, None)]
        return np.where(sounding, pitch - self.low + 1, 0).astype(np.int64)


ENCODINGS = {"melody": MelodyGrid, "paper": PaperSamples}


class Tokenizer:
    """Encode melodies to token ids and decode ids to MIDI, per a :class:`TokenizerConfig`; what the
    ids mean is the business of its encoding (:class:`MelodyGrid` or :class:`PaperSamples`)."""

    def __init__(self, config: TokenizerConfig | None = None):
        self.config = config or TokenizerConfig()
        self.config.validate()
        self.encoding = ENCODINGS[self.config.encoding](self.config)

    # vocabulary -------------------------------------------------------
    @property
    def vocab_size(self) -> int:
        return len(self.token_names())

    @property
    def start_token(self) -> int:
        return REST

    @property
    def steps_per_bar(self) -> int | None:
        """Grid steps in a bar of 4/4; None for the paper encoding, which has no beat grid."""
        return self.encoding.steps_per_bar

    def steps_for(self, bars: int, qpm: float = 120.0) -> int:
        """Tokens that last ``bars`` bars of 4/4 at ``qpm`` quarter notes per minute (>= 1)."""
        return self.encoding.steps_for(bars, qpm)

    def token_names(self) -> list[str]:
        return self.encoding.token_names()

    def token_pitch(self, tokens: np.ndarray) -> np.ndarray:
        """MIDI pitch of each token, -1 for REST/HOLD/SILENCE. Same shape as ``tokens``."""
        return self.encoding.token_pitch(np.asarray(tokens))

    def sounding_pitch(self, tokens: np.ndarray) -> np.ndarray:
        """Pitch sounding at each step (HOLD carries the previous note), -1 for silence. (..., L)."""
        tokens = np.asarray(tokens)
        return self.encoding.sounding_pitch(tokens, self.token_pitch(tokens))

    # encode ------------------------------------------------------------
    def encode(self, melody: Melody) -> np.ndarray:
        """Melody -> (L,) int64 token ids, starting at the first note's onset."""
        if len(melody) == 0:
            raise SkipPiece("no notes")
        return self.encoding.encode(melody)

    def transpose(self, tokens: np.ndarray, semitones: int) -> np.ndarray | None:
        """Tokens shifted by ``semitones``; None when a note would leave the range."""
        pitch = self.token_pitch(tokens)
        moved = np.where(pitch >= 0, pitch + semitones, -1)
        if np.any((pitch >= 0) & ((moved < self.encoding.low) | (moved > self.encoding.high))):
            return None
        return np.where(pitch >= 0, tokens + semitones, tokens)

    # decode ------------------------------------------------------------
    def decode_notes(self, tokens) -> list[tuple[int, int, int]]:
        """Token ids -> notes (pitch, onset step, end step); every id sequence is valid."""
        tokens = np.asarray(tokens, dtype=np.int64).reshape(-1)
        bad = tokens[(tokens < 0) | (tokens >= self.vocab_size)]
        if len(bad):
            raise UserError(f"token {bad[0]} is outside the vocabulary of {self.vocab_size}")
        notes: list[list[int]] = []
        current = None
        for step, (tok, pitch) in enumerate(zip(tokens.tolist(), self.token_pitch(tokens).tolist())):
            if self.encoding.continues(tok, pitch, current) and current is not None:
                current[2] = step + 1
                continue
            current = None
            if pitch >= 0:
                current = [pitch, step, step + 1]
                notes.append(current)
        return [tuple(n) for n in notes]

    def step_seconds(self, qpm: float) -> float:
        """Duration of one token in seconds (``qpm`` matters only for the melody grid)."""
        return self.encoding.step_seconds(qpm)

    def decode(self, tokens, qpm: float = 120.0, program: int = 0, velocity: int = 90) -> pretty_midi.PrettyMIDI:
        """Token ids -> a one-track PrettyMIDI at tempo ``qpm`` with GM ``program`` (0-127)."""
        if not 20 <= qpm <= 400:
            raise UserError(f"tempo {qpm} qpm is outside 20..400")
        if not 0 <= program <= 127:
            raise UserError(f"instrument program {program} is outside 0..127")
        pm = pretty_midi.PrettyMIDI(initial_tempo=qpm)
        inst = pretty_midi.Instrument(program=program, name="melody")
        step = self.step_seconds(qpm)
        for pitch, on, off in self.decode_notes(tokens):
            inst.notes.append(pretty_midi.Note(velocity=velocity, pitch=pitch, start=on * step, end=off * step))
        pm.instruments.append(inst)
        return pm

    # persistence -------------------------------------------------------
    def meaning(self) -> dict:
        """What a token id stands for (encoding, grid, window length, vocabulary); datasets that agree
        on it can train the same model, whatever their windows' hop or augmentation."""
        return {"encoding": self.config.encoding, "grid": self.encoding.grid, "seq_len": self.config.seq_len,
                "vocab": self.token_names()}

    def to_dict(self) -> dict:
        return {"config": to_dict(self.config), "vocab": self.token_names()}

    @classmethod
    def from_dict(cls, data: dict, where: str = "tokenizer") -> Tokenizer:
        if not isinstance(data, dict) or "config" not in data:
            raise UserError(f"{where}: not a tokenizer description")
        tok = cls(from_dict(TokenizerConfig, data["config"], where))
        if "vocab" in data and data["vocab"] != tok.token_names():
            raise UserError(f"{where}: vocabulary does not match its config")
        return tok

    def save(self, path: str) -> None:
        from seqgan_music.fileio import atomic_write_text

        atomic_write_text(path, json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load(cls, path: str) -> Tokenizer:
        try:
            with open(path, encoding="utf-8") as fh:
                data = json.load(fh)
        except (OSError, json.JSONDecodeError) as exc:
            raise UserError(f"{path}: cannot read tokenizer: {exc}") from None
        return cls.from_dict(data, path)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Tokenizer) and self.to_dict() == other.to_dict()
