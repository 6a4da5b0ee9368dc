"""Seeds and mutations for fuzzing the text readers: ABC tunes and MusicXML scores, made here.

Each mutation takes (rng, text) and returns damaged or extreme bytes of the same kind: flipped
bytes, a cut, an extreme number in place of one of the text's numbers, a stretch repeated many
times, an absurd header field (ABC) or element value (MusicXML).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np

NOTE_LETTERS = "CDEFGABcdefgab"
ABC_LENGTHS = ["", "2", "3", "/2", "4", "3/2"]


def seed_abc(rng: np.random.Generator, tunes: int = 3) -> str:
    """A small ABC file of ``tunes`` tunes with metre, length, tempo, key, ties, chords, tuplets,
    repeats and grace notes."""
    out = []
    for n in range(1, tunes + 1):
        meter = rng.choice(["4/4", "3/4", "6/8", "2/4", "C|"])
        body = []
        for _ in range(int(rng.integers(2, 10))):
            notes = []
            for _ in range(int(rng.integers(1, 7))):
                pick = rng.random()
                letter = NOTE_LETTERS[int(rng.integers(0, len(NOTE_LETTERS)))]
                length = ABC_LENGTHS[int(rng.integers(0, len(ABC_LENGTHS)))]
                if pick < 0.1:
                    notes.append(f"[{letter}{NOTE_LETTERS[int(rng.integers(0, 14))]}]{length}")
                elif pick < 0.15:
                    notes.append(f"(3{letter}{letter}{letter}")
                elif pick < 0.2:
                    notes.append(f"{{g}}{letter}{length}")
                elif pick < 0.25:
                    notes.append(f"{letter}{length}-{letter}")
                else:
                    notes.append(f"{rng.choice(['', '^', '_', '='])}{letter}{rng.choice(['', ',', chr(39)])}{length}")
            body.append(" ".join(notes))
        bars = " | ".join(body)
        out.append(f"X:{n}\nT:Tune {n}\nM:{meter}\nL:1/8\nQ:1/4={int(rng.integers(60, 200))}\n"
                   f"K:{rng.choice(['G', 'D', 'Ador', 'Em', 'Bb', 'F#m', 'Dmix'])}\n|:{bars}:|\n")
    return "\n".join(out)


def seed_musicxml(rng: np.random.Generator) -> str:
    """A one- or two-part partwise score: divisions, key, time, a metronome mark, tied notes,
    chords, rests and a tuplet."""
    divisions = int(rng.choice([1, 2, 4, 24]))
    parts = int(rng.integers(1, 3))
    out = ['<?xml version="1.0"?><score-partwise version="3.1"><part-list>']
    out += [f'<score-part id="P{p}"><part-name>P{p}</part-name></score-part>' for p in range(parts)]
    out.append("</part-list>")
    for p in range(parts):
        out.append(f'<part id="P{p}">')
        for m in range(int(rng.integers(1, 8))):
            head = ""
            if m == 0:
                head = (f"<attributes><divisions>{divisions}</divisions><key><fifths>{int(rng.integers(-7, 8))}</fifths>"
                        f"<mode>{rng.choice(['major', 'minor'])}</mode></key><time><beats>{int(rng.choice([2, 3, 4, 6]))}"
                        f"</beats><beat-type>{int(rng.choice([4, 8]))}</beat-type></time></attributes>"
                        f'<direction><sound tempo="{int(rng.integers(40, 220))}"/></direction>')
            out.append(f'<measure number="{m + 1}">{head}{_measure_notes(rng, divisions)}</measure>')
        out.append("</part>")
    out.append("</score-partwise>")
    return "".join(out)


def _measure_notes(rng: np.random.Generator, divisions: int) -> str:
    notes = []
    for i in range(int(rng.integers(1, 6))):
        step, octave = "CDEFGAB"[int(rng.integers(0, 7))], int(rng.integers(2, 7))
        pitch = "<rest/>" if rng.random() < 0.1 else f"<pitch><step>{step}</step><octave>{octave}</octave></pitch>"
        extra = ""
        if rng.random() < 0.15:
            extra = '<tie type="start"/>'
        if rng.random() < 0.1:
            extra += "<time-modification><actual-notes>3</actual-notes><normal-notes>2</normal-notes></time-modification>"
        chord = "<chord/>" if i and rng.random() < 0.15 else ""
        notes.append(f"<note>{chord}{pitch}<duration>{divisions * int(rng.choice([1, 2]))}</duration>{extra}</note>")
    return "".join(notes)


EXTREME_NUMBERS = ["0", "-1", "1000000000", "99999999999999999999999", "1e308", "nan", "0.0000001", "65536"]


def flip_bytes(rng, data: bytes) -> bytes:
    """1 to 11 random bytes of ``data`` replaced by random values (any file kind)."""
    b = bytearray(data)
    for _ in range(int(rng.integers(1, 12))):
        b[int(rng.integers(0, len(b)))] = int(rng.integers(0, 256))
    return bytes(b)


def truncate_bytes(rng, data: bytes) -> bytes:
    """``data`` cut at a random point (any file kind)."""
    return data[: int(rng.integers(0, len(data) + 1))]


def _flip(rng, text: str) -> bytes:
    return flip_bytes(rng, text.encode())


def _truncate(rng, text: str) -> bytes:
    return truncate_bytes(rng, text.encode())


def _extreme_number(rng, text: str) -> bytes:
    """One to three of the text's numbers replaced by extreme ones."""
    numbers = list(re.finditer(r"\d+", text))
    for match in sorted(rng.choice(numbers, size=min(len(numbers), int(rng.integers(1, 4))), replace=False),
                        key=lambda m: -m.start()):
        value = EXTREME_NUMBERS[int(rng.integers(0, len(EXTREME_NUMBERS)))]
        text = text[: match.start()] + value + text[match.end() :]
    return text.encode()


