"""Sheet music: ABC and MusicXML keep every note, verovio engraves one notehead per written note."""

from __future__ import annotations

import numpy as np
import pytest
from music21 import converter

from seqgan_music.config import TokenizerConfig
from seqgan_music.errors import UserError
from seqgan_music.score import abc_text, musicxml_bytes, score_svg
from seqgan_music.tokenizer import HOLD, Tokenizer

TOK = Tokenizer()


def tune(seed: int, steps: int = 64) -> np.ndarray:
    """Random tokens with long notes (so that many cross bar lines) and rests; a note on step 0."""
    rng = np.random.default_rng(seed)
    tokens = np.where(rng.random(steps) < 0.6, HOLD, rng.integers(0, TOK.vocab_size, steps))
    tokens[0] = 2 + int(rng.integers(0, TOK.vocab_size - 2))
    return tokens


def expected_notes(tokens) -> list[tuple[int, float, float]]:
    return [(p, on / 4, (off - on) / 4) for p, on, off in TOK.decode_notes(tokens)]


def parsed_notes(score) -> list[tuple[int, float, float]]:
    return [(n.pitch.midi, float(n.offset), float(n.quarterLength)) for n in score.stripTies().flatten().notes]


@pytest.mark.parametrize("seed", range(6))
def test_abc_round_trip_through_music21(seed):
    tokens = tune(seed)
    text = abc_text(TOK, tokens, qpm=100, title="Test")
    assert "M:4/4" in text and "L:1/16" in text and "Q:1/4=100" in text and text.rstrip().endswith("|]")
    assert text.count("|") == len(tokens) // 16  # one bar line per bar, the last one |]
    assert parsed_notes(converter.parse(text, format="abc")) == expected_notes(tokens)


@pytest.mark.parametrize("seed", range(3))
def test_musicxml_opens_in_music21_with_the_notes_and_bars(seed):
    tokens = tune(seed)
    score = converter.parseData(musicxml_bytes(TOK, tokens, title="Test").decode("utf-8"), format="musicxml")
    assert parsed_notes(score) == expected_notes(tokens)
    part = score.parts[0]
    assert len(part.getElementsByClass("Measure")) == len(tokens) // 16
    assert part.recurse().getElementsByClass("TimeSignature")[0].ratioString == "4/4"


def test_score_svg_has_a_notehead_per_written_note():
    tokens = tune(1)
    xml = musicxml_bytes(TOK, tokens)
    written = len(converter.parseData(xml.decode("utf-8"), format="musicxml").flatten().notes)  # tied pieces count
    svg = score_svg(xml)
    assert svg.lstrip().startswith("<svg") and svg.count('class="note"') == written >= len(TOK.decode_notes(tokens))


def test_no_score_for_the_paper_encoding():
    with pytest.raises(UserError, match="melody encoding"):
        abc_text(Tokenizer(TokenizerConfig(encoding="paper")), np.zeros(8, dtype=int))


def test_key_signature_from_the_shared_estimate_with_the_fewer_accidentals():
    """A Db major scale gets five flats (not seven sharps) and flat spellings."""
    from seqgan_music.score import melody_score

    tokens = [t for p in (61, 63, 65, 66, 68, 70, 72, 73) for t in (2 + p - 48, HOLD, HOLD, HOLD)]
    score = melody_score(TOK, np.array(tokens))
    key = score.recurse().getElementsByClass("Key")[0]
    assert (key.tonic.name, key.mode, key.sharps) == ("D-", "major", -5)
    assert [n.pitch.name for n in score.recurse().notes][:3] == ["D-", "E-", "F"]


