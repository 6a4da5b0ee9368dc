"""Audio rendering (FluidSynth with a General MIDI SoundFont, plain synthesizer fallback) and
piano-roll pictures."""

from __future__ import annotations

import io
import os
import wave

import numpy as np
import pretty_midi

SAMPLE_RATE = 22050  # Hz
BLUE = np.array([40, 90, 200], dtype=np.uint8)
SOUNDFONTS = (
    os.path.join(os.path.dirname(pretty_midi.__file__), "TimGM6mb.sf2"),  # shipped in pretty_midi's wheel
    "/usr/share/sounds/sf2/default-GM.sf2",
    "/usr/share/sounds/sf2/TimGM6mb.sf2",
)


def soundfont() -> str | None:
    """Path of the first General MIDI SoundFont found, else None."""
    return next((p for p in SOUNDFONTS if os.path.isfile(p)), None)


def fluidsynth_available() -> bool:
    try:
        import fluidsynth  # noqa: F401  (pyfluidsynth; needs the system libfluidsynth)
    except (ImportError, OSError):
        return False
    return soundfont() is not None


def render_audio(pm: pretty_midi.PrettyMIDI, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """PrettyMIDI -> mono float32 samples in [-0.9, 0.9]: FluidSynth when available, else sines."""
    audio = None
    if fluidsynth_available():
        try:
            audio = pm.fluidsynth(fs=sample_rate, synthesizer=soundfont())
        except Exception:  # a broken FluidSynth install must not cost the user their audio
            audio = None
    if audio is None:
        audio = pm.synthesize(fs=sample_rate)
    audio = np.asarray(audio, dtype=np.float32)
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    return 0.9 * audio / peak if peak > 0 else audio


def wav_bytes(audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> bytes:
    """Mono float samples -> a 16-bit PCM WAV file in memory."""
    pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2")
    buf = io.BytesIO()
    with wave.open(buf, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm.tobytes())
    return buf.getvalue()


def midi_to_wav(pm: pretty_midi.PrettyMIDI) -> bytes:
    return wav_bytes(render_audio(pm))


def reward_colours(values: np.ndarray) -> np.ndarray:
    """Rewards in [0, 1] -> RGB uint8 (..., 3): red (0, unconvincing) through yellow to green (1)."""
    values = np.clip(np.asarray(values, dtype=float), 0.0, 1.0)
    rgb = np.stack([np.minimum(1.0, 2 * (1 - values)), np.minimum(1.0, 2 * values), np.full_like(values, 0.15)], -1)
    return (rgb * 255).astype(np.uint8)


def piano_roll(notes: list[tuple[int, int, int]], steps: int, rewards: np.ndarray | None = None,
               cell: int = 8, row: int = 6) -> np.ndarray:
    """Notes (pitch, on step, off step) -> an RGB image (rows = pitches, high at the top).

    ``rewards`` (steps,) in [0, 1] colours each note by the reward at its onset; else blue.
    Returns (height, width, 3) uint8.
    """
    pitches = [p for p, _, _ in notes] or [60]
    low, high = min(pitches) - 2, max(pitches) + 2
    height, width = (high - low + 1) * row, max(steps, 1) * cell
    img = np.full((height, width, 3), 250, dtype=np.uint8)
    for pitch in range(low, high + 1):  # faint lines at every C
        if pitch % 12 == 0:
            y = (high - pitch) * row + row - 1
            img[y, :, :] = 215
    for pitch, on, off in notes:
        y = (high - pitch) * row
        colour = reward_colours(rewards[min(on, len(rewards) - 1)]) if rewards is not None else BLUE
        img[y : y + row - 1, on * cell : max(off * cell - 1, on * cell + 1)] = colour
    return img


def heatmap(values: np.ndarray, cell: int = 8) -> np.ndarray:
    """(rows, cols) values in [0, 1] -> an RGB image in the reward colours, (rows*cell, cols*cell, 3)."""
    return np.kron(reward_colours(values), np.ones((cell, cell, 1), dtype=np.uint8))
