"""The baseline any neural model must beat: an order-k Markov chain over tokens with backoff.

Fitted on the same training windows as the generator and sampled the same way (a window from its
start), so evaluation rows of the chain and of the generators compare like with like. Each window
is padded with ``order`` start markers; a context never seen in training backs off to its longest
seen suffix (down to the unigram distribution).
"""

from __future__ import annotations

import numpy as np

START = -1  # the start marker that pads each window's context


class MarkovChain:
    """Order-``order`` token model: counts of the next token after every context of 0..order tokens."""

    def __init__(self, order: int, vocab_size: int):
        if order < 0:
            raise ValueError("order must be >= 0")
        self.order, self.vocab_size = order, vocab_size
        self.cdf: dict[tuple[int, ...], np.ndarray] = {}

    def fit(self, windows: np.ndarray) -> MarkovChain:
        """Count the next-token distributions of (N, T) windows; returns self."""
        counts: dict[tuple[int, ...], np.ndarray] = {}
        padded = np.concatenate([np.full((len(windows), self.order), START), np.asarray(windows)], axis=1).tolist()
        for row in padded:
            for t in range(self.order, len(row)):
                for k in range(self.order + 1):
                    ctx = tuple(row[t - k : t])
                    table = counts.get(ctx)
                    if table is None:
                        table = counts[ctx] = np.zeros(self.vocab_size)
                    table[row[t]] += 1
        self.cdf = {ctx: np.cumsum(c) / c.sum() for ctx, c in counts.items()}
        return self

    def distribution(self, context: tuple[int, ...]) -> np.ndarray:
        """(V,) cumulative next-token distribution after ``context`` (its last ``order`` ids,
        START-padded), backing off to the longest suffix seen in training."""
        ctx = tuple(context[len(context) - self.order :]) if self.order else ()
        for k in range(len(ctx) + 1):
            cdf = self.cdf.get(ctx[k:])
            if cdf is not None:
                return cdf
        raise ValueError("the chain has not been fitted")

    def sample(self, num: int, steps: int, seed: int = 0) -> np.ndarray:
        """(num, steps) token ids, each row from the start of a window."""
        rng = np.random.default_rng(seed)
        out = np.full((num, self.order + steps), START, dtype=np.int64)
        u = rng.random((num, steps))
        for i in range(num):
            row = out[i]
            for t in range(steps):
                cdf = self.distribution(tuple(row[t : t + self.order].tolist()))
                row[self.order + t] = min(int(np.searchsorted(cdf, u[i, t], side="right")), self.vocab_size - 1)
        return out[:, self.order :]
