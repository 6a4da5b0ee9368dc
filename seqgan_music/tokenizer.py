"""Quantization and the token encodings of a :class:`~seqgan_music.melody.Melody` (one voice with
onsets and ends in quarter notes and in seconds, its metre and a downbeat). Three encodings:

``melody`` (default)
    A beat grid of ``steps_per_quarter`` steps per quarter note (tempo-aware: positions come from
    MIDI ticks, not seconds). Token 0 = REST, 1 = HOLD (the sounding note continues), 2 + k =
    NOTE_ON(pitch_low + k). Every sequence decodes to a valid melody: a HOLD with no sounding note
    is a rest. Pitches outside the range move by octaves into it.
``bars``
    The melody grid with bar lines: before each bar's first step a BAR token naming the tune's
    meter (BAR_4/4, BAR_6/8, ...). Step 0 is the downbeat at or before the first note (an
    anacrusis is preceded by rests), so the model sees where every bar starts and what metre it has;
    BAR tokens take no time. With ``tune_end`` an END token follows the tune's last bar (it takes
    no time either; a decoder stops there), so a model can learn where tunes end.
``paper``
    The SeqGAN paper's Nottingham representation: the sounding pitch sampled every
    ``sample_seconds`` (0.4 s), token 0 = silence, 1..88 = piano keys A0..C8 (MIDI 21..108).

Token 0 is also the generator's start token in every encoding.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pretty_midi

from seqgan_music.config import TokenizerConfig, from_dict, to_dict
from seqgan_music.errors import UserError
from seqgan_music.melody import Melody, SkipPiece
from seqgan_music.metrics import estimate_key

REST = 0
HOLD = 1
PIANO_LOW, PIANO_HIGH = 21, 108


# the metres a BAR token can name; a tune in another metre is skipped by the bars encoding
METERS = ("4/4", "3/4", "2/4", "6/8", "2/2", "3/8", "9/8", "12/8", "6/4", "3/2", "5/4", "7/8", "5/8")


def meter_steps(meter: str, steps_per_quarter: int) -> tuple[int, int]:
    """Grid steps of one bar and of one beat of ``meter`` ("6/8": a dotted-quarter beat), or
    SkipPiece when the bar is not a whole number of steps."""
    num, den = (int(x) for x in meter.split("/"))
    bar, beat = num * 4 * steps_per_quarter / den, 4 * steps_per_quarter / den
    if den == 8 and num % 3 == 0 and num > 3:
        beat *= 3
    if bar != int(bar) or beat != int(beat):
        raise SkipPiece(f"a bar of {meter} is not a whole number of grid steps")
    return int(bar), int(beat)


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

    def steps_for(self, bars: int, qpm: float, meter: str = "4/4") -> int:
        return bars * meter_steps(meter, self.cfg.steps_per_quarter)[0]

    def window_starts(self, tokens: np.ndarray, seq_len: int, hop: int) -> np.ndarray:
        return np.arange(0, len(tokens) - seq_len + 1, hop)

    def step_seconds(self, qpm: float) -> float:
        return 60.0 / qpm / self.cfg.steps_per_quarter

    def meter_of(self, tokens: np.ndarray) -> str:
        return "4/4"

    def is_step(self, tokens: np.ndarray) -> np.ndarray:
        return np.ones(np.shape(tokens), dtype=bool)

    def encode(self, melody: Melody) -> np.ndarray:
        on, off = grid_steps(melody, self.cfg.steps_per_quarter, float(melody.start_q.min()))
        return fill_grid(on, off, fold_pitch(melody.pitch, self.low, self.high) - self.low + 2)


def grid_steps(melody: Melody, steps_per_quarter: int, origin_q: float) -> tuple[np.ndarray, np.ndarray]:
    """Onset and end steps (n,) of the notes on a grid whose step 0 is at ``origin_q`` quarters."""
    on = np.round((melody.start_q - origin_q) * steps_per_quarter).astype(np.int64)
    off = np.maximum(np.round((melody.end_q - origin_q) * steps_per_quarter).astype(np.int64), on + 1)
    return on, off


def fill_grid(on: np.ndarray, off: np.ndarray, note_tokens: np.ndarray) -> np.ndarray:
    """(last end,) grid tokens: NOTE_ON ``note_tokens[i]`` at ``on[i]``, HOLD until the note ends
    or the next onset, REST elsewhere. Two onsets on one step: the later one wins."""
    tokens = np.full(int(off.max()), REST, dtype=np.int64)
    for i in range(len(on)):
        if i + 1 < len(on) and on[i + 1] == on[i]:
            continue
        end = off[i] if i + 1 == len(on) else min(off[i], on[i + 1])
        tokens[on[i]] = note_tokens[i]
        tokens[on[i] + 1 : end] = HOLD
    return tokens


class BarGrid(MelodyGrid):
    """The melody grid with a BAR token (one per metre of :data:`METERS`) before each bar; step 0
    of the grid is a downbeat. BAR tokens take no time and do not end a sounding note. With
    ``repeat_marks`` each metre also has a BAR token per distance k that says "this bar's steps are
    those of the bar k back" (:meth:`mark_repeats`): the form of a tune, one decision per bar."""

    def __init__(self, cfg: TokenizerConfig):
        super().__init__(cfg)
        self.first_bar = 2 + self.high - self.low + 1  # token id of BAR_<METERS[0]>
        self.marks = [0, *cfg.repeat_marks]  # the distance each block of BAR tokens names (0: a new bar)
        self.bar_tokens = list(range(self.first_bar, self.first_bar + len(METERS) * len(self.marks)))
        self.end_token = self.bar_tokens[-1] + 1 if cfg.tune_end else None

    def token_names(self) -> list[str]:
        bars = [f"BAR_{m}" + (f"_REPEAT_{k}" if k else "") for k in self.marks for m in METERS]
        return super().token_names() + bars + (["END"] if self.cfg.tune_end else [])

    def bar_token(self, meter: str | int, repeat: int = 0) -> int:
        """The BAR token of ``meter`` (or its index in :data:`METERS`) that repeats the bar
        ``repeat`` back (0: a new bar)."""
        index = METERS.index(meter) if isinstance(meter, str) else meter
        return self.first_bar + self.marks.index(repeat) * len(METERS) + index

    def is_bar(self, tokens: np.ndarray) -> np.ndarray:
        return (tokens >= self.first_bar) & (tokens <= self.bar_tokens[-1])

    def mark_repeats(self, tokens: np.ndarray) -> np.ndarray:
        """(L,) tokens with each bar line's repeat mark set from the steps that follow it: the
        longest distance k of ``repeat_marks`` whose bar k back (within ``tokens``) has the same
        steps (a bar cut short by the end of ``tokens``: the same first steps), else none. Marks
        already there are replaced, so a window cut from a tune is marked from its own bars."""
        tokens = np.array(tokens)
        lines = np.flatnonzero(self.is_bar(tokens))
        if len(self.marks) == 1 or not len(lines):
            return tokens
        ends = np.append(lines[1:], len(tokens))
        if self.end_token is not None:
            ends = np.minimum(ends, np.append(np.flatnonzero(tokens == self.end_token), len(tokens))[0])
        steps = [tokens[a + 1 : b] for a, b in zip(lines, ends)]
        meter = (tokens[lines] - self.first_bar) % len(METERS)
        for i, line in enumerate(lines):
            same = [k for k in self.marks[1:] if k <= i and meter[i - k] == meter[i] and len(steps[i])
                    and len(steps[i - k]) >= len(steps[i]) and np.array_equal(steps[i - k][: len(steps[i])], steps[i])]
            tokens[line] = self.bar_token(int(meter[i]), max(same, default=0))
        return tokens

    def token_pitch(self, tokens: np.ndarray) -> np.ndarray:
        return np.where((tokens >= 2) & (tokens < self.first_bar), tokens - 2 + self.low, -1)

    def sounding_pitch(self, tokens: np.ndarray, pitch: np.ndarray) -> np.ndarray:
        out = pitch.copy()
        for t in range(1, tokens.shape[-1]):
            carry = (tokens[..., t] == HOLD) | (tokens[..., t] >= self.first_bar)
            out[..., t] = np.where(carry, out[..., t - 1], out[..., t])
        return out

    def meter_of(self, tokens: np.ndarray) -> str:
        bars = np.asarray(tokens)[self.is_bar(np.asarray(tokens))]
        return METERS[(int(bars[0]) - self.first_bar) % len(METERS)] if len(bars) else METERS[0]

    def is_step(self, tokens: np.ndarray) -> np.ndarray:
        return np.asarray(tokens) < self.first_bar

    def steps_for(self, bars: int, qpm: float, meter: str = METERS[0]) -> int:
        return bars * (meter_steps(meter, self.cfg.steps_per_quarter)[0] + 1)

    def encode(self, melody: Melody) -> np.ndarray:
        if melody.meter not in METERS:
            raise SkipPiece(f"metre {melody.meter} is not one of {', '.join(METERS)}")
        bar_steps, _ = meter_steps(melody.meter, self.cfg.steps_per_quarter)
        bar_q = bar_steps / self.cfg.steps_per_quarter
        first = float(melody.start_q.min())
        origin = melody.downbeat_q - np.ceil((melody.downbeat_q - first) / bar_q - 1e-6) * bar_q
        on, off = grid_steps(melody, self.cfg.steps_per_quarter, origin)
        grid = fill_grid(on, off, fold_pitch(melody.pitch, self.low, self.high) - self.low + 2)
        bars = -(-len(grid) // bar_steps)
        grid = np.concatenate([grid, np.full(bars * bar_steps - len(grid), REST)]).reshape(bars, bar_steps)
        tokens = np.concatenate([np.full((bars, 1), self.bar_token(melody.meter)), grid], axis=1).reshape(-1)
        return self.mark_repeats(tokens if self.end_token is None else np.append(tokens, self.end_token))

    def window_starts(self, tokens: np.ndarray, seq_len: int, hop: int) -> np.ndarray:
        """Windows start at bar lines, about ``hop`` tokens apart (at least one bar). With an END
        token, one more window reaches the tune's end when the others do not (padded with END by
        :func:`dataset.windows_of`): the first bar line from which a window holds the END."""
        lines = np.flatnonzero(self.is_bar(tokens))
        bars = lines[lines <= len(tokens) - seq_len]
        if len(bars) >= 2:
            bars = bars[:: max(1, round(hop / (bars[1] - bars[0])))]
        if self.end_token is not None and (not len(bars) or bars[-1] + seq_len < len(tokens)):
            bars = np.append(bars, lines[lines + seq_len >= len(tokens)][:1]).astype(np.int64)
        return bars


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

    def steps_for(self, bars: int, qpm: float, meter: str = "4/4") -> int:
        num, den = (int(x) for x in meter.split("/"))
        return max(1, round(bars * num * 4 / den * 60.0 / qpm / self.cfg.sample_seconds))

    def window_starts(self, tokens: np.ndarray, seq_len: int, hop: int) -> np.ndarray:
        return np.arange(0, len(tokens) - seq_len + 1, hop)

    def meter_of(self, tokens: np.ndarray) -> None:
        return None

    def is_step(self, tokens: np.ndarray) -> np.ndarray:
        return np.ones(np.shape(tokens), dtype=bool)

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


ENCODINGS = {"melody": MelodyGrid, "bars": BarGrid, "paper": PaperSamples}


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

    @property
    def bar_tokens(self) -> list[int]:
        """Token ids of the bar lines, one per metre of :data:`METERS` and repeat mark (the new
        bars' first); empty without bar lines."""
        return list(getattr(self.encoding, "bar_tokens", []))

    def bar_line_choices(self, meter: str) -> list[tuple[int, int]]:
        """(token, k) of each BAR token of ``meter``: the new bar (k 0) and one per repeat mark,
        which repeats the bar k back."""
        return [(self.encoding.bar_token(meter, k), k) for k in self.encoding.marks]

    def mark_repeats(self, tokens) -> np.ndarray:
        """(L,) tokens with the repeat marks their bars call for (:meth:`BarGrid.mark_repeats`);
        unchanged without repeat marks."""
        tokens = np.asarray(tokens)
        return self.encoding.mark_repeats(tokens) if self.config.repeat_marks else tokens

    @property
    def end_token(self) -> int | None:
        """Token id of END (the tune is over), or None when the encoding has none."""
        return getattr(self.encoding, "end_token", None)

    def tune_part(self, tokens) -> np.ndarray:
        """(L,) tokens up to their first END (all of them without one)."""
        tokens = np.asarray(tokens).reshape(-1)
        ends = np.flatnonzero(tokens == self.end_token) if self.end_token is not None else []
        return tokens[: ends[0]] if len(ends) else tokens

    def bars_in(self, tokens) -> int:
        """How many bar lines the tune part of (L,) ``tokens`` has (0 without bar lines)."""
        return int(np.isin(self.tune_part(tokens), self.bar_tokens).sum())

    def steps_for(self, bars: int, qpm: float = 120.0, meter: str = "4/4") -> int:
        """Tokens that last ``bars`` bars of ``meter`` at ``qpm`` quarter notes per minute (>= 1),
        BAR tokens included."""
        return self.encoding.steps_for(bars, qpm, meter)

    def meter_of(self, tokens) -> str | None:
        """The metre a token sequence is written in (its first BAR token; 4/4 for the melody
        encoding, which has no bar lines); None for the paper encoding."""
        return self.encoding.meter_of(np.asarray(tokens))

    def bar_and_beat_steps(self, tokens) -> tuple[int, int] | None:
        """Grid steps of a bar and of a beat in the metre of ``tokens``; None without a beat grid."""
        meter = self.meter_of(tokens)
        return None if meter is None else meter_steps(meter, self.config.steps_per_quarter)

    def is_step(self, tokens) -> np.ndarray:
        """(L,) bool: which tokens are grid steps (time); BAR tokens are not."""
        return self.encoding.is_step(np.asarray(tokens))

    def time_steps(self, tokens) -> int:
        """How many grid steps (time) ``tokens`` last up to their END: BAR tokens take none."""
        return int(self.is_step(self.tune_part(tokens)).sum())

    def window_starts(self, tokens: np.ndarray, seq_len: int, hop: int) -> np.ndarray:
        """Start indices of the training windows of one piece (bar lines for the bars encoding)."""
        return self.encoding.window_starts(tokens, seq_len, hop)

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

    def transpose(self, tokens: np.ndarray, semitones: int, fold: bool = False) -> np.ndarray | None:
        """Tokens shifted by ``semitones``; where a note would leave the range, None, or with
        ``fold`` that note moved by octaves into it."""
        pitch = self.token_pitch(tokens)
        is_note = pitch >= 0
        moved = pitch + semitones
        if np.any(is_note & ((moved < self.encoding.low) | (moved > self.encoding.high))):
            if not fold:
                return None
            moved = fold_pitch(moved, self.encoding.low, self.encoding.high)
        return np.where(is_note, tokens + (moved - pitch), tokens)

    def estimated_key(self, tokens) -> tuple[int, bool]:
        """(tonic pitch class, major?) of the notes of ``tokens`` (:func:`metrics.estimate_key`)."""
        return estimate_key(self.decode_notes(tokens))

    def shift_to_tonic(self, tokens: np.ndarray, tonic: int, from_tonic: int | None = None) -> int | None:
        """Semitones that move the key of ``tokens`` (tonic pitch class ``from_tonic``, else the
        estimated one, :func:`metrics.estimate_key`) to ``tonic``: the shorter way round the
        octave, else the other, whichever first keeps every note in range; None when neither does."""
        if from_tonic is None:
            from_tonic = self.estimated_key(tokens)[0]
        up = (tonic - from_tonic) % 12
        return next((s for s in sorted((up, up - 12), key=abs) if self.transpose(tokens, s) is not None), None)

    # decode ------------------------------------------------------------
    def decode_all(self, windows: np.ndarray) -> list[list[tuple[int, int, int]]]:
        """(N, L) token ids -> the notes of each row (:meth:`decode_notes`)."""
        return [self.decode_notes(w) for w in windows]

    def decode_notes(self, tokens) -> list[tuple[int, int, int]]:
        """Token ids -> notes (pitch, onset step, end step) in grid steps (BAR tokens take no time;
        an END token ends the tune); every id sequence is valid."""
        tokens = np.asarray(tokens, dtype=np.int64).reshape(-1)
        bad = tokens[(tokens < 0) | (tokens >= self.vocab_size)]
        if len(bad):
            raise UserError(f"token {bad[0]} is outside the vocabulary of {self.vocab_size}")
        tokens = self.tune_part(tokens)
        notes: list[list[int]] = []
        current = None
        is_step = self.encoding.is_step(tokens)
        steps = np.cumsum(is_step) - 1  # grid step of each token (a BAR token: the step before it)
        for tok, pitch, step, timed in zip(tokens.tolist(), self.token_pitch(tokens).tolist(), steps.tolist(), is_step):
            if not timed:
                continue
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
        """Token ids -> a one-track PrettyMIDI at tempo ``qpm`` with GM ``program`` (0-127), the
        tokens' time signature and (on the beat grid) the key their notes are estimated in
        (:func:`metrics.estimate_key`, as the scores have it)."""
        if not 20 <= qpm <= 400:
            raise UserError(f"tempo {qpm} qpm is outside 20..400")
        if not 0 <= program <= 127:
            raise UserError(f"instrument program {program} is outside 0..127")
        pm = pretty_midi.PrettyMIDI(initial_tempo=qpm)
        meter = self.meter_of(tokens)
        if meter is not None:
            pm.time_signature_changes.append(pretty_midi.TimeSignature(*(int(x) for x in meter.split("/")), 0.0))
        notes = self.decode_notes(tokens)
        if meter is not None and notes:
            tonic, major = estimate_key(notes)
            pm.key_signature_changes.append(pretty_midi.KeySignature(tonic + (0 if major else 12), 0.0))
        inst = pretty_midi.Instrument(program=program, name="melody")
        step = self.step_seconds(qpm)
        for pitch, on, off in notes:
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


def window_config(encoding: str = "bars", bars: int = 4, steps_per_quarter: int = 4, transpose: int = 0) -> TokenizerConfig:
    """A tokenizer config whose windows hold ``bars`` bars of 4/4 (bar lines included), cut every
    half window: the app's way of choosing T. The bars encoding marks where tunes end and moves
    every tune to tonic C."""
    grid = TokenizerConfig(encoding=encoding, steps_per_quarter=steps_per_quarter, tune_end=encoding == "bars",
                           key_to_c=encoding == "bars")
    seq_len = Tokenizer(grid).steps_for(bars)
    return replace(grid, seq_len=seq_len, hop=max(1, seq_len // 2), transpose=transpose)
