"""Evaluation metrics; pure functions over (N, L) integer token arrays.

BLEU uses n-gram count tables (each n-gram packed into one int64), so 1,000 sequences against
10,000 references take well under a second instead of minutes of pairwise loops.
"""

from __future__ import annotations

import numpy as np

DIATONIC = np.array([0, 2, 4, 5, 7, 9, 11])  # major scale; natural minors are its modes
_SCALES = (DIATONIC[None, :] + np.arange(12)[:, None]) % 12  # (12, 7): the pitch classes of each root's scale

STAT_NAMES = ("pitch_range", "pitches_used", "pitch_class_entropy", "scale_consistency", "mean_abs_interval",
              "note_density", "rest_ratio", "longest_repeat")


def _ngram_keys(seqs: np.ndarray, n: int, vocab: int) -> np.ndarray:
    """(N, L) ids -> (N, L-n+1) int64 keys, one per n-gram (base-``vocab`` digits)."""
    seqs = seqs.astype(np.int64)
    keys = np.zeros((seqs.shape[0], seqs.shape[1] - n + 1), dtype=np.int64)
    for k in range(n):
        keys = keys * vocab + seqs[:, k : seqs.shape[1] - n + 1 + k]
    return keys


def _counts_per_row(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (row, key) pairs of (N, M) keys with their counts: rows, keys, counts (1-D)."""
    rows = np.repeat(np.arange(keys.shape[0]), keys.shape[1])
    pairs = np.stack([rows, keys.ravel()], axis=1)
    uniq, counts = np.unique(pairs, axis=0, return_counts=True)
    return uniq[:, 0], uniq[:, 1], counts


def bleu(hyps: np.ndarray, refs: np.ndarray, max_n: int = 4, vocab: int | None = None) -> np.ndarray:
    """Sentence BLEU-``max_n`` of each hypothesis against all references -> (N,) in [0, 1].

    Modified n-gram precision p_n = sum over the hypothesis' n-grams of min(count, the largest
    count in any single reference) / number of n-grams; BLEU = exp(mean_n log p_n), uniform
    weights, no smoothing (a zero precision gives 0); brevity penalty 1 (equal lengths).
    """
    hyps, refs = np.asarray(hyps), np.asarray(refs)
    vocab = vocab or int(max(hyps.max(), refs.max())) + 1
    log_p = np.zeros(len(hyps))
    for n in range(1, max_n + 1):
        _, ref_keys, ref_counts = _counts_per_row(_ngram_keys(refs, n, vocab))
        order = np.lexsort((ref_counts, ref_keys))  # per key, the largest count comes last
        ref_keys, ref_counts = ref_keys[order], ref_counts[order]
        last = np.r_[ref_keys[1:] != ref_keys[:-1], True]
        table_keys, table_max = ref_keys[last], ref_counts[last]
        hyp_rows, hyp_keys, hyp_counts = _counts_per_row(_ngram_keys(hyps, n, vocab))
        pos = np.clip(np.searchsorted(table_keys, hyp_keys), 0, len(table_keys) - 1)
        allowed = np.where(table_keys[pos] == hyp_keys, table_max[pos], 0)
        clipped = np.bincount(hyp_rows, weights=np.minimum(hyp_counts, allowed), minlength=len(hyps))
        with np.errstate(divide="ignore"):
            log_p += np.log(clipped / (hyps.shape[1] - n + 1))
    return np.exp(log_p / max_n)


def self_bleu(samples: np.ndarray, num: int = 200, max_n: int = 4) -> float:
    """Mean BLEU of the first ``num`` samples against the remaining ones (diversity: lower = more diverse)."""
    num = min(num, len(samples) // 2)
    return float(bleu(samples[:num], samples[num:], max_n).mean())


def pitch_mse(generated: np.ndarray, references: np.ndarray, chunk: int = 512) -> float:
    """MSE as defined here for the paper's second metric: for each generated (L,) contour of
    sounding pitches, the mean squared difference (semitones^2) to the nearest reference
    contour, averaged over generated sequences. Silent steps carry the previous pitch (leading
    silence takes the first pitch; an all-silent sequence is 0)."""
    g, r = _fill_silence(generated).astype(np.float64), _fill_silence(references).astype(np.float64)
    r_sq = (r**2).sum(1)
    best = []
    for i in range(0, len(g), chunk):
        gc = g[i : i + chunk]
        dist = (gc**2).sum(1)[:, None] + r_sq[None, :] - 2 * gc @ r.T
        best.append(dist.min(1) / g.shape[1])
    return float(np.concatenate(best).mean())


def _fill_silence(pitch: np.ndarray) -> np.ndarray:
    """(N, L) pitches with -1 for silence -> silence replaced by the previous (or first) pitch."""
    out = np.asarray(pitch).copy()
    for t in range(1, out.shape[1]):
        out[:, t] = np.where(out[:, t] < 0, out[:, t - 1], out[:, t])
    for t in range(out.shape[1] - 2, -1, -1):  # leading silence: the first pitch that sounds
        out[:, t] = np.where(out[:, t] < 0, out[:, t + 1], out[:, t])
    return np.where(out < 0, 0, out)


def pitch_class_entropy(pitches: np.ndarray) -> float:
    """Shannon entropy (bits) of the pitch-class histogram of MIDI ``pitches``; 0 for none."""
    if len(pitches) == 0:
        return 0.0
    p = np.bincount(np.asarray(pitches) % 12, minlength=12) / len(pitches)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def scale_consistency(pitches: np.ndarray) -> float:
    """Largest fraction of notes that fit one diatonic (major / natural minor) scale; 1 for none."""
    if len(pitches) == 0:
        return 1.0
    counts = np.bincount(np.asarray(pitches) % 12, minlength=12)
    return float(counts[_SCALES].sum(axis=1).max() / len(pitches))


def longest_repeat(tokens: np.ndarray) -> int:
    """Length of the longest token substring that occurs at least twice (may overlap)."""
    tokens = list(np.asarray(tokens).tolist())
    best, lo, hi = 0, 1, len(tokens) - 1
    while lo <= hi:  # binary search: a repeat of length k implies one of length k-1
        k = (lo + hi) // 2
        seen, found = set(), False
        for i in range(len(tokens) - k + 1):
            key = tuple(tokens[i : i + k])
            if key in seen:
                found = True
                break
            seen.add(key)
        if found:
            best, lo = k, k + 1
        else:
            hi = k - 1
    return best


def music_stats(notes: list[tuple[int, int, int]], tokens: np.ndarray, steps: int) -> dict[str, float]:
    """Statistics of one melody: notes (pitch, on, off) over ``steps`` grid steps (``tokens``: its token ids)."""
    pitches = np.array([p for p, _, _ in notes], dtype=np.int64)
    sounding = sum(off - on for _, on, off in notes)
    return {
        "pitch_range": float(pitches.max() - pitches.min()) if len(pitches) else 0.0,
        "pitches_used": float(len(set(pitches.tolist()))),
        "pitch_class_entropy": pitch_class_entropy(pitches),
        "scale_consistency": scale_consistency(pitches),
        "mean_abs_interval": float(np.abs(np.diff(pitches)).mean()) if len(pitches) > 1 else 0.0,
        "note_density": len(pitches) / max(steps, 1),
        "rest_ratio": 1.0 - sounding / max(steps, 1),
        "longest_repeat": float(longest_repeat(tokens)),
    }


def histogram_overlap(a: np.ndarray, b: np.ndarray, bins: int = 20) -> float:
    """Overlapping area of the normalized histograms of samples ``a`` and ``b`` (1 = identical)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    lo, hi = min(a.min(), b.min()), max(a.max(), b.max())
    if hi - lo < 1e-12:
        return 1.0
    ha, _ = np.histogram(a, bins=bins, range=(lo, hi))
    hb, _ = np.histogram(b, bins=bins, range=(lo, hi))
    return float(np.minimum(ha / ha.sum(), hb / hb.sum()).sum())


