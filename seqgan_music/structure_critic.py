"""A critic of form for the adversarial phase: how much likelier a window's phrase repetition is
among real windows than among G's recent samples.

D, a CNN over 8-bar windows, barely sees form: its logit correlated 0.11 with a sample's phrase
repetition (docs/experiments/whole-tunes-8-bars.md), and G's samples repeat phrases less than real tunes. This critic
looks at nothing else. It bins a window's phrase-repetition rate (:func:`metrics.phrase_repetition`:
the share of its 4-note pitch patterns that recur in it) and returns the optimal discriminator on
that one number, p_real / (p_real + p_gen), from two histograms: the real training windows' (fixed)
and G's samples' (a moving average over the policy-gradient batches). It is a probability of real
like D's reward, and it falls where G overshoots: samples that repeat more than real windows do are
not rewarded for it.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from seqgan_music.metrics import off_key_notes, phrase_repetition
from seqgan_music.tokenizer import Tokenizer

BINS = 10  # equal bins of the phrase-repetition rate over [0, 1]
FORM_LENGTHS = 8  # real_form's window lengths: T * k / FORM_LENGTHS tokens, k = 1..FORM_LENGTHS
FORM_WINDOWS = 512  # most real windows real_form reads (evenly spaced over the training windows)


def phrase_rates(tokenizer: Tokenizer, windows: torch.Tensor) -> np.ndarray:
    """(B, T) token ids -> (B,) phrase-repetition rate of each window's notes."""
    return np.array([phrase_repetition(notes) for notes in tokenizer.decode_all(windows.cpu().numpy())])


def rate_bins(rates: np.ndarray) -> np.ndarray:
    """(N,) rates in [0, 1] -> (N,) their bins: BINS equal bins over [0, 1]."""
    return np.minimum((np.clip(rates, 0, 1) * BINS).astype(int), BINS - 1)


def count_bins(counts: np.ndarray) -> np.ndarray:
    """(N,) counts -> (N,) their bins: 0, 1, ..., BINS - 2, and BINS - 1 for that many or more."""
    return np.minimum(np.asarray(counts, dtype=int), BINS - 1)


def bin_histogram(bins: np.ndarray) -> np.ndarray:
    """(BINS,) shares of (N,) bin indices per bin, each bin with one extra count (never 0)."""
    counts = np.bincount(bins, minlength=BINS)[:BINS] + 1.0
    return counts / counts.sum()


def rate_histogram(rates: np.ndarray) -> np.ndarray:
    """(BINS,) :func:`bin_histogram` of (N,) phrase-repetition ``rates``."""
    return bin_histogram(rate_bins(rates))


def real_form(tokenizer: Tokenizer, windows: torch.Tensor) -> dict[str, list]:
    """What a run saves of its (N, T) real windows' form, for drafts (:mod:`seqgan_music.drafts`):
    ``lengths`` (FORM_LENGTHS,) tokens, T * k / FORM_LENGTHS, and for each length the histograms
    of the windows' first ``length`` tokens (a melody shorter than T is judged against windows as
    long as it: shorter ones repeat less): ``histograms``, the :func:`rate_histogram` of their
    phrase-repetition rates, and ``off_key``, the :func:`bin_histogram` of their
    counts of notes outside their key (:func:`metrics.off_key_notes`)."""
    windows = windows[:: max(1, -(-len(windows) // FORM_WINDOWS))].cpu().numpy()
    T = windows.shape[1]
    lengths = [T * k // FORM_LENGTHS for k in range(1, FORM_LENGTHS + 1)]
    melodies = [tokenizer.decode_all(windows[:, :n]) for n in lengths]  # the notes of each prefix length
    return {"lengths": lengths,
            "histograms": [rate_histogram(np.array([phrase_repetition(m) for m in ms])).tolist() for ms in melodies],
            "off_key": [bin_histogram(count_bins(np.array([off_key_notes(m) for m in ms]))).tolist() for ms in melodies]}


class StructureCritic:
    """The form critic of one run (it judges phrase repetition); ``real``: the (BINS,) :func:`rate_histogram` of
    real windows' phrase-repetition rates (:func:`phrase_rates`); ``memory``: the weight of the
    older samples' histogram when a batch is folded in. With ``binning`` :func:`count_bins` and a
    histogram of counts, the same critic of a count (drafts judge off-key notes so)."""

    def __init__(self, real: np.ndarray, memory: float = 0.9,
                 binning: Callable[[np.ndarray], np.ndarray] = rate_bins):
        self.memory = memory
        self.binning = binning
        self.real = np.asarray(real, dtype=float)
        self.generated: np.ndarray | None = None  # (BINS,) shares of G's samples; None before any are observed

    def observe(self, rates: np.ndarray) -> None:
        """Fold G's newest samples' (B,) ``rates`` into the moving histogram of its samples (the
        first batch sets it)."""
        batch = bin_histogram(self.binning(rates))
        self.generated = batch if self.generated is None else self.memory * self.generated + (1 - self.memory) * batch

    def __call__(self, rates: np.ndarray) -> torch.Tensor:
        """(B,) probability of real in [0, 1] of windows with these phrase-repetition ``rates``,
        judged against the samples observed so far (at least one batch)."""
        b = self.binning(rates)
        return torch.from_numpy(self.real[b] / (self.real[b] + self.generated[b])).float()

    def log_ratio(self, rates: np.ndarray) -> np.ndarray:
        """(B,) log(p_real / p_gen) of windows with these ``rates`` (the log-odds of :meth:`__call__`)."""
        b = self.binning(rates)
        return np.log(self.real[b]) - np.log(self.generated[b])

    def state(self) -> dict[str, list[float] | None]:
        return {"generated": None if self.generated is None else self.generated.tolist()}

    def load_state(self, state: dict) -> None:
        self.generated = None if state.get("generated") is None else np.array(state["generated"])