def test_scores_in_the_tunes_metre():
    """Bars encoding in 6/8: ABC and MusicXML carry 6/8, bars of 12 steps, and every note."""
    tok = Tokenizer(TokenizerConfig(encoding="bars"))
    bar = tok.bar_tokens[tok.token_names().index("BAR_6/8") - tok.bar_tokens[0]]
    rng = np.random.default_rng(0)
    grid = np.where(rng.random((4, 12)) < 0.5, HOLD, rng.integers(2, tok.bar_tokens[0], (4, 12)))
    grid[0, 0] = 2 + 60 - tok.config.pitch_low
    tokens = np.concatenate([np.full((4, 1), bar), grid], 1).reshape(-1)
    expected = [(p, on / 4, (off - on) / 4) for p, on, off in tok.decode_notes(tokens)]
    text = abc_text(tok, tokens)
    assert "M:6/8" in text and text.count("|") == 4
    assert parsed_notes(converter.parse(text, format="abc")) == expected
    score = converter.parseData(musicxml_bytes(tok, tokens).decode("utf-8"), format="musicxml")
    assert parsed_notes(score) == expected and len(score.parts[0].getElementsByClass("Measure")) == 4
    assert score.parts[0].recurse().getElementsByClass("TimeSignature")[0].ratioString == "6/8"


def test_naturals_are_written_only_where_the_key_needs_them():
    """A D-major scale with C natural (key estimated D major): only Cs carry an accidental sign."""
    import re

    tok = Tokenizer()
    tokens = np.array([2 + p - tok.config.pitch_low for p in (62, 64, 66, 67, 69, 71, 72, 74)] * 2)
    xml = musicxml_bytes(tok, tokens).decode("utf-8")
    assert "<fifths>2</fifths>" in xml
    signed = [n for n in re.findall(r"<note\b.*?</note>", xml, re.S) if "<accidental>" in n]
    assert signed and all("<step>C</step>" in n for n in signed)


def key_melody(key: int) -> np.ndarray:
    """A scale of key ``key`` (0-11 major on C..B, 12-23 minor), then notes off the scale in three
    octaves (one after the same letter's note earlier in its bar), ending on a long tonic."""
    tonic, major = key % 12, key < 12
    steps = [0, 2, 4, 5, 7, 9, 11, 12] if major else [0, 2, 3, 5, 7, 8, 10, 11, 12]
    pitches = [60 + tonic + d for d in steps] + [61 + tonic, 60 + tonic, 73 + tonic, 54 + tonic, 66 + tonic, 60 + tonic]
    tokens = [t for p in pitches for t in (2 + p - TOK.config.pitch_low, HOLD, HOLD, HOLD)]
    return np.array(tokens + [HOLD] * 4)


@pytest.mark.parametrize("key", range(24))
def test_abc_is_written_in_the_tunes_key_and_keeps_every_pitch(key):
    """K: names the key of the shared estimate (G, Bb, F#m, ...); music21 reads back every note,
    chromatic ones included; the 24 test melodies are estimated in 24 different keys."""
    from seqgan_music.generate import parse_key
    from seqgan_music.metrics import estimate_key

    tokens = key_melody(key)
    assert estimate_key(TOK.decode_notes(tokens)) == (key % 12, key < 12)
    text = abc_text(TOK, tokens)
    header = text.split("K:")[1].split("\n")[0]
    assert parse_key(header) == (key % 12, key < 12)
    assert parsed_notes(converter.parse(text, format="abc")) == expected_notes(tokens)


def test_abc_leaves_the_key_signatures_notes_bare():
    """A G major scale: K:G and its F sharp written as a plain F."""
    text = abc_text(TOK, key_melody(7)[:32])
    assert text.endswith("K:G\nG4 A4 B4 c4| d4 e4 f4 g4|]\n")


@pytest.mark.parametrize("key", [0, 7, 4, 9 + 12, 5, 2 + 12])  # C, G, E, A minor, F, D minor
def test_abc_and_musicxml_spell_black_keys_alike(key):
    """Every chromatic note is spelt the same in the ABC text and the MusicXML score: sharps in
    sharp keys, flats in flat keys, C# Eb F# G# Bb in C major and A minor."""
    tokens = np.array([t for p in range(60, 72) for t in (2 + p - TOK.config.pitch_low, HOLD)] + list(key_melody(key)))
    abc = converter.parse(abc_text(TOK, tokens), format="abc")
    xml = converter.parseData(musicxml_bytes(TOK, tokens).decode("utf-8"), format="musicxml")
    names = [n.pitch.name for n in xml.flatten().notes]
    assert [n.pitch.name for n in abc.flatten().notes] == names
    assert {0: "E-", 7: "D#", 4: "D#", 21: "E-", 5: "E-", 14: "E-"}[key] in names[:12]