def _repeat(rng, text: str) -> bytes:
    """A stretch of up to 200 characters repeated 10 to 3,000 times in place."""
    start = int(rng.integers(0, len(text)))
    stretch = text[start : start + int(rng.integers(1, 200))]
    return (text[:start] + stretch * int(rng.choice([10, 100, 1000, 3000])) + text[start:]).encode()


def _random_bytes(rng, text: str) -> bytes:
    raw = rng.integers(0, 256, size=int(rng.integers(0, 400)), dtype=np.uint8).tobytes()
    return text.encode()[:40] + raw


ABC_FIELDS = ["L:1/1000000", "L:0", "L:1/0", "M:1000000/1", "M:1000/4", "M:4/99999", "M:0/0", "M:7/1000000", "Q:1/4=100000000", "Q:1/4=0",
              "Q:0/0=-5", "K:H#phrygian", "K:", "M:", "L:1000000/1", "X:", "T:" + "x" * 5000]


def _abc_field(rng, text: str) -> bytes:
    """An absurd header or inline field after a tune's X: line or inside its body."""
    field = ABC_FIELDS[int(rng.integers(0, len(ABC_FIELDS)))]
    lines = text.split("\n")
    at = int(rng.integers(1, len(lines)))
    inline = rng.random() < 0.3
    lines.insert(at, f"[{field}]" if inline else field)
    return "\n".join(lines).encode()


XML_VALUES = [("duration", "1000000000"), ("duration", "0"), ("duration", "-4"), ("divisions", "0"),
              ("divisions", "1000000000"), ("divisions", "-1"), ("beats", "1000000"), ("beat-type", "0"),
              ("actual-notes", "0"), ("actual-notes", "100000"), ("octave", "1000"), ("fifths", "100"),
              ("alter", "1000000")]


def _xml_value(rng, text: str) -> bytes:
    """An element's value (or a tempo) replaced by an absurd one, added where the score lacks it."""
    if rng.random() < 0.2:
        return re.sub(r'tempo="[^"]*"', f'tempo="{rng.choice(["0", "-1", "1e308", "nan", "inf"])}"', text).encode()
    tag, value = XML_VALUES[int(rng.integers(0, len(XML_VALUES)))]
    if f"<{tag}>" not in text:
        text = text.replace("<pitch><step>", f"<pitch><{tag}>{value}</{tag}><step>", 1)
    return re.sub(rf"<{tag}>[^<]*</{tag}>", f"<{tag}>{value}</{tag}>", text, count=int(rng.integers(0, 3))).encode()


COMMON: dict[str, Callable] = {"byte_flip": _flip, "truncate": _truncate, "extreme_number": _extreme_number,
                               "repeat": _repeat, "random_bytes": _random_bytes}
ABC_MUTATIONS: dict[str, Callable] = {**COMMON, "abc_field": _abc_field}
MUSICXML_MUTATIONS: dict[str, Callable] = {**COMMON, "xml_value": _xml_value}
