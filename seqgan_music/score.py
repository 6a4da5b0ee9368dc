"""Sheet music of melodies in the melody and bars encodings: a music21 score, MusicXML, ABC text, and an SVG
engraved offline by verovio.

A token sequence is laid out in its metre (the bars encoding's BAR tokens; 4/4 for the melody
encoding) from its first step, which is a downbeat, with
the key estimated from its notes (Krumhansl-Schmuckler, :func:`metrics.estimate_key`) for the key signature and the
spelling of black keys. The paper encoding samples time in seconds and has no beat grid, so it
has no score.
"""

from __future__ import annotations

import os

import numpy as np

from seqgan_music.errors import UserError
from seqgan_music.metrics import estimate_key
from seqgan_music.tokenizer import Tokenizer, meter_steps

# (letter, alteration) of each pitch class in keys without sharps or flats (music21's spelling of
# MIDI numbers: C# Eb F# G# Bb), in sharp keys and in flat keys
DEFAULT_SPELLING = [("C", 0), ("C", 1), ("D", 0), ("E", -1), ("E", 0), ("F", 0), ("F", 1), ("G", 0), ("G", 1),
                    ("A", 0), ("B", -1), ("B", 0)]
SHARP_SPELLING = [("C", 0), ("C", 1), ("D", 0), ("D", 1), ("E", 0), ("F", 0), ("F", 1), ("G", 0), ("G", 1), ("A", 0),
                  ("A", 1), ("B", 0)]
FLAT_SPELLING = [("C", 0), ("D", -1), ("D", 0), ("E", -1), ("E", 0), ("F", 0), ("G", -1), ("G", 0), ("A", -1), ("A", 0),
                 ("B", -1), ("B", 0)]
ABC_ACCIDENTALS = {-1: "_", 0: "=", 1: "^"}


def _grid(tokenizer: Tokenizer) -> int:
    """Grid steps per quarter note; a UserError for the paper encoding."""
    if tokenizer.steps_per_bar is None:
        raise UserError("sheet music needs the melody encoding (the paper encoding has no beat grid)")
    return tokenizer.config.steps_per_quarter


def melody_score(tokenizer: Tokenizer, tokens, qpm: float = 120.0, title: str = "Melody"):
    """(L,) token ids -> a music21 Score of one part: metre, tempo, estimated key, notes and rests."""
    from music21 import metadata, meter, note, stream, tempo

    per_quarter = _grid(tokenizer)
    part = stream.Part()
    part.append(meter.TimeSignature(tokenizer.meter_of(tokens)))
    part.append(tempo.MetronomeMark(number=qpm))
    now = 0
    notes = tokenizer.decode_notes(np.asarray(tokens))
    length = tokenizer.time_steps(tokens)
    for pitch, on, off in notes:
        if on > now:
            part.append(note.Rest(quarterLength=(on - now) / per_quarter))
        written = note.Note(pitch, quarterLength=(off - on) / per_quarter)
        if written.pitch.accidental is not None and written.pitch.accidental.name == "natural":
            written.pitch.accidental = None  # a MIDI number gives an explicit natural; print only needed ones
        part.append(written)
        now = off
    if length > now:
        part.append(note.Rest(quarterLength=(length - now) / per_quarter))
    if notes:
        key = written_key(notes)
        part.insert(0, key)
        unwanted = "sharp" if key.sharps < 0 else "flat" if key.sharps > 0 else None
        for n in part.recurse().notes:  # black keys as flats in flat keys, as sharps in sharp keys
            if n.pitch.accidental is not None and n.pitch.accidental.name == unwanted:
                n.pitch = n.pitch.getEnharmonic()
    score = stream.Score([part])
    score.insert(0, metadata.Metadata(title=title))
    return score


def written_key(notes):
    """The music21 Key a melody's notes are written in: the estimate evaluate and --end-on-tonic
    use (:func:`metrics.estimate_key`), spelt with the fewer accidentals (Db major, not C# major)."""
    from music21 import key as music21_key
    from music21 import pitch as music21_pitch

    tonic_pc, major = estimate_key(notes)
    tonic = music21_pitch.Pitch(tonic_pc)
    names = sorted({tonic.name, tonic.getEnharmonic().name})  # sorted: F# major, not Gb, on a tie
    return min((music21_key.Key(name, "major" if major else "minor") for name in names), key=lambda k: abs(k.sharps))


