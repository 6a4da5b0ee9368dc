"""Pictures for the app: piano rolls with note names and bars, the per-timestep reward heat map.

Both return PNG bytes drawn with matplotlib (headless Agg backend). Rewards are D's probability
that a sequence is real, in [0, 1], shown red (0: unconvincing) through yellow to green (1).
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pretty_midi  # noqa: E402

REWARD_COLOURS = "RdYlGn"
NOTE_COLOUR, PRIMER_COLOUR = "#2f6fb0", "#9a9a9a"


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def piano_roll(notes: list[tuple[int, int, int]], steps: int, steps_per_bar: float | None,
               rewards: np.ndarray | None = None, primer_steps: int = 0, seconds_per_step: float = 0.0) -> bytes:
    """Notes (MIDI pitch, on step, off step) over ``steps`` grid steps -> PNG bytes.

    The pitch axis names notes (C4 = middle C); the time axis counts bars when ``steps_per_bar`` is
    given, else seconds (``seconds_per_step``). ``rewards`` (steps,) colours each note by the
    reward at its onset; notes starting before ``primer_steps`` (a primer) are grey.
    """
    fig, ax = plt.subplots(figsize=(min(12.0, 3.0 + steps / 16), 2.6))
    pitches = [p for p, _, _ in notes] or [60]
    low, high = min(pitches) - 2, max(pitches) + 2
    cmap = plt.get_cmap(REWARD_COLOURS)
    for pitch, on, off in notes:
        if on < primer_steps:
            colour = PRIMER_COLOUR
        elif rewards is not None:
            colour = cmap(float(np.clip(rewards[min(on, len(rewards) - 1)], 0, 1)))
        else:
            colour = NOTE_COLOUR
        ax.add_patch(plt.Rectangle((on, pitch - 0.4), max(off - on, 1) - 0.15, 0.8, color=colour, linewidth=0))
    if primer_steps:
        ax.axvline(primer_steps, color="#555", linewidth=1, linestyle="--")
    ax.set_xlim(0, max(steps, 1))
    ax.set_ylim(low - 0.5, high + 0.5)
    ticks = pitch_ticks(low, high)
    ax.set_yticks(ticks, [pretty_midi.note_number_to_name(p) for p in ticks], fontsize=8)
    if steps_per_bar:
        bars = np.arange(0, steps + 1e-9, steps_per_bar)
        ax.set_xticks(bars, [str(i + 1) for i in range(len(bars))], fontsize=8)
        ax.grid(axis="x", color="#ccc", linewidth=0.8)
        ax.set_xlabel("bar", fontsize=8)
    else:
        ax.set_xlabel(f"time step ({seconds_per_step:g} s each)", fontsize=8)
    ax.set_ylabel("pitch", fontsize=8)
    ax.grid(axis="y", color="#eee", linewidth=0.5)
    return _png(fig)


def pitch_ticks(low: int, high: int) -> list[int]:
    """Pitch-axis ticks for MIDI pitches ``low``..``high``: evenly spaced by the smallest divisor
    of the octave (or two octaves) that gives at most 6 intervals, so every C is one (every other
    C past six octaves) and no two labels sit closer than the step."""
    step = next((d for d in (1, 2, 3, 4, 6, 12) if d >= (high - low) / 6), 24)
    return [p for p in range(low, high + 1) if p % step == 0]


def reward_heatmap(values: np.ndarray) -> bytes:
    """(sequences, steps) rewards in [0, 1] -> PNG bytes of a heat map with its colour scale."""
    values = np.asarray(values, dtype=float)
    fig, ax = plt.subplots(figsize=(min(12.0, 3.0 + values.shape[1] / 6), 1.2 + values.shape[0] / 5))
    image = ax.imshow(values, cmap=REWARD_COLOURS, vmin=0.0, vmax=1.0, aspect="auto", interpolation="nearest")
    bar = fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02)
    bar.set_label("D's reward (0 fake, 1 real)", fontsize=8)
    ax.set_xlabel("time step (token)", fontsize=8)
    ax.set_ylabel("sequence", fontsize=8)
    return _png(fig)
