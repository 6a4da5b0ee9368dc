from __future__ import annotations

import json

import numpy as np
import pretty_midi
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from midi_factory import melody_pm, song_pm

from seqgan_music.config import TokenizerConfig, from_dict, to_dict
from seqgan_music.errors import UserError
from seqgan_music.melody import SkipPiece, extract_melody, skyline
from seqgan_music.tokenizer import HOLD, METERS, REST, Tokenizer


def grid_notes(pm: pretty_midi.PrettyMIDI, spq: int = 4):
    """(pitch, onset step, end step) of the first track, on a grid of spq steps per quarter."""
    step = 60.0 / pm.get_tempo_changes()[1][0] / spq
    return [(n.pitch, round(n.start / step), round(n.end / step)) for n in pm.instruments[0].notes]


melodies = st.lists(
    st.tuples(st.integers(48, 84), st.integers(0, 3), st.integers(1, 8)),  # pitch, gap steps, length steps
    min_size=1, max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(melodies, st.sampled_from([60.0, 97.0, 120.0, 180.0]))
def test_melody_round_trip_on_grid(notes, qpm):
    """decode(encode(m)) gives back the same notes for monophonic grid melodies in range."""
    tok = Tokenizer(TokenizerConfig())
    t, first = 0, True
    pm = pretty_midi.PrettyMIDI(initial_tempo=qpm)
    inst = pretty_midi.Instrument(0)
    step = 60.0 / qpm / 4
    expected = []
    for pitch, gap, length in notes:
        t += 0 if first else gap
        first = False
        inst.notes.append(pretty_midi.Note(90, pitch, t * step, (t + length) * step))
        expected.append((pitch, t, t + length))
        t += length
    pm.instruments.append(inst)
    tokens = tok.encode(extract_melody(pm, tok.config))
    assert tok.decode_notes(tokens) == expected
    back = tok.decode(tokens, qpm=qpm)
    assert grid_notes(back) == expected


def test_tempo_aware_grid():
    """The grid follows beats: the same score at two tempos gives the same tokens."""
    tok = Tokenizer()
    slow = melody_pm([60, 62, 64], [1, 0.5, 0.5], qpm=60)
    fast = melody_pm([60, 62, 64], [1, 0.5, 0.5], qpm=150)
    a = tok.encode(extract_melody(slow, tok.config))
    assert np.array_equal(a, tok.encode(extract_melody(fast, tok.config)))
    assert a.tolist() == [2 + 60 - 48, HOLD, HOLD, HOLD, 2 + 62 - 48, HOLD, 2 + 64 - 48, HOLD]


def test_every_token_sequence_decodes_to_a_valid_melody():
    tok = Tokenizer()
    rng = np.random.default_rng(0)
    for _ in range(50):
        tokens = rng.integers(0, tok.vocab_size, size=40)
        notes = tok.decode_notes(tokens)
        for (p, on, off), nxt in zip(notes, notes[1:] + [None]):
            assert off > on and 48 <= p <= 84
            if nxt:
                assert nxt[1] >= off
    assert tok.decode_notes([HOLD, HOLD, REST]) == []  # HOLD with nothing sounding is a rest


def test_pitches_fold_into_range_by_octaves():
    tok = Tokenizer()
    tokens = tok.encode(extract_melody(melody_pm([30, 100], [1, 1]), tok.config))
    pitches = [p for p, _, _ in tok.decode_notes(tokens)]
    assert pitches == [54, 76] and all(p % 12 == q % 12 for p, q in zip(pitches, [30, 100]))


def test_melody_extraction_picks_the_lead_of_a_multitrack_song():
    pm = song_pm(1)
    tok = Tokenizer()
    melody = extract_melody(pm, tok.config)
    lead = [n.pitch for n in pm.instruments[2].notes]
    assert melody.pitch.tolist() == lead  # not the bass, the pad chords, or the drums


def test_track_override_and_skyline_all():
    pm = song_pm(2)
    bass = extract_melody(pm, TokenizerConfig(track="0"))
    assert bass.pitch.tolist() == [n.pitch for n in pm.instruments[0].notes]
    pad = extract_melody(pm, TokenizerConfig(track="pad"))
    assert set(pad.pitch.tolist()) <= {n.pitch for n in pm.instruments[1].notes}
    sky = extract_melody(pm, TokenizerConfig(skyline_all=True))
    assert len(sky) == len(pm.instruments[2].notes)  # the lead is always on top
    with pytest.raises(SkipPiece, match="no track named"):
        extract_melody(pm, TokenizerConfig(track="violin"))
    with pytest.raises(SkipPiece, match="no pitched notes"):
        extract_melody(pm, TokenizerConfig(track="3"))


def test_skyline_keeps_highest_sounding_pitch():
    notes = np.array([[0, 2, 60], [0, 1, 64], [0.5, 1.5, 67], [1.0, 3.0, 55]], dtype=float)
    out = skyline(notes)
    assert out.tolist() == [[0, 0.5, 64], [0.5, 1.5, 67]]


def test_drums_only_is_skipped_with_reason():
    pm = pretty_midi.PrettyMIDI()
    drums = pretty_midi.Instrument(0, is_drum=True)
    drums.notes.append(pretty_midi.Note(100, 36, 0, 0.1))
    pm.instruments.append(drums)
    with pytest.raises(SkipPiece, match="drums only"):
        extract_melody(pm, TokenizerConfig())


def test_pickup_bar_starts_at_first_note():
    tok = Tokenizer()
    tokens = tok.encode(extract_melody(melody_pm([67, 72], [1, 2], start_beats=3), tok.config))
    assert tokens[0] == 2 + 67 - 48 and len(tokens) == 12


def test_paper_encoding_samples_every_0_4_seconds():
    tok = Tokenizer(TokenizerConfig(encoding="paper"))
    assert tok.vocab_size == 89
    pm = melody_pm([60, 64], [1.6, 0.8], qpm=60)  # 1.6 s then 0.8 s
    tokens = tok.encode(extract_melody(pm, tok.config))
    assert tokens.tolist() == [60 - 20] * 4 + [64 - 20] * 2
    back = tok.decode(tokens)
    notes = back.instruments[0].notes
    assert [(n.pitch, round(n.start, 3), round(n.end, 3)) for n in notes] == [(60, 0, 1.6), (64, 1.6, 2.4)]


def test_transpose_stays_in_range():
    tok = Tokenizer()
    tokens = np.array([2 + 60 - 48, HOLD, REST, 2 + 83 - 48])
    up = tok.transpose(tokens, 1)
    assert tok.token_pitch(up).tolist() == [61, -1, -1, 84]
    assert tok.transpose(tokens, 2) is None
    folded = tok.transpose(tokens, 2, fold=True)  # the note that would leave the range goes down an octave
    assert tok.token_pitch(folded).tolist() == [62, -1, -1, 73] and folded[1:3].tolist() == [HOLD, REST]


@pytest.mark.parametrize("cfg", [TokenizerConfig(), TokenizerConfig(encoding="paper", seq_len=20),
                                 TokenizerConfig(steps_per_quarter=6, pitch_low=40, pitch_high=90, track="lead")])
def test_tokenizer_json_round_trip(cfg, tmp_path):
    tok = Tokenizer(cfg)
    path = tmp_path / "tok.json"
    tok.save(str(path))
    assert Tokenizer.load(str(path)) == tok
    assert from_dict(TokenizerConfig, json.loads(json.dumps(to_dict(cfg)))) == cfg


def test_unknown_config_keys_are_rejected():
    with pytest.raises(UserError, match="unknown key"):
        from_dict(TokenizerConfig, {"encoding": "melody", "pitch_lo": 3})
    with pytest.raises(UserError, match="encoding"):
        Tokenizer(TokenizerConfig(encoding="piano-roll"))


def test_bars_encoding_round_trip_keeps_notes_bars_and_metre():
    """MIDI in 3/4 with a one-beat pickup -> tokens -> MIDI: a BAR_3/4 before every bar, the grid
    starts at the downbeat before the pickup, and the decoded notes keep their beats."""
    pm = melody_pm([60, 64, 67, 65, 64, 62, 60], durations=[1, 1, 1, 1, 1, 1, 3], start_beats=2.0)
    pm.time_signature_changes.append(pretty_midi.TimeSignature(3, 4, 0.0))
    tok = Tokenizer(TokenizerConfig(encoding="bars"))
    melody = extract_melody(pm, tok.config)
    assert melody.meter == "3/4"
    tokens = tok.encode(melody)
    bar = tok.bar_tokens[METERS.index("3/4")]
    assert len(tokens) == 4 * 13 and (tokens[::13] == bar).all()  # 4 bars of 12 steps, each after its BAR
    assert tok.meter_of(tokens) == "3/4" and tok.time_steps(tokens) == 48
    notes = tok.decode_notes(tokens)
    assert [(p, on / 4, (off - on) / 4) for p, on, off in notes] == [
        (60, 2, 1), (64, 3, 1), (67, 4, 1), (65, 5, 1), (64, 6, 1), (62, 7, 1), (60, 8, 3)]
    assert np.array_equal(tok.encode(extract_melody(tok.decode(tokens), tok.config)), tokens)


def test_abc_and_musicxml_metre_and_pickup_reach_the_bar_lines():
    from music21 import meter, note, stream
    from music21.musicxml.m21ToXml import GeneralObjectExporter

    from seqgan_music.sources import Item, Limits, parse_item

    cfg = TokenizerConfig(encoding="bars", seq_len=8)
    tok = Tokenizer(cfg)
    abc = b"X:1\nT:jig\nM:6/8\nL:1/8\nK:D\nA|dfa dfa|agf e2|]\n"
    tokens = parse_item(Item("t.abc", "abc", abc), cfg, Limits())[0].tokens
    assert tok.meter_of(tokens) == "6/8"
    assert tok.decode_notes(tokens)[:2] == [(69, 10, 12), (74, 12, 14)]  # pickup eighth ends the first bar
    part = stream.Part([meter.TimeSignature("2/4")] + [note.Note(p, quarterLength=1.0) for p in ("C4", "E4", "G4", "C5")])
    xml = GeneralObjectExporter(stream.Score([part])).parse()
    tokens = parse_item(Item("s.musicxml", "musicxml", xml), cfg, Limits())[0].tokens
    assert tok.meter_of(tokens) == "2/4" and list(np.flatnonzero(tokens >= tok.bar_tokens[0])) == [0, 9]


def test_bar_lines_take_no_time_and_do_not_end_a_note():
    tok = Tokenizer(TokenizerConfig(encoding="bars"))
    bar, c4 = tok.bar_tokens[0], 2 + 60 - tok.config.pitch_low
    tokens = np.array([bar] + [c4] + [HOLD] * 15 + [bar] + [HOLD] * 4 + [REST] * 12)
    assert tok.decode_notes(tokens) == [(60, 0, 20)]
    assert tok.sounding_pitch(tokens)[17] == 60
