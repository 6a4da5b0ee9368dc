"""Audio rendering: FluidSynth with a General MIDI SoundFont, or a plain synthesizer as fallback."""

from __future__ import annotations

import io
import os
import wave

import numpy as np
import pretty_midi

SAMPLE_RATE = 22050  # Hz
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
