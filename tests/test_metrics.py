from __future__ import annotations

import math

import numpy as np
import pytest

from seqgan_music.metrics import (
    bleu,
    histogram_overlap,
    longest_repeat,
    music_stats,
    pitch_class_entropy,
    pitch_mse,
    scale_consistency,
    self_bleu,
)


def test_bleu_identical_is_one_and_disjoint_is_zero():
    refs = np.array([[1, 2, 3, 4, 5, 6]])
    assert bleu(refs, refs)[0] == pytest.approx(1.0)
    assert bleu(np.array([[7, 8, 9, 7, 8, 9]]), refs)[0] == 0.0


def test_bleu_hand_computed():
    # hyp 1 2 3 4 1 2 against refs [1 2 3 4 9 9] and [9 1 2 9 9 9]:
    # unigrams: 1:2 (max ref count 1), 2:2 (1), 3:1, 4:1 -> clipped 4/6
    # bigrams: 12 x2 (max 1 per ref), 23, 34, 41 (0) -> 3/5
    # trigrams: 123, 234, 341 (0), 412 (0) -> 2/4 ; 4-grams: 1234, 2341, 3412 -> 1/3
    hyp = np.array([[1, 2, 3, 4, 1, 2]])
    refs = np.array([[1, 2, 3, 4, 9, 9], [9, 1, 2, 9, 9, 9]])
    expected = math.exp((math.log(4 / 6) + math.log(3 / 5) + math.log(2 / 4) + math.log(1 / 3)) / 4)
    assert bleu(hyp, refs)[0] == pytest.approx(expected)


def test_bleu_is_fast_on_thousands_of_references():
    import time

    rng = np.random.default_rng(0)
    refs = rng.integers(0, 40, size=(10000, 32))
    hyps = rng.integers(0, 40, size=(1000, 32))
    start = time.perf_counter()
    scores = bleu(hyps, refs)
    assert scores.shape == (1000,) and time.perf_counter() - start < 30  # seconds, not minutes


def test_self_bleu_of_copies_is_one():
    x = np.tile(np.arange(10), (20, 1))
    assert self_bleu(x, num=5) == pytest.approx(1.0)


def test_entropy_of_known_distributions():
    assert pitch_class_entropy(np.array([60, 72, 84])) == 0.0
    assert pitch_class_entropy(np.arange(60, 72)) == pytest.approx(math.log2(12))
    assert pitch_class_entropy(np.array([60, 62])) == pytest.approx(1.0)


def test_scale_consistency_and_repeats():
    assert scale_consistency(np.array([60, 62, 64, 65, 67, 69, 71])) == 1.0
    assert scale_consistency(np.arange(60, 72)) == pytest.approx(7 / 12)
    assert longest_repeat(np.array([1, 2, 3, 9, 1, 2, 3, 8])) == 3
    assert longest_repeat(np.array([1, 2, 3])) == 0


def test_overlap_of_identical_distributions_is_one():
    rng = np.random.default_rng(1)
    a = rng.normal(size=1000)
    assert histogram_overlap(a, a) == pytest.approx(1.0)
    assert histogram_overlap(a, a + 100) == pytest.approx(0.0)


def test_pitch_mse_nearest_reference():
    refs = np.array([[60, 60, 62, 62], [70, 70, 70, 70]])
    assert pitch_mse(np.array([[60, -1, 62, -1]]), refs) == 0.0  # silence carries the previous pitch
    assert pitch_mse(np.array([[61, 61, 63, 63]]), refs) == pytest.approx(1.0)


def test_music_stats():
    stats = music_stats([(60, 0, 2), (64, 2, 3), (67, 4, 8)], np.array([14, 1, 18, 0, 21, 1, 1, 1]), 8)
    assert stats["pitch_range"] == 7 and stats["pitches_used"] == 3
    assert stats["mean_abs_interval"] == pytest.approx(3.5) and stats["rest_ratio"] == pytest.approx(1 / 8)
    assert stats["note_density"] == pytest.approx(3 / 8)


def test_key_estimate_and_structure_stats_by_hand():
    """C major scale up and down in quarter notes (4 steps each, bars of 16 steps): key C major,
    ends on the tonic, onsets on every beat, 3 of 9 on a downbeat (steps 0, 16, 32), all in key.
    The A minor line shifted by an eighth note: no onset on a beat."""
    from seqgan_music.metrics import estimate_key, structure_stats

    up_down = [(p, 4 * i, 4 * i + 4) for i, p in enumerate([60, 62, 64, 65, 67, 65, 64, 62, 60])]
    assert estimate_key(up_down) == (0, True)
    assert structure_stats(up_down, 16, 4) == {"tonic_ending": 1.0, "downbeat_share": 3 / 9, "on_beat_share": 1.0,
                                               "key_agreement": 1.0}
    minor = [(p, 4 * i + 2, 4 * i + 4) for i, p in enumerate([57, 59, 60, 62, 64, 62, 60, 59, 57])]
    assert estimate_key(minor) == (9, False)
    stats = structure_stats(minor, 16, 4)
    assert stats["on_beat_share"] == 0.0 and stats["downbeat_share"] == 0.0 and stats["tonic_ending"] == 1.0
    ending_off = up_down[:-1] + [(66, 32, 36)]  # without the final C the white notes read as D minor; F# is outside
    assert estimate_key(ending_off) == (2, False)
    stats = structure_stats(ending_off, 16, 4)
    assert stats["tonic_ending"] == 0.0 and stats["key_agreement"] == (1.0 + 1.0 + 0.0) / 3


def test_off_key_notes_counts_the_notes_outside_the_estimated_keys_scale():
    """C major up and down: none outside. A short F# in it: one (the key stays C major). The A
    minor line with its raised leading note G#: none (the minor scale keeps it). No notes: 0."""
    from seqgan_music.metrics import estimate_key, off_key_notes

    up_down = [(p, 4 * i, 4 * i + 4) for i, p in enumerate([60, 62, 64, 65, 67, 65, 64, 62, 60])]
    assert off_key_notes(up_down) == 0
    with_f_sharp = up_down[:4] + [(66, 16, 17)] + up_down[4:]
    assert estimate_key(with_f_sharp) == (0, True) and off_key_notes(with_f_sharp) == 1
    minor = [(p, 4 * i, 4 * i + 4) for i, p in enumerate([57, 59, 60, 62, 64, 62, 60, 59, 56, 57])]
    assert estimate_key(minor) == (9, False) and off_key_notes(minor) == 0
    assert off_key_notes([]) == 0
