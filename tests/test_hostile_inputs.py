"""Inputs under the size limit that attack a reader's time or memory: each is refused (or read)
before the expensive work, with a reason naming the limit."""

from __future__ import annotations

import tracemalloc

from seqgan_music.cli import main
from seqgan_music.config import TokenizerConfig
from seqgan_music.hostile_inputs import (
    _musicxml,
    abc_absurd_length,
    abc_absurd_meter,
    abc_many_tunes,
    good_midi,
    musicxml_absurd_length,
    musicxml_absurd_signatures,
    mxl_container_bomb,
)
from seqgan_music.sources import Item, Limits, parse_item

CFG = TokenizerConfig()


def reasons(kind: str, data: bytes, limits: Limits | None = None) -> list[str | None]:
    return [r.reason for r in parse_item(Item(f"x.{kind}", kind, data), CFG, limits or Limits())]


def test_musicxml_part_over_the_measure_or_note_limit_is_refused_unparsed():
    assert "MusicXML part of 20 measures" in reasons("musicxml", _musicxml(1, 20, 1), Limits(max_score_measures=10))[0]
    assert "MusicXML part of 40 notes" in reasons("musicxml", _musicxml(1, 1, 40), Limits(max_score_notes=30))[0]


def test_only_the_first_musicxml_part_counts_and_is_read():
    """Parts after the first (over the limits here) are cut before music21 reads the score."""
    results = parse_item(Item("x.musicxml", "musicxml", _musicxml(3, 4, 4) .replace(b"</score-partwise>", b"")
                               + b"</score-partwise>"), CFG, Limits(max_score_measures=5))
    assert results[0].reason is None and results[0].notes == 16


def test_mxl_container_is_read_with_a_cap():
    data = mxl_container_bomb(inflated_bytes=2**28)
    tracemalloc.start()
    result = parse_item(Item("bomb.mxl", "musicxml", data), CFG, Limits(max_file_bytes=2**20))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert result[0].reason is None and peak < 50 * 2**20


def test_absurd_tempo_and_note_length_are_refused_by_the_length_in_quarters():
    assert "longer than 20000 quarter notes" in reasons("abc", abc_absurd_length())[0]
    assert "longer than 20000 quarter notes" in reasons("musicxml", musicxml_absurd_length())[0]


def test_absurd_time_and_key_signatures_are_refused_before_music21_builds_them():
    assert reasons("abc", abc_absurd_meter()) == ["ABC time signature 1000000/4 (numbers above 128 are not music)"]
    inline = b"X:1\nT:t\nM:4/4\nL:1/8\nK:G\nGABc [M:3/99999] dedB|\n"
    assert "ABC time signature 3/99999" in reasons("abc", inline)[0]
    assert reasons("musicxml", musicxml_absurd_signatures()) == [
        "MusicXML time signature 1000000/4 (numbers above 128 are not music)"]
    key_only = _musicxml(1, 2, 4).replace(b"<attributes>", b"<attributes><key><fifths>-15</fifths></key>", 1)
    assert reasons("musicxml", key_only) == ["MusicXML key signature of -15 fifths (more than 14 sharps or flats)"]
    assert reasons("abc", b"X:1\nT:t\nM:12/8\nL:1/8\nK:G\nGAB cde|\n") == [None]


def test_abc_file_is_read_up_to_its_tune_and_character_budget():
    got = reasons("abc", abc_many_tunes(8), Limits(max_abc_tunes=5))
    assert got[:1] == ["3 tunes after the first 5 not read (an ABC file is read up to 5 tunes and 400000 characters)"]
    assert got[1:] == [None] * 5
    long_tune = b"X:1\nT:l\nL:1/8\nK:G\n" + b"GABc|" * 100 + b"\n"
    assert "ABC tune longer than 200 characters" in reasons("abc", long_tune, Limits(max_abc_tune_chars=200))[0]


def flooded(events_between: int) -> bytes:
    """good_midi() with controller, pitch-bend, sysex and text events at the start of each track."""
    data = good_midi()
    noise = (b"\x00\xb0\x07\x64" + b"\x00\x07\x64" * (events_between - 1) + b"\x00\xe0\x00\x40"
             + b"\x00\xf0\x03\x7e\x01\xf7" + b"\x00\xff\x01\x03abc")
    out = bytearray(data[:14])
    pos = 14
    while pos < len(data):
        size = int.from_bytes(data[pos + 4 : pos + 8], "big")
        body = data[pos + 8 : pos + 8 + size]
        body = noise + body  # zero-delta events first: every note keeps its tick
        out += b"MTrk" + len(body).to_bytes(4, "big") + body
        pos += 8 + size
    return bytes(out)


def test_midi_events_past_the_cap_are_refused_and_dropped_events_keep_timing():
    plain = parse_item(Item("a.mid", "midi", good_midi()), CFG, Limits())[0]
    noisy = parse_item(Item("b.mid", "midi", flooded(5)), CFG, Limits())[0]
    assert plain.reason is None and (noisy.tokens == plain.tokens).all()
    assert "too many MIDI events (> 100)" in reasons("midi", flooded(50), Limits(max_midi_events=100))[0]


def test_bench_hostile_prints_each_case_and_passes(capsys):
    assert main(["bench", "hostile", "--only", "absurd"]) == 0
    out = capsys.readouterr().out
    assert "3/3 files refused or read within 10 s and 500 MB" in out and "quarter notes" in out
    assert main(["bench", "hostile", "--only", "nothing-of-that-name"]) == 2


def test_peak_memory_is_the_prepare_process_own_not_its_large_parent(tmp_path):
    """The caller holds 800 MB; the prepare process it starts must not be charged for it."""
    ballast = bytearray(800 * 2**20)
    ballast[:: 4096] = b"\x01" * len(ballast[:: 4096])  # touched: resident
    from seqgan_music.hostile_inputs import run_case

    row = run_case("ABC, absurd tempo and length", str(tmp_path))
    assert row["ok"] and row["peak_mb"] < 500, row
    del ballast
