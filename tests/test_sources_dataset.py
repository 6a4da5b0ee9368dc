from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import mido
import numpy as np
import pretty_midi
import pytest
from midi_factory import melody_pm, random_melody_pm, song_pm, to_bytes, write

from seqgan_music.config import TokenizerConfig
from seqgan_music.dataset import load_dataset, prepare, split_pieces, windows_of
from seqgan_music.errors import UserError
from seqgan_music.melody import melody_from_quarters
from seqgan_music.sources import Item, Limits, expand_sources, items_from_uploads, parse_item, read_zip
from seqgan_music.tokenizer import METERS, Tokenizer

CFG = TokenizerConfig(seq_len=16, hop=8)


def giant_delta_midi() -> bytes:
    mf = mido.MidiFile(ticks_per_beat=96)
    track = mido.MidiTrack([mido.Message("note_on", note=60, velocity=90, time=0),
                            mido.Message("note_off", note=60, velocity=0, time=2**27)])
    mf.tracks.append(track)
    buf = io.BytesIO()
    mf.save(file=buf)
    return buf.getvalue()


def drums_only() -> bytes:
    pm = pretty_midi.PrettyMIDI()
    d = pretty_midi.Instrument(0, is_drum=True)
    d.notes.extend(pretty_midi.Note(100, 36, i * 0.5, i * 0.5 + 0.1) for i in range(16))
    pm.instruments.append(d)
    return to_bytes(pm)


BAD = {
    "empty.mid": (b"", "empty file"),
    "corrupt.mid": (b"MThd\x00\x00\x00\x06garbage-bytes" * 3, "not a readable MIDI"),
    "drums.mid": (drums_only(), "drums only"),
    "silent.mid": (to_bytes(pretty_midi.PrettyMIDI()), "no notes"),
    "endless.mid": (giant_delta_midi(), "absurdly long"),
}


@pytest.fixture
def mixed_folder(tmp_path):
    for name, (data, _) in BAD.items():
        (tmp_path / name).write_bytes(data)
    for i in range(3):
        write(random_melody_pm(i), tmp_path / f"good_{i}.mid")
    (tmp_path / "sub").mkdir()
    write(song_pm(0), tmp_path / "sub" / "song.mid")
    return tmp_path


