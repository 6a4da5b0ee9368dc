"""Drafts: several melodies drawn for each one kept, the keeper picked by the form critic.

G repeats phrases all or nothing where real tunes repeat with variation, and it strays from the
key now and then where real tunes keep to it (docs/experiments/tunes-moved-to-c.md, *Drafts*). Drawing K drafts per melody and
keeping draft x with probability proportional to p_real(x) / p_G(x) (sampling-importance-
resampling, as discriminator rejection sampling does for GANs of images) moves the kept melodies
towards real ones. The ratio is the form critic's (:mod:`seqgan_music.structure_critic`), the
product of two: of a window's phrase-repetition rate and of its count of notes outside its key's
scale, each from the histogram of the training windows saved with the run (``form_real``) and
that of G's own windows at the same temperature. D's log-odds, tried as a third factor, made the
kept melodies less real to a fresh critic on Nottingham (docs/experiments/tunes-moved-to-c.md, *Drafts*), so it is not used.

A draft is judged by the mean log-ratio of the windows that cover it, of T tokens (the run's
window) or, for a shorter draft, of the longest saved length that fits in it (windows of 4 bars
repeat less than windows of 8: each length has its own real histograms, and G's windows are drawn
at that length too). Runs saved before the off-key histograms existed are judged by repetition
alone.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from seqgan_music.checkpoint import LoadedRun
from seqgan_music.dataset import covering_starts
from seqgan_music.metrics import off_key_notes, phrase_repetition
from seqgan_music.structure_critic import StructureCritic, count_bins, rate_bins

CALIBRATION = 512  # windows of G's own the p_G histogram is made of (the drafts' windows, topped up)
SampleWindows = Callable[[int, int], torch.Tensor]  # (count, length) -> (count, length) ids of G's


def can_judge(run: LoadedRun) -> bool:
    """Whether the run saved its training windows' phrase statistics (runs trained before drafts
    existed did not: their drafts are not judged, the first of each is kept)."""
    return run.tokenizer is not None and run.state.get("form_real") is not None


def keep_drafts(run: LoadedRun, drafts: torch.Tensor, per_melody: int, sample_windows: SampleWindows,
                seed: int = 0) -> torch.Tensor:
    """(num * K, L) ids, K = ``per_melody`` consecutive drafts per melody -> (num, L): one draft
    of each group, drawn with probability proportional to exp(its :func:`draft_scores`); the
    first of each group where they cannot be judged."""
    num = len(drafts) // per_melody
    scores = draft_scores(run, drafts, sample_windows) if per_melody > 1 else None
    if scores is None:
        return drafts[::per_melody][:num]
    scores = scores.reshape(num, per_melody)
    weights = np.exp(scores - scores.max(1, keepdims=True))
    rng = np.random.default_rng(seed)
    picks = [rng.choice(per_melody, p=w / w.sum()) for w in weights]
    return drafts[np.arange(num) * per_melody + np.array(picks)]


def draft_scores(run: LoadedRun, drafts: torch.Tensor, sample_windows: SampleWindows) -> np.ndarray | None:
    """(C, L) ids -> (C,) mean over each draft's covering windows of log(p_real / p_G) of their
    phrase-repetition rate plus that of their off-key note count, at the longest saved length
    that fits in L (T for L >= T). p_G is the histogram of the drafts' windows and, when they are
    fewer than CALIBRATION, of ``sample_windows`` (fresh windows drawn as the drafts were). A tune
    the model ended is judged up to its END. None without :func:`can_judge` or when L is shorter
    than the shortest saved length."""
    form = run.state["form_real"] if can_judge(run) else None
    fitting = [] if form is None else [i for i, n in enumerate(form["lengths"]) if n <= drafts.shape[1]]
    if not fitting:
        return None
    width = form["lengths"][fitting[-1]]
    tok = run.tokenizer
    rows = [tok.tune_part(row) for row in drafts.cpu().numpy()]
    spans = [[(s, min(s + width, len(row))) for s in covering_starts(row, width, tok.bar_tokens)] for row in rows]
    notes = [tok.decode_notes(row[a:b]) for row, row_spans in zip(rows, spans) for a, b in row_spans]
    top_up = max(0, CALIBRATION - len(notes))
    extra = tok.decode_all(sample_windows(top_up, width).cpu().numpy()) if top_up else []
    per_window = np.zeros(len(notes))
    judged = [(form["histograms"], phrase_repetition, rate_bins), (form.get("off_key"), off_key_notes, count_bins)]
    for real, statistic, binning in judged:
        if real is None:  # saved before off-key notes were judged
            continue
        values = np.array([statistic(n) for n in notes + extra])
        critic = StructureCritic(np.asarray(real[fitting[-1]]), binning=binning)
        critic.observe(values)
        per_window += critic.log_ratio(values[: len(notes)])
    bounds = np.cumsum([0] + [len(s) for s in spans])
    return np.array([per_window[a:b].mean() for a, b in zip(bounds[:-1], bounds[1:])])