# ---------------------------------------------------------------- melody-level measures (notes)
Notes = list[tuple[int, int, int]]  # (pitch, onset step, end step)


def silent_rate(melodies: list[Notes]) -> float:
    """Share of melodies without a single note."""
    return float(np.mean([len(m) == 0 for m in melodies])) if melodies else 0.0


def one_pitch_rate(melodies: list[Notes]) -> float:
    """Share of melodies whose notes (at least one) all have the same pitch."""
    return float(np.mean([len({p for p, _, _ in m}) == 1 for m in melodies])) if melodies else 0.0


def duration_entropy(melodies: list[Notes]) -> float:
    """Shannon entropy (bits) of the note durations (in steps) pooled over all melodies; 0 for none."""
    durations = np.array([off - on for m in melodies for _, on, off in m], dtype=np.int64)
    if len(durations) == 0:
        return 0.0
    p = np.bincount(durations) / len(durations)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def phrase_repetition(notes: Notes, n: int = 4) -> float:
    """Share of the melody's ``n``-note pitch patterns that occur more than once in it; 0 when it
    has fewer than ``n`` notes. [60, 62, 64, 65, 60, 62, 64, 65] has 5 patterns, 2 of which (the
    first and the last) occur twice, so 2/5 = 0.4."""
    pitches = [p for p, _, _ in notes]
    grams = [tuple(pitches[i : i + n]) for i in range(len(pitches) - n + 1)]
    if not grams:
        return 0.0
    counts: dict[tuple[int, ...], int] = {}
    for g in grams:
        counts[g] = counts.get(g, 0) + 1
    return sum(counts[g] > 1 for g in grams) / len(grams)