def musicxml_bytes(tokenizer: Tokenizer, tokens, qpm: float = 120.0, title: str = "Melody") -> bytes:
    """MusicXML (uncompressed, UTF-8) of :func:`melody_score`."""
    from music21.musicxml.m21ToXml import GeneralObjectExporter

    return GeneralObjectExporter(melody_score(tokenizer, tokens, qpm, title)).parse()


def score_svg(musicxml: bytes, width_px: int = 1000) -> str:
    """One SVG image of a MusicXML score engraved by verovio (systems broken to ``width_px``)."""
    import verovio

    # verovio finds its fonts by itself only in the thread that imported it (the app renders in others)
    toolkit = verovio.toolkit(False)
    if not toolkit.setResourcePath(os.path.join(os.path.dirname(verovio.__file__), "data")):
        raise UserError("verovio's font resources are missing; reinstall verovio")
    toolkit.setOptions({"pageWidth": width_px * 2, "pageHeight": 60000, "scale": 50, "adjustPageHeight": True,
                        "header": "none", "footer": "none", "breaks": "auto"})
    if not toolkit.loadData(musicxml.decode("utf-8")):
        raise UserError("verovio could not read the MusicXML score")
    return toolkit.renderToSVG(1)


def abc_text(tokenizer: Tokenizer, tokens, qpm: float = 120.0, title: str = "Melody", number: int = 1) -> str:
    """ABC notation in the key of :func:`written_key` (K: and its signature), L: one grid step,
    bars of the tune's metre, notes across bar lines tied. A note off the key signature always
    carries its accidental, and a note of a letter altered earlier in the bar always carries its
    own, so readers that apply accidentals per octave and those that apply them to every octave
    read the same pitches."""
    per_quarter = _grid(tokenizer)
    meter = tokenizer.meter_of(tokens)
    bar = meter_steps(meter, per_quarter)[0]
    length = tokenizer.time_steps(tokens)
    notes = tokenizer.decode_notes(np.asarray(tokens))
    key = written_key(notes) if notes else None
    sharps = key.sharps if key else 0
    signature = dict.fromkeys("FCGDAEB"[:sharps], 1) if sharps >= 0 else dict.fromkeys("BEADGCF"[:-sharps], -1)
    spelling = SHARP_SPELLING if sharps > 0 else DEFAULT_SPELLING if sharps == 0 else FLAT_SPELLING
    events: list[tuple[int | None, int, int]] = []  # (pitch or None for a rest, on, off)
    now = 0
    for pitch, on, off in notes:
        if on > now:
            events.append((None, now, on))
        events.append((pitch, on, off))
        now = off
    if length > now:
        events.append((None, now, length))
    body: list[str] = []
    altered: dict[str, int] = {}  # letter -> the accidental written on it earlier in this bar
    for pitch, on, off in events:
        start = on
        while start < off:  # one piece per bar the event touches
            end = min(off, (start // bar + 1) * bar)
            if pitch is None:
                body.append("z" + _abc_length(end - start))
            else:
                letter, alteration = spelling[pitch % 12]
                accidental = ""
                if alteration != signature.get(letter, 0) or altered.get(letter, alteration) != alteration:
                    accidental = ABC_ACCIDENTALS[alteration]
                    altered[letter] = alteration
                body.append(accidental + _abc_octave(letter, pitch // 12 - 1) + _abc_length(end - start)
                            + ("-" if end < off else ""))
            if end % bar == 0:
                body.append("|\n" if (end // bar) % 4 == 0 else "|")
                altered.clear()
            start = end
    text = " ".join(body).replace(" |", "|").replace("|\n ", "|\n").rstrip()
    text = text[:-1] + "|]" if text.endswith("|") else text + "|]"
    header = f"X:{number}\nT:{title}\nM:{meter}\nL:1/{4 * per_quarter}\nQ:1/4={qpm:g}\n"
    return header + f"K:{_abc_key(key)}\n{text}\n"


def _abc_key(key) -> str:
    """A music21 Key (None: C) -> the ABC K: value: G, Bb, F#m."""
    if key is None:
        return "C"
    return key.tonic.name.replace("-", "b") + ("" if key.mode == "major" else "m")


def _abc_octave(letter: str, octave: int) -> str:
    """A letter in a scientific-pitch octave -> ABC: C4 -> 'C', C5 -> 'c', C6 -> "c'", C3 -> 'C,'."""
    if octave >= 5:
        return letter.lower() + "'" * (octave - 5)
    return letter + "," * (4 - octave)


def _abc_length(steps: int) -> str:
    return "" if steps == 1 else str(steps)
