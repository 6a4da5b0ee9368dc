"""The listening test: melodies as a user gets them, judged against the collection's held-out tunes.

What is judged is what a user downloads: each melody is written as a MIDI file and read back, so
the judgement knows nothing of the model's tokens. Real tunes go the same way (their tokens
decoded to MIDI and read back), and both sides are cut alike:

- each melody is moved to tonic C by its estimated key (a melody's key is not what is judged;
  its mode, register and intervals are);
- its first ``OPENING_BARS`` bars are laid on a grid of ``GRID`` steps per quarter note, each step
  one symbol: a note onset of a pitch, a held note or a rest, marked when it starts a bar of the
  file's time signature;
- windows of ``WINDOW_STEPS`` steps start every ``WINDOW_BARS`` bars.

The fresh critic (:func:`seqgan_music.critic.two_sample_accuracy`, split by melody on both sides)
then tells the windows of a set of melodies from those of the held-out tunes: 0.5 means it cannot
tell them apart. The floor is the training tunes' openings against the held-out ones. Calibration
(``evaluate --calibrate`` and tests/test_listening_test.py): the floor reads about 0.5,
and known damage (bars shuffled within a tune, every second bar a copy of the first, sampling at
temperature 1.4) reads clearly higher.
"""

from __future__ import annotations

import io
from collections import Counter

import numpy as np

from seqgan_music.critic import two_sample_accuracy
from seqgan_music.melody import SkipPiece
from seqgan_music.metrics import TONIC_NAMES, estimate_key, phrase_repetition
from seqgan_music.sources import Limits, read_midi
from seqgan_music.tokenizer import fold_pitch

GRID = 4  # grid steps per quarter note
OPENING_BARS = 8  # bars of each melody that are judged (what `generate --bars 8` writes)
WINDOW_BARS = 2  # a window starts every this many bars ...
WINDOW_STEPS = 16 * GRID  # ... and lasts this many steps (four bars of 4/4)
LOW, HIGH = 48, 84  # pitches (after the move to tonic C) are folded into C3..C6 by octaves
HOLD, REST = HIGH - LOW + 1, HIGH - LOW + 2
SYMBOLS = HIGH - LOW + 3  # onsets, hold, rest
VOCAB = 3 * SYMBOLS  # each symbol, plain, on a bar's first step, or on the tune's first step
CRITIC_EPOCHS = 8
CRITIC_FOLDS = 4  # each critic run: 4-fold cross-validation by melody (a critic trained on 3/4 of the tunes)


class Opening:
    """One melody's judged opening: (S,) grid symbols, its notes (pitch, onset step, end step) on
    the grid in tonic C, and the grid steps of one of its bars."""

    def __init__(self, symbols: np.ndarray, notes: list[tuple[int, int, int]], bar_steps: int):
        self.symbols, self.notes, self.bar_steps = symbols, notes, bar_steps

    def windows(self) -> np.ndarray:
        """(W, WINDOW_STEPS) windows starting every WINDOW_BARS bars that fit in the opening."""
        hop = WINDOW_BARS * self.bar_steps
        starts = range(0, len(self.symbols) - WINDOW_STEPS + 1, hop)
        return np.stack([self.symbols[s : s + WINDOW_STEPS] for s in starts]) if len(starts) \
            else np.zeros((0, WINDOW_STEPS), np.int64)


def midi_notes(data: bytes) -> tuple[list[tuple[float, float, int]], float]:
    """A MIDI file's bytes -> its notes (onset and end in quarter notes, pitch), one voice (the
    first instrument's), and the length of a bar in quarter notes (its first time signature;
    4/4 without one)."""
    pm = read_midi(data, Limits())
    ts = pm.time_signature_changes[0] if pm.time_signature_changes else None
    bar_q = 4.0 if ts is None else ts.numerator * 4.0 / ts.denominator
    if not pm.instruments:
        return [], bar_q
    quarters = [(pm.time_to_tick(n.start) / pm.resolution, pm.time_to_tick(n.end) / pm.resolution, n.pitch)
                for n in pm.instruments[0].notes]
    return sorted(quarters), bar_q