def pitch_class_histogram(melodies: list[Notes]) -> np.ndarray:
    """(12,) share of notes on each pitch class, pooled over melodies (all zero for no notes)."""
    counts = np.bincount([p % 12 for m in melodies for p, _, _ in m], minlength=12).astype(float)
    return counts / max(counts.sum(), 1.0)


def pitch_class_distance(melodies: list[Notes], reference: list[Notes]) -> float:
    """Total variation distance (0..1) between the pooled pitch-class histograms of two sets."""
    return float(0.5 * np.abs(pitch_class_histogram(melodies) - pitch_class_histogram(reference)).sum())


# ---------------------------------------------------------------- structure (needs a beat grid)
# Krumhansl-Kessler key profiles (probe-tone ratings), index 0 = the tonic
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
MAJOR_SCALE = {0, 2, 4, 5, 7, 9, 11}
MINOR_SCALE = {0, 2, 3, 5, 7, 8, 10, 11}  # natural minor and the raised leading note
TONIC_NAMES = ("C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")  # by pitch class
KEYS = tuple(f"{name} major" for name in TONIC_NAMES) + tuple(  # key names: index tonic + 12 for minor
    f"{name} minor" for name in ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "G#", "A", "Bb", "B"))
# (24, 12): row t = major key with tonic t, row 12 + t = minor key with tonic t
KEY_PROFILES = np.stack([np.roll(p, t) for p in (MAJOR_PROFILE, MINOR_PROFILE) for t in range(12)])
STRUCTURE_NAMES = ("tonic_ending", "downbeat_share", "on_beat_share", "key_agreement")


def estimate_key(notes: Notes, among: tuple[int, ...] = ()) -> tuple[int, bool]:
    """(tonic pitch class, major?) by the Krumhansl-Schmuckler method: the key whose profile
    correlates best with the duration-weighted pitch-class histogram, of all 24 or of the keys
    ``among`` (indices tonic + 12 for minor, e.g. what a key signature allows). Without notes:
    the first of ``among``, else C major."""
    weights = np.zeros(12)
    for pitch, on, off in notes:
        weights[pitch % 12] += off - on
    candidates = list(among) or list(range(24))
    if weights.std() == 0:  # no notes, or all twelve pitch classes alike: no key stands out
        best = candidates[0]
    else:
        centred = (KEY_PROFILES - KEY_PROFILES.mean(1, keepdims=True)) @ (weights - weights.mean())
        scores = centred / KEY_PROFILES.std(1)  # Pearson correlation up to a common factor
        best = max(candidates, key=lambda k: scores[k])
    return best % 12, best < 12


def key_index(notes: Notes, among: tuple[int, ...] = ()) -> int:
    """:func:`estimate_key` as an index of :data:`KEYS` (tonic + 12 for minor)."""
    tonic, major = estimate_key(notes, among)
    return tonic + 12 * (not major)


def ends_on_tonic(notes: Notes) -> bool:
    """Whether a melody's last note is the tonic of its estimated key (False without notes)."""
    return bool(notes) and notes[-1][0] % 12 == estimate_key(notes)[0]


def scale_of(tonic: int, major: bool) -> set[int]:
    """Pitch classes of the key's scale (the minor scale with its raised leading note)."""
    return {(tonic + d) % 12 for d in (MAJOR_SCALE if major else MINOR_SCALE)}


def off_key_notes(notes: Notes) -> int:
    """How many of the melody's notes lie outside the scale of its estimated key (0 without notes)."""
    scale = scale_of(*estimate_key(notes))
    return sum(pitch % 12 not in scale for pitch, _, _ in notes)


def structure_stats(notes: Notes, steps_per_bar: int, steps_per_beat: int) -> dict[str, float]:
    """Structure of one melody laid out in bars from step 0 (NaN where a measure has no notes):
    tonic_ending (1 if its last note is the tonic of its estimated key), downbeat_share and
    on_beat_share (shares of note onsets on the first step of a bar / of a beat), key_agreement
    (mean over bars with notes of the share of sounding steps whose pitch class lies in the key's
    scale)."""
    if not notes:
        return dict.fromkeys(STRUCTURE_NAMES, float("nan"))
    tonic, major = estimate_key(notes)
    scale = scale_of(tonic, major)
    onsets = np.array([on for _, on, _ in notes])
    in_key: dict[int, list[int]] = {}  # bar -> [steps in the scale, steps sounding]
    for pitch, on, off in notes:
        for step in range(on, off):
            counts = in_key.setdefault(step // steps_per_bar, [0, 0])
            counts[0] += pitch % 12 in scale
            counts[1] += 1
    return {
        "tonic_ending": float(notes[-1][0] % 12 == tonic),
        "downbeat_share": float(np.mean(onsets % steps_per_bar == 0)),
        "on_beat_share": float(np.mean(onsets % steps_per_beat == 0)),
        "key_agreement": float(np.mean([inside / total for inside, total in in_key.values()])),
    }