def test_bad_files_are_skipped_with_reasons_and_good_ones_kept(mixed_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("o") / "ds"
    report = prepare([str(mixed_folder)], str(out), CFG, workers=1)
    reasons = {os.path.basename(s["source"]): s["reason"] for s in report.skipped}
    for name, (_, why) in BAD.items():
        assert why in reasons[name], (name, reasons.get(name))
    assert report.pieces == 4  # three melodies and the song in the subfolder
    manifest = json.loads((out / "manifest.json").read_text())
    assert {os.path.basename(e["source"]) for e in manifest["entries"]} >= set(BAD) | {"song.mid"}


def test_nothing_usable_is_one_clear_error(tmp_path):
    (tmp_path / "empty.mid").write_bytes(b"")
    with pytest.raises(UserError, match="no usable melodies") as caught:
        prepare([str(tmp_path)], str(tmp_path / "out"), CFG, workers=1)
    assert "every input was skipped (empty.mid: " in str(caught.value)  # the reason, named
    assert not (tmp_path / "out").exists()


def test_missing_source_and_unknown_builtin(tmp_path):
    with pytest.raises(UserError, match="no such file or folder"):
        prepare([str(tmp_path / "nope")], str(tmp_path / "out"), CFG)
    with pytest.raises(UserError, match="unknown collection"):
        prepare(["builtin:bach"], str(tmp_path / "out"), CFG)


def test_zip_in_memory_with_bad_member_slip_name_and_bomb(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("tunes/a.mid", to_bytes(random_melody_pm(1)))
        zf.writestr("../../evil.mid", to_bytes(random_melody_pm(2)))
        zf.writestr("notes.txt", b"not midi")
        zf.writestr("broken.mid", b"garbage")
        zf.writestr("bomb.mid", b"\0" * 5_000_000)
    skipped = []
    items = read_zip("upload.zip", buf.getvalue(), skipped, Limits(max_file_bytes=1_000_000))
    assert [it.label for it in items] == ["upload.zip/tunes/a.mid", "upload.zip/../../evil.mid", "upload.zip/broken.mid"]
    assert any("too large" in s.reason for s in skipped)
    assert all(it.path is None and it.data for it in items)  # members are held in memory, names are labels only
    results = [parse_item(it, CFG, Limits())[0] for it in items]
    assert [r.reason is None for r in results] == [True, True, False]


def test_zip_total_size_cap(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(5):
            zf.writestr(f"{i}.mid", b"\0" * 400_000)
    skipped = []
    items = read_zip("z.zip", buf.getvalue(), skipped, Limits(max_zip_bytes=1_000_000))
    assert len(items) == 2 and "size limit" in skipped[0].reason and len(skipped) == 3
    not_zip = []
    assert read_zip("fake.zip", b"PK nonsense", not_zip, Limits()) == [] and "zip" in not_zip[0].reason


def test_file_count_limit(midi_folder):
    with pytest.raises(UserError, match="more than 3 files"):
        expand_sources([str(midi_folder)], Limits(max_files=3))


def test_cache_reuse_gives_identical_dataset(midi_folder, tmp_path):
    cache = str(tmp_path / "cache")
    a = prepare([str(midi_folder)], str(tmp_path / "a"), CFG, cache_dir=cache, workers=2)
    b = prepare([str(midi_folder)], str(tmp_path / "b"), CFG, cache_dir=cache, workers=2)
    assert a.parsed_files == 12 and a.cached_files == 0
    assert b.parsed_files == 0 and b.cached_files == 12
    da, db = load_dataset(str(tmp_path / "a")), load_dataset(str(tmp_path / "b"))
    assert np.array_equal(da.train, db.train) and np.array_equal(da.valid, db.valid)


def test_split_is_by_piece_and_seeded(tiny_dataset):
    ds = load_dataset(tiny_dataset)
    manifest = json.loads(Path(tiny_dataset, "manifest.json").read_text())
    used = [e for e in manifest["entries"] if "split" in e]
    assert sum(e["windows"] for e in used if e["split"] == "valid") == len(ds.valid)
    assert sum(e["windows"] for e in used if e["split"] == "train") == len(ds.train)
    train_rows = {tuple(r) for r in ds.train.tolist()}
    valid_pieces = [p for p, v in zip(ds.pieces, ds.piece_is_valid) if v]
    for piece in valid_pieces:  # no window of a validation tune is in training
        for w in windows_of(ds.tokenizer, piece)[0]:
            assert tuple(w.tolist()) not in train_rows
    assert np.array_equal(split_pieces(20, 0.2, 3), split_pieces(20, 0.2, 3))
    assert split_pieces(20, 0.2, 3).sum() == 4 and not np.array_equal(split_pieces(20, 0.2, 3), split_pieces(20, 0.2, 4))


def test_windows_and_short_pieces():
    tok = Tokenizer(TokenizerConfig(seq_len=16, hop=8))
    assert windows_of(tok, np.arange(40) % 30)[0].shape == (4, 16)
    assert windows_of(tok, np.arange(10))[0].shape == (0, 16)


def test_bar_windows_start_at_bar_lines():
    """Bars encoding: windows start on BAR tokens, about hop tokens (whole bars) apart."""
    tok = Tokenizer(TokenizerConfig(encoding="bars", seq_len=34, hop=17))
    piece = tok.encode(melody_from_quarters(np.full(24, 60), np.arange(24.0), np.arange(24.0) + 1, meter="3/4"))
    wins, place = windows_of(tok, piece)
    bar = tok.bar_tokens[METERS.index("3/4")]
    assert len(wins) == 6 and (wins[:, 0] == bar).all() and (wins[:, 13] == bar).all()
    assert place.tolist() == [[b, 8] for b in range(6)]  # first bar's number, bar lines in the tune


def test_tune_end_windows_reach_the_end_and_know_their_bar_numbers():
    """With tune ends: END follows the last bar; one more window reaches it (END-padded), each
    window knows the number of its first bar and its tune's length in bars, and ends=False leaves
    the END window out."""
    tok = Tokenizer(TokenizerConfig(encoding="bars", seq_len=34, hop=17, tune_end=True))
    piece = tok.encode(melody_from_quarters(np.full(24, 60), np.arange(24.0), np.arange(24.0) + 1, meter="3/4"))
    assert len(piece) == 8 * 13 + 1 and piece[-1] == tok.end_token and tok.bars_in(piece) == 8
    wins, place = windows_of(tok, piece)
    bar = tok.bar_tokens[METERS.index("3/4")]
    assert place.tolist() == [[b, 8] for b in range(7)] and (wins[:, 0] == bar).all()
    assert (wins[-1, 26:] == tok.end_token).all() and (wins[:-1] != tok.end_token).all()
    assert tok.decode_notes(wins[-1]) == tok.decode_notes(piece[78:])  # the END window's notes: the last two bars
    assert len(windows_of(tok, piece, ends=False)[0]) == 6
    assert tok.decode_notes(np.append(piece, [tok.bar_tokens[0], 5])) == tok.decode_notes(piece)  # nothing after END


def test_datasets_store_each_windows_place_and_older_ones_load_without_lengths(midi_folder, tmp_path):
    """Each window's place (first bar's number, its tune's bar lines) survives prepare and load,
    transposed copies included; a dataset prepared before the lengths were stored loads with
    them unknown (0), and a generator with the bars-left feature refuses it in one line."""
    import torch

    from seqgan_music.config import make_run_config
    from seqgan_music.trainer import Trainer

    cfg = TokenizerConfig(encoding="bars", seq_len=34, hop=17, tune_end=True, transpose=1)
    prepare([str(midi_folder)], str(tmp_path / "ds"), cfg, workers=1, cache_dir=None)
    ds = load_dataset(str(tmp_path / "ds"))
    expected = [windows_of(ds.tokenizer, p)[1] for p, valid in zip(ds.pieces, ds.piece_is_valid) if valid]
    assert ds.valid_place.tolist() == np.concatenate(expected).tolist()
    bars = {ds.tokenizer.bars_in(p) for p, valid in zip(ds.pieces, ds.piece_is_valid) if not valid}
    assert ds.train_place.shape == (len(ds.train), 2) and set(ds.train_place[:, 1].tolist()) == bars
    assert bool((ds.train_place[:, 0] < ds.train_place[:, 1]).all())
    path = tmp_path / "ds" / "windows.npz"
    with np.load(path) as z:
        older = {k: z[k] for k in z.files if not k.endswith("_tune_bars")}
    np.savez(path, **older)
    old = load_dataset(str(tmp_path / "ds"))
    assert torch.equal(old.train_place[:, 0], ds.train_place[:, 0]) and not old.train_place[:, 1].any()
    tok = old.tokenizer
    run = make_run_config("tiny", tok.vocab_size, old.seq_len, tok.start_token, tok.bar_tokens)
    run.generator.bars_left = True
    with pytest.raises(UserError, match="prepare"):
        Trainer(run, old.train, old.valid, str(tmp_path / "run"), torch.device("cpu"), tok,
                places=(old.train_place, old.valid_place))


def test_transposition_augments_train_only(midi_folder, tmp_path):
    plain = prepare([str(midi_folder)], str(tmp_path / "p"), CFG, workers=1)
    aug = prepare([str(midi_folder)], str(tmp_path / "t"), TokenizerConfig(seq_len=16, hop=8, transpose=2), workers=1)
    assert aug.train_windows > 3 * plain.train_windows and aug.valid_windows == plain.valid_windows


def test_bars_datasets_move_tunes_to_c_and_remember_their_keys(tmp_path):
    """prepare --encoding bars moves each tune to tonic C in its own mode, the shorter way round
    (D major down 2, E minor down 4, intervals kept); the manifest names each tune's key before and
    the tokenizer counts those keys, which generation moves tunes back to."""
    from seqgan_music.cli import main
    from seqgan_music.metrics import estimate_key

    tunes = {"d.mid": [62, 64, 66, 67, 69, 71, 73, 74, 74, 69, 66, 62] * 3,  # D major
             "e.mid": [64, 67, 71, 64, 66, 67, 69, 71, 72, 71, 67, 64] * 3}  # E minor
    (tmp_path / "in").mkdir()
    for name, pitches in tunes.items():
        write(melody_pm(pitches), tmp_path / "in" / name)
    out = tmp_path / "ds"
    assert main(["prepare", str(tmp_path / "in"), "--out", str(out), "--encoding", "bars", "--seq-len", "34",
                 "--no-cache", "--workers", "1"]) == 0
    ds = load_dataset(str(out))
    entries = json.loads((out / "manifest.json").read_text())["entries"]
    assert {e["source"].split("/")[-1]: e["key"] for e in entries} == {"d.mid": "D major", "e.mid": "E minor"}
    for e, piece in zip(entries, ds.pieces):  # manifest entries and pieces in the same order
        notes = ds.tokenizer.decode_notes(piece)
        source = tunes[e["source"].split("/")[-1]]
        assert [p for p, _, _ in notes] == [p - {"D major": 2, "E minor": 4}[e["key"]] for p in source]
        assert estimate_key(notes) == (0, e["key"] == "D major")
    home = ds.tokenizer.config.home_keys
    assert ds.tokenizer.config.key_to_c and home[2] == 1 and home[12 + 4] == 1 and sum(home) == 2


def test_out_dir_that_is_not_a_dataset_is_refused(midi_folder, tmp_path):
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious" / "thesis.txt").write_text("keep me")
    with pytest.raises(UserError, match="not a dataset folder"):
        prepare([str(midi_folder)], str(tmp_path / "precious"), CFG)
    assert (tmp_path / "precious" / "thesis.txt").read_text() == "keep me"


def test_builtin_collection_from_music21(tmp_path, monkeypatch, corpus_cache):
    """airds in the app's encoding (bars, 4-bar windows): its tunes' metres reach the windows."""
    monkeypatch.setenv("SEQGAN_MUSIC_CACHE", corpus_cache)
    tok = Tokenizer(TokenizerConfig(encoding="bars"))
    cfg = TokenizerConfig(encoding="bars", seq_len=tok.steps_for(4), hop=tok.steps_for(2))
    report = prepare(["builtin:airds"], str(tmp_path / "airds"), cfg, workers=2)
    assert report.pieces > 1000 and report.train_windows > 5000
    ds = load_dataset(str(tmp_path / "airds"))
    assert ds.train.max() < ds.tokenizer.vocab_size
    meters = {ds.tokenizer.meter_of(w) for w in ds.train[:, :1].numpy()}
    assert {"4/4", "6/8", "3/4", "2/4"} <= meters


def test_note_and_duration_limits_skip_with_reasons():
    many = to_bytes(random_melody_pm(0, notes=300))
    r = parse_item(Item("many.mid", "midi", many), CFG, Limits(max_notes=100))[0]
    assert r.tokens is None and "too many notes" in r.reason
    long = parse_item(Item("long.mid", "midi", many), CFG, Limits(max_seconds=60))[0]  # 90 s at 120 qpm
    assert long.tokens is None and "longer than 60 s" in long.reason


def test_abc_tune_that_fails_is_skipped_and_the_rest_kept():
    abc = (b"X:1\nT:good\nM:4/4\nL:1/8\nK:C\nCDEF GABc|cBAG FEDC|\n\n"
           b"X:2\nT:empty\nM:4/4\nL:1/8\nK:C\n\n"
           b"X:3\nT:second\nM:3/4\nL:1/4\nK:G\nGAB|d2B|c3|\n")
    results = parse_item(Item("tunes.abc", "abc", abc), TokenizerConfig(seq_len=8), Limits())
    by_label = {r.label: r for r in results}
    assert by_label["tunes.abc#1"].tokens is not None and by_label["tunes.abc#3"].tokens is not None
    assert by_label["tunes.abc#2"].reason == "no notes"


def test_zip_budget_counts_every_decompressed_byte_and_reports_every_member(monkeypatch):
    """Oversize members are judged by their declared size before any decompression, what is
    decompressed counts against the archive's budget whether kept or not, and every MIDI member
    appears in the result: read, or skipped with its reason."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(20):
            zf.writestr(f"huge_{i}.mid", b"\0" * 3_000_000)
        for i in range(5):
            zf.writestr(f"{i}.mid", b"\0" * 400_000)
    decompressed = []
    real_read = zipfile.ZipExtFile.read
    monkeypatch.setattr(zipfile.ZipExtFile, "read", lambda self, n=-1: decompressed.append(len(out := real_read(self, n))) or out)
    skipped = []
    items = read_zip("z.zip", buf.getvalue(), skipped, Limits(max_file_bytes=1_000_000, max_zip_bytes=1_000_000))
    assert sum(decompressed) <= 1_000_000 + 1
    assert len(items) + len(skipped) == 25 and len(items) == 2
    assert sum("too large" in s.reason for s in skipped) == 20
    assert [s.reason.startswith("not read") for s in skipped[-2:]] == [True, True]


def test_special_files_in_a_source_folder_are_skipped(tmp_path):
    """A dangling link, a link loop, a FIFO and a link to /dev/zero named .mid end as skip reasons
    (regular files only), next to a good file; nothing hangs or reads without bound."""
    import subprocess
    import sys

    folder = tmp_path / "songs"
    folder.mkdir()
    (folder / "good.mid").write_bytes(to_bytes(random_melody_pm(1)))
    os.symlink(folder / "missing.mid", folder / "dangling.mid")
    os.symlink(folder / "loop.mid", folder / "loop.mid")
    os.mkfifo(folder / "fifo.mid")
    os.symlink("/dev/zero", folder / "zero.mid")
    os.symlink(folder, folder / "self")  # a folder loop: not followed
    out = subprocess.run([sys.executable, "-m", "seqgan_music", "prepare", str(folder), "--out", str(tmp_path / "data"),
                          "--seq-len", "16", "--no-cache", "--workers", "1"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr and "1 pieces" in out.stdout
    reasons = dict(line.removeprefix("warning: skipped ").split(": ", 1) for line in out.stderr.splitlines()
                   if line.startswith("warning: skipped"))
    assert "broken or looping" in reasons[str(folder / "dangling.mid")]
    assert "broken or looping" in reasons[str(folder / "loop.mid")]
    assert "not a regular file" in reasons[str(folder / "fifo.mid")]
    assert "not a regular file" in reasons[str(folder / "zero.mid")]


def test_file_names_reach_the_terminal_escaped(tmp_path):
    """A file name carrying a terminal escape (set the window title) is printed escaped."""
    from seqgan_music.cli import main

    folder = tmp_path / "songs"
    folder.mkdir()
    (folder / "good.mid").write_bytes(to_bytes(random_melody_pm(1)))
    (folder / "evil\x1b]0;owned\x07.mid").write_bytes(b"not midi")
    import contextlib

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert main(["prepare", str(folder), "--out", str(tmp_path / "data"), "--seq-len", "16", "--no-cache"]) == 0
    text = err.getvalue()
    assert "\x1b" not in text and "\x07" not in text and "evil\\x1b]0;owned\\x07.mid" in text


ABC_TUNES = """X:1
T:The First
M:6/8
L:1/8
K:D
DFA dfa|agf edc|d3 A3|d6|]

X:2
T:The Second
M:4/4
L:1/8
K:G
GABc d2B2|c2A2 B2G2|]
"""


def _musicxml_bytes(compressed: bool) -> bytes:
    """A 4-note MusicXML score from music21, plain or as .mxl (zip with META-INF/container.xml)."""
    from music21 import note, stream
    from music21.musicxml.m21ToXml import GeneralObjectExporter

    part = stream.Part([note.Note(p, quarterLength=1.0) for p in ("C4", "E4", "G4", "C5")])
    xml = GeneralObjectExporter(stream.Score([part])).parse()
    if not compressed:
        return xml
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("META-INF/container.xml", '<container><rootfiles><rootfile full-path="score.xml"/></rootfiles></container>')
        zf.writestr("score.xml", xml)
    return buf.getvalue()


def test_abc_and_musicxml_files_are_sources(tmp_path):
    """.abc (every tune of the file), .musicxml and .mxl are read in folders, zips and uploads;
    notes keep their pitches and durations."""
    folder = tmp_path / "folk"
    folder.mkdir()
    (folder / "tunes.abc").write_text(ABC_TUNES)
    (folder / "score.musicxml").write_bytes(_musicxml_bytes(False))
    (folder / "score.mxl").write_bytes(_musicxml_bytes(True))
    (folder / "broken.musicxml").write_text("<score-partwise><part>")
    items, skipped = expand_sources([str(folder)], Limits())
    results = {r.label.rsplit("/", 1)[-1]: r for it in items for r in parse_item(it, CFG, Limits())}
    assert set(results) == {"tunes.abc#1", "tunes.abc#2", "score.musicxml", "score.mxl", "broken.musicxml"}
    assert results["tunes.abc#1"].notes == 15 and results["tunes.abc#2"].notes == 10
    assert "MusicXML" in results["broken.musicxml"].reason
    tok = Tokenizer(CFG)
    for name in ("score.musicxml", "score.mxl"):
        notes = tok.decode_notes(results[name].tokens)  # (pitch, on step, off step), 4 steps per quarter
        assert [(p, on, off - on) for p, on, off in notes] == [(60, 0, 4), (64, 4, 4), (67, 8, 4), (72, 12, 4)]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("folk/tunes.abc", ABC_TUNES)
    zipped = read_zip("folk.zip", buf.getvalue(), [], Limits())
    uploaded, _ = items_from_uploads([("score.mxl", _musicxml_bytes(True))], Limits())
    assert [it.kind for it in zipped + uploaded] == ["abc", "musicxml"]
    assert len(parse_item(zipped[0], CFG, Limits())) == 2 and parse_item(uploaded[0], CFG, Limits())[0].reason is None


def test_key_signatures_name_the_key_a_tune_is_moved_to_c_from(tmp_path):
    """A source's key signature names the key a tune is moved from, where the notes alone suggest
    another: ABC's K:Ador (A minor, though its notes fit G major best), MusicXML's <mode>dorian
    </mode>, and a MIDI key signature, whose mode is not trusted (E minor tunes marked G major, as
    in Nottingham's files): of its major and relative minor, the key the notes fit. The moved tune
    ends on C, and the manifest says where each key came from."""
    from music21 import converter, key, stream
    from music21.musicxml.m21ToXml import GeneralObjectExporter

    from seqgan_music.metrics import KEYS, estimate_key

    cfg = TokenizerConfig(encoding="bars", seq_len=34, key_to_c=True)
    folder = tmp_path / "in"
    folder.mkdir()
    dorian = "A2GB dBGB|dBGB d2BG|A2GB dBGB|gedB A4|"
    (folder / "dorian.abc").write_text(f"X:1\nT:Dorian\nM:4/4\nL:1/8\nK:Ador\n{dorian * 2}]\n")
    part = converter.parse((folder / "dorian.abc").read_text(), format="abc").parts[0]
    assert part.recurse().getElementsByClass(key.Key)[0].mode == "dorian"
    (folder / "dorian.musicxml").write_bytes(GeneralObjectExporter(stream.Score([part])).parse())
    minor = melody_pm([64, 67, 71, 64, 66, 67, 69, 71, 72, 71, 67, 64] * 3)
    minor.key_signature_changes.append(pretty_midi.KeySignature(7, 0.0))  # "G major"
    write(minor, folder / "e-minor-marked-g.mid")
    tokenizer = Tokenizer(cfg)
    for name in ("dorian.abc", "dorian.musicxml"):
        (result,) = parse_item(Item(name, "abc" if name.endswith("abc") else "musicxml", (folder / name).read_bytes()), cfg, Limits())
        assert KEYS[result.key] == "A minor" and estimate_key(tokenizer.decode_notes(result.tokens)) == (7, True)
    for field in ("none", "HP", ""):  # no key named: the notes will tell (music21 alone would say C major)
        (result,) = parse_item(Item("t.abc", "abc", f"X:1\nL:1/8\nK:{field}\n{dorian}\n".encode()), cfg, Limits())
        assert result.tokens is not None and result.key is None
    report = prepare([str(folder)], str(tmp_path / "ds"), cfg, cache_dir=None, workers=1)
    assert report.pieces == 3
    entries = json.loads((tmp_path / "ds" / "manifest.json").read_text())["entries"]
    assert {e["source"].split("/")[-1].split("#")[0]: (e["key"], e["key_from"]) for e in entries} == {
        "dorian.abc": ("A minor", "key signature"), "dorian.musicxml": ("A minor", "key signature"),
        "e-minor-marked-g.mid": ("E minor", "key signature")}
    for piece in load_dataset(str(tmp_path / "ds")).pieces:
        assert tokenizer.decode_notes(piece)[-1][0] % 12 == 0  # every tune ends on its tonic, now C


def test_repeat_marks_name_the_form_and_windows_mark_only_their_own_bars():
    """With repeat marks a bar line says which bar back its steps repeat (the longest distance
    that matches); the notes are those of the unmarked tokens, and a window cut from the tune is
    marked from its own bars: a repeat of a bar before the window is a new bar there."""
    strain = [60, 62, 64, 65, 67, 69, 71, 72, 74, 72, 71, 69, 67, 65, 64, 62]  # four different bars of 4/4
    pitch = strain + strain[:12] + [60, 60, 60, 60]  # bars 5-7 repeat bars 1-3, bar 8 is new
    quarters = np.arange(32.0)
    plain = Tokenizer(TokenizerConfig(encoding="bars", seq_len=85, hop=17))
    marked = Tokenizer(TokenizerConfig(encoding="bars", seq_len=85, hop=17, repeat_marks=[1, 2, 4]))
    melody = melody_from_quarters(pitch, quarters, quarters + 1)
    tokens = marked.encode(melody)
    lines = tokens[::17]
    assert [marked.token_names()[t] for t in lines] == ["BAR_4/4"] * 4 + ["BAR_4/4_REPEAT_4"] * 3 + ["BAR_4/4"]
    assert marked.decode_notes(tokens) == plain.decode_notes(plain.encode(melody))
    assert marked.meter_of(tokens[17 * 5:]) == "4/4" and marked.bars_in(tokens) == 8
    wins, place = windows_of(marked, tokens)  # five bars each, from bars 1..4
    marks = [[marked.token_names()[t].removeprefix("BAR_4/4") for t in w[::17]] for w in wins]
    assert place[:, 0].tolist() == [0, 1, 2, 3]
    assert marks == [["", "", "", "", "_REPEAT_4"]] * 3 + [[""] * 5]  # bars 5-7's models lie before the last
    assert marked.mark_repeats(np.where(np.isin(tokens, marked.bar_tokens), lines[0], tokens)).tolist() == tokens.tolist()
    cut = marked.mark_repeats(tokens[: 17 * 4 + 5])  # bar 5 cut after 4 steps: its first steps repeat bar 1's
    assert marked.token_names()[cut[68]] == "BAR_4/4_REPEAT_4"
    assert marked.token_names()[marked.mark_repeats(tokens[: 17 * 4 + 1])[68]] == "BAR_4/4"  # no steps: new


def test_repeat_marks_are_checked():
    for bad in ([0], [4, 2], [2, 2], [17]):
        with pytest.raises(UserError, match="repeat_marks"):
            TokenizerConfig(encoding="bars", repeat_marks=bad).validate()
    with pytest.raises(UserError, match="repeat_marks"):
        TokenizerConfig(encoding="melody", repeat_marks=[1]).validate()


@pytest.mark.parametrize("damage", ["truncated windows.npz", "truncated pieces.npz", "offsets past the end",
                                    "a token outside the vocabulary", "flags of another length"])
def test_a_damaged_dataset_is_named_not_trained_on(damage, tiny_dataset, tmp_path):
    import shutil

    import numpy as np

    from seqgan_music.dataset import load_dataset

    data = tmp_path / "data"
    shutil.copytree(tiny_dataset, data)
    if damage.startswith("truncated"):
        name = damage.split()[1]
        (data / name).write_bytes((data / name).read_bytes()[:500])
    else:
        with np.load(data / "pieces.npz") as z:
            arrays = dict(z)
        if damage == "offsets past the end":
            arrays["offsets"][-1] += 5
        elif damage == "a token outside the vocabulary":
            arrays["tokens"][3] = 10_000
        else:
            arrays["valid"] = arrays["valid"][:-1]
        np.savez(data / "pieces.npz", **arrays)
    with pytest.raises(UserError, match="damaged dataset") as caught:
        load_dataset(str(data))
    assert "npz" in str(caught.value)


def test_a_malformed_abc_tune_costs_only_itself(tmp_path):
    """A tune music21 cannot tokenize (an unclosed chord bracket) is skipped with its number; the
    file's other tunes, which share its header, are read."""
    import json

    tune = "X:{n}\nT:tune {n}\nK:G\n{body}\n\n"
    good = "GABc dedB|dedB dedB|c2ec B2dB|c2A2 A4|GABc dedB|dedB dedB|c2ec B2dB|c2A2 A4|"
    text = "%abc\nL:1/8\nM:4/4\n\n" + "".join(tune.format(n=n, body=good if n != 2 else "GABc [dedB|" + good)
                                              for n in (1, 2, 3))
    (tmp_path / "book.abc").write_text(text)
    from seqgan_music.config import TokenizerConfig

    report = prepare([str(tmp_path / "book.abc")], str(tmp_path / "out"), TokenizerConfig(seq_len=16, hop=8),
                     valid_fraction=0.0, cache_dir=None, workers=1)
    assert report.pieces == 2
    skipped = {os.path.basename(e["source"]): e["reason"] for e in report.skipped}
    assert list(skipped) == ["book.abc#2"] and "not understood" in skipped["book.abc#2"]
    entries = json.loads((tmp_path / "out" / "manifest.json").read_text())["entries"]
    assert sorted(os.path.basename(e["source"]) for e in entries if "split" in e) == ["book.abc#1", "book.abc#3"]