def opening_of(data: bytes, bars: int = OPENING_BARS) -> Opening:
    """A MIDI file's bytes -> its first ``bars`` bars as an :class:`Opening` (moved to tonic C)."""
    notes, bar_q = midi_notes(data)
    bar_steps = max(1, round(bar_q * GRID))
    length = bars * bar_steps
    grid = [(int(round(on * GRID)), max(int(round(off * GRID)), int(round(on * GRID)) + 1), p) for on, off, p in notes]
    grid = [(p, on, min(off, length)) for on, off, p in grid if on < length]
    tonic = estimate_key(grid)[0] if grid else 0
    shift = -tonic if tonic <= 6 else 12 - tonic  # the nearer way to C
    symbols = np.full(length, REST, np.int64)
    moved = []
    for pitch, on, off in grid:
        p = int(fold_pitch(np.array([pitch + shift]), LOW, HIGH)[0])
        symbols[on:off] = HOLD
        symbols[on] = p - LOW
        moved.append((p, on, off))
    symbols[::bar_steps] += SYMBOLS  # a bar's first step ...
    symbols[0] += SYMBOLS  # ... and the tune's
    return Opening(symbols, moved, bar_steps)


def midi_bytes(tokenizer, tokens) -> bytes:
    """(L,) token ids -> the bytes of the MIDI file ``generate`` writes for them."""
    buf = io.BytesIO()
    tokenizer.decode(tokens).write(buf)
    return buf.getvalue()


def openings_of(tokenizer, rows) -> list[Opening]:
    """Token sequences -> their openings through MIDI and back (sequences MIDI cannot hold, or
    without a note, are left out)."""
    out = []
    for row in rows:
        try:
            opening = opening_of(midi_bytes(tokenizer, np.asarray(row)))
        except SkipPiece:
            continue
        if opening.notes:
            out.append(opening)
    return out


def shuffled_bars(opening: Opening, rng: np.random.Generator) -> Opening:
    """Damage for calibration: the opening's bars in a random order."""
    bars = opening.symbols.reshape(-1, opening.bar_steps) % SYMBOLS
    return _from_symbols(bars[rng.permutation(len(bars))].reshape(-1), opening.bar_steps)


def copied_bars(opening: Opening) -> Opening:
    """Damage for calibration: every second bar a copy of the first."""
    bars = opening.symbols.reshape(-1, opening.bar_steps) % SYMBOLS
    bars[1::2] = bars[0]
    return _from_symbols(bars.reshape(-1), opening.bar_steps)


def _from_symbols(plain: np.ndarray, bar_steps: int) -> Opening:
    """An :class:`Opening` of plain grid symbols (its notes read off them, its bar and tune starts marked)."""
    notes: list[list[int]] = []
    symbols = plain.copy()
    symbols[::bar_steps] += SYMBOLS
    symbols[0] += SYMBOLS
    for step, s in enumerate(plain.tolist()):
        if s < HOLD:
            notes.append([s + LOW, step, step + 1])
        elif s == HOLD and notes and notes[-1][2] == step:
            notes[-1][2] = step + 1
    return Opening(symbols, [tuple(n) for n in notes], bar_steps)


def stacked_windows(openings: list[Opening]) -> tuple[np.ndarray, np.ndarray]:
    """(N, WINDOW_STEPS) windows of all ``openings`` and (N,) the index of each one's melody."""
    wins = [o.windows() for o in openings]
    groups = np.concatenate([np.full(len(w), i) for i, w in enumerate(wins)]) if wins else np.zeros(0, np.int64)
    return (np.concatenate(wins) if wins else np.zeros((0, WINDOW_STEPS), np.int64)), groups


def rhythm_and_form(openings: list[Opening]) -> dict[str, float]:
    """Mean over melodies of the share of its notes with its most common duration (``modal_duration``),
    of its 4-note pitch patterns that recur in it (``phrase_rep``), and its notes per bar."""
    modal, rep, density = [], [], []
    for o in openings:
        durations = Counter(off - on for _, on, off in o.notes)
        modal.append(durations.most_common(1)[0][1] / len(o.notes))
        rep.append(phrase_repetition(o.notes))
        density.append(len(o.notes) * o.bar_steps / len(o.symbols))
    return {"modal_duration": float(np.mean(modal)), "phrase_rep": float(np.mean(rep)),
            "notes_per_bar": float(np.mean(density))}


def note_histograms(openings: list[Opening]) -> dict[str, dict[str, float]]:
    """The pooled shares of the melodies' note lengths (``durations``: {length in quarter notes:
    share}) and pitch classes (``pitch_classes``: {C, Db, ... B: share}, keys moved to C)."""
    lengths = Counter((off - on) / GRID for o in openings for _, on, off in o.notes)
    classes = Counter(pitch % 12 for o in openings for pitch, _, _ in o.notes)
    total = max(sum(lengths.values()), 1)
    return {"durations": {f"{d:g}": n / total for d, n in sorted(lengths.items())},
            "pitch_classes": {name: classes[i] / total for i, name in enumerate(TONIC_NAMES)}}


