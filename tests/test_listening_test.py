"""The listening test: melodies through MIDI and back, cut alike on both sides, and a critic
calibrated on real tunes (real against real near 0.5, known damage clearly above)."""

from __future__ import annotations

import numpy as np
import pytest

from seqgan_music.config import TokenizerConfig
from seqgan_music.listening_test import (
    HOLD,
    LOW,
    SYMBOLS,
    ListeningTest,
    copied_bars,
    meter_counts,
    midi_bytes,
    opening_of,
    openings_of,
    reading,
    shuffled_bars,
)
from seqgan_music.melody import melody_from_quarters
from seqgan_music.tokenizer import Tokenizer


def bars_tokenizer() -> Tokenizer:
    return Tokenizer(TokenizerConfig(encoding="bars", seq_len=68, hop=34, tune_end=True))


def test_opening_reads_a_melody_back_from_midi_moved_to_c():
    """A G-major scale in 3/4, quarter notes: read back from the MIDI file generate writes, it is
    in C, one onset then three holds per quarter, bar lines every 12 steps, the tune's start marked."""
    tok = bars_tokenizer()
    pitches = [67, 69, 71, 72, 74, 76, 78, 79, 74, 71, 67, 67]
    melody = melody_from_quarters(pitches, np.arange(12.0), np.arange(1.0, 13.0), meter="3/4")
    opening = opening_of(midi_bytes(tok, tok.encode(melody)), bars=4)
    assert opening.bar_steps == 12 and len(opening.symbols) == 48
    assert [p for p, _, _ in opening.notes] == [p + 5 for p in pitches]  # G -> C, the nearer way (up a fourth)
    plain = opening.symbols % SYMBOLS
    assert plain[0] == 72 - LOW and list(plain[1:4]) == [HOLD] * 3
    marks = opening.symbols // SYMBOLS
    assert marks[0] == 2 and list(np.flatnonzero(marks == 1)) == [12, 24, 36]
    assert opening.windows().shape == (0, 64)  # four bars of 3/4 hold no four-bar-of-4/4 window


def test_damage_keeps_the_notes_and_moves_the_bars():
    tok = bars_tokenizer()
    rng = np.random.default_rng(0)
    pitches = list(rng.integers(60, 72, 32))
    melody = melody_from_quarters(pitches, np.arange(32.0), np.arange(1.0, 33.0))
    opening = opening_of(midi_bytes(tok, tok.encode(melody)))
    shuffled = shuffled_bars(opening, rng)
    assert sorted(shuffled.notes, key=lambda n: n[0]) != opening.notes
    assert sorted(p for p, _, _ in shuffled.notes) == sorted(p for p, _, _ in opening.notes)
    assert (shuffled.symbols // SYMBOLS == opening.symbols // SYMBOLS).all()  # bar and tune starts stay put
    copied = copied_bars(opening).symbols.reshape(8, 16) % SYMBOLS
    assert all((copied[k] == copied[0]).all() for k in (1, 3, 5, 7)) and (copied[2] == opening.symbols[32:48] % SYMBOLS).all()


def test_meter_counts_follow_the_tunes():
    tok = bars_tokenizer()
    tunes = [np.array([tok.encoding.bar_token(m), 1]) for m in ["6/8"] * 3 + ["4/4"]]
    assert meter_counts(tok, tunes, 10) == {"6/8": 8, "4/4": 2}  # 7.5 and 2.5: the larger remainder first
    assert meter_counts(Tokenizer(TokenizerConfig()), tunes, 10) == {None: 10}


def test_reading_calls_a_difference_only_beyond_the_spread():
    a = {"model": "best", "critic": 0.60, "critic_sd": 0.01}
    b = {"model": "MLE", "critic": 0.65, "critic_sd": 0.02}
    assert reading(a, b).startswith("best is closer to the held-out tunes than MLE (-0.050")
    assert reading(b, a).startswith("MLE is further from")
    assert reading(a, b, seed_sd=0.06).startswith("best is no different from MLE")


@pytest.fixture(scope="module")
def airds(tmp_path_factory, corpus_cache):
    """airds (music21's corpus) in the app's encoding: held-out tunes' openings and 200 training tunes'."""
    import os

    from seqgan_music.dataset import load_dataset, prepare

    os.environ["SEQGAN_MUSIC_CACHE"] = corpus_cache
    out = tmp_path_factory.mktemp("airds") / "ds"
    prepare(["builtin:airds"], str(out), TokenizerConfig(encoding="bars", seq_len=68, hop=34, tune_end=True, key_to_c=True),
            workers=2)
    ds = load_dataset(str(out))
    held_out = openings_of(ds.tokenizer, [p for p, v in zip(ds.pieces, ds.piece_is_valid) if v])
    train = [p for p, v in zip(ds.pieces, ds.piece_is_valid) if not v]
    pick = np.random.default_rng(0).permutation(len(train))[:200]
    return held_out, openings_of(ds.tokenizer, [train[i] for i in pick])


def test_calibrated_on_real_tunes(airds):
    """Real against real reads near 0.5 (two critics); shuffled bars and copied bars read at least
    0.05 above it with one critic each (they read 0.15-0.35 above: one critic's spread is ~0.03)."""
    held_out, floor = airds
    real = ListeningTest(held_out, critic_runs=2, seed=0).judge("real", floor)
    assert abs(real["critic"] - 0.5) <= 0.05, real
    one_critic = ListeningTest(held_out, critic_runs=1, seed=0)
    rng = np.random.default_rng(1)
    for damaged in ([shuffled_bars(o, rng) for o in floor], [copied_bars(o) for o in floor]):
        assert one_critic.judge("damaged", damaged)["critic"] >= real["critic"] + 0.05