class ListeningTest:
    """The held-out tunes' openings, against which sets of melodies are judged."""

    def __init__(self, held_out: list[Opening], critic_runs: int = 3, seed: int = 0):
        if len(held_out) < 2:
            raise ValueError("the listening test needs at least two held-out tunes")
        self.real, self.real_groups = stacked_windows(held_out)
        self.critic_runs, self.seed = critic_runs, seed
        self.real_stats = rhythm_and_form(held_out)
        self.real_histograms = note_histograms(held_out)

    def judge(self, label: str, openings: list[Opening]) -> dict:
        """{model, critic (mean over critic seeds), critic_sd, critics, melodies, windows, and
        :func:`rhythm_and_form` and :func:`note_histograms`} of ``openings`` against the held-out tunes."""
        fake, groups = stacked_windows(openings)
        folds = min(CRITIC_FOLDS, len(np.unique(self.real_groups)), len(np.unique(groups)))
        critics = [float("nan")] * self.critic_runs  # fewer than 2 melodies with a window on a side: no test
        if folds >= 2:
            critics = [two_sample_accuracy(self.real, self.real_groups, fake, VOCAB, groups, epochs=CRITIC_EPOCHS,
                                           seed=self.seed + i, folds=folds) for i in range(self.critic_runs)]
        return {"model": label, "critic": float(np.mean(critics)),
                "critic_sd": float(np.std(critics, ddof=1)) if len(critics) > 1 else float("nan"),
                "critics": critics, "melodies": len(openings), "windows": len(fake), **rhythm_and_form(openings),
                **note_histograms(openings)}


def compare(a: dict, b: dict, seed_sd: float | None = None) -> tuple[int, float, float]:
    """(side, difference, noise) of row ``a``'s critic against row ``b``'s: side -1 when ``a`` is
    closer to the held-out tunes, +1 further, 0 no different; a difference counts only beyond
    ``noise``, both rows' spread over critic seeds and, when known, the training seeds'."""
    diff = a["critic"] - b["critic"]
    noise = max(a["critic_sd"], b["critic_sd"], seed_sd or 0.0)
    return (0 if abs(diff) <= noise else -1 if diff < 0 else 1), diff, noise


def reading(a: dict, b: dict, seed_sd: float | None = None) -> str:
    """One line on whether row ``a`` is closer to the held-out tunes than row ``b`` (:func:`compare`)."""
    side, diff, noise = compare(a, b, seed_sd)
    where = "the critic's spread" + (" and the training seeds'" if seed_sd else "")
    if not side:
        return f"{a['model']} is no different from {b['model']} ({diff:+.3f}, within {where} {noise:.3f})"
    return (f"{a['model']} is {'closer to' if side < 0 else 'further from'} the held-out tunes than {b['model']} "
            f"({diff:+.3f}, beyond {where} {noise:.3f})")


def meter_counts(tokenizer, tunes, count: int) -> dict[str | None, int]:
    """How many of ``count`` melodies to draw in each metre: as often as ``tunes`` start in it
    (largest remainders; {None: count} without bar lines, where generate takes no metre)."""
    if not tokenizer.bar_tokens:
        return {None: count}
    seen = Counter(tokenizer.meter_of(t) for t in tunes)
    total = sum(seen.values())
    exact = {m: count * n / total for m, n in seen.items()}
    out = {m: int(v) for m, v in exact.items()}
    for m in sorted(exact, key=lambda m: out[m] - exact[m])[: count - sum(out.values())]:
        out[m] += 1
    return {m: n for m, n in out.items() if n}


def user_melodies(run, meters: dict[str | None, int], drafts: int, seed: int, temperature: float = 1.0) -> list:
    """Melodies of ``OPENING_BARS`` bars drawn as ``generate`` draws them (tune starts, drafts,
    keys moved back), ``meters[m]`` in each metre m -> a list of (L,) token arrays."""
    from seqgan_music.melody_request import MelodyRequest, melodies_for

    rows = []
    for i, (meter, num) in enumerate(sorted(meters.items(), key=lambda kv: str(kv[0]))):
        request = MelodyRequest(num=num, bars=OPENING_BARS, meter=meter, temperature=temperature, seed=seed + 1000 * i,
                                drafts=drafts)
        rows += list(melodies_for(run, request).tokens.numpy())
    return rows
