"""A fresh critic: a two-sample test of generated against held-out real windows.

A small bidirectional GRU (another architecture than SeqGAN's CNN discriminator, and trained
from scratch for each test) learns to tell real windows from generated ones on one half of the
data and is scored on the other half; the two halves swap and the accuracies are averaged. Real
windows are split by piece (windows of one tune are correlated, and a split by window would let
the critic recognise tunes instead of styles), generated windows at random. Both classes are
balanced in every half, so 0.5 means the critic cannot tell them apart.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class GRUCritic(nn.Module):
    """(B, T) ids -> (B,) logit of "real": embedding, bidirectional GRU, mean and max over time."""

    def __init__(self, vocab: int, embed: int = 32, hidden: int = 64):
        super().__init__()
        self.embedding = nn.Embedding(vocab, embed)
        self.gru = nn.GRU(embed, hidden, batch_first=True, bidirectional=True)
        self.out = nn.Linear(4 * hidden, 1)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h, _ = self.gru(self.embedding(tokens))
        return self.out(torch.cat([h.mean(1), h.amax(1)], dim=1)).squeeze(1)


def group_halves(groups: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(N,) group ids -> (N,) bool, True for the rows of a random half of the groups."""
    ids = np.unique(groups)
    first = set(rng.permutation(ids)[: len(ids) // 2].tolist())
    return np.array([g in first for g in groups.tolist()], dtype=bool)


def _fit_and_score(train_x, train_y, test_x, test_y, vocab: int, epochs: int, seed: int) -> float:
    """Train a fresh critic on (train_x, train_y), return its accuracy on (test_x, test_y); the
    global torch random state is left as it was."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = GRUCritic(vocab)
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        x, y = torch.from_numpy(train_x).long(), torch.from_numpy(train_y).float()
        for _ in range(epochs):
            for b in torch.randperm(len(x)).split(64):
                loss = nn.functional.binary_cross_entropy_with_logits(model(x[b]), y[b])
                opt.zero_grad()
                loss.backward()
                opt.step()
    with torch.no_grad():
        pred = torch.cat([model(c) > 0 for c in torch.from_numpy(test_x).long().split(1024)]).numpy()
    return float((pred == test_y.astype(bool)).mean())


def two_sample_accuracy(real: np.ndarray, real_groups: np.ndarray, fake: np.ndarray, vocab: int,
                        fake_groups: np.ndarray | None = None, epochs: int = 6, seed: int = 0) -> float:
    """Held-out accuracy (0.5 = indistinguishable, 1 = always told apart) of a fresh critic on
    (N, T) ``real`` windows with (N,) piece ids ``real_groups`` against (M, T) ``fake`` windows
    (split by ``fake_groups`` too when given: real-vs-real floors). Two folds, averaged."""
    rng = np.random.default_rng(seed)
    real_half = group_halves(real_groups, rng)
    fake_half = group_halves(fake_groups, rng) if fake_groups is not None else rng.permutation(len(fake)) < len(fake) // 2
    accs = []
    for fold in (True, False):
        parts = []
        for r, f in ((real[real_half == fold], fake[fake_half == fold]), (real[real_half != fold], fake[fake_half != fold])):
            n = min(len(r), len(f))
            r, f = r[rng.permutation(len(r))[:n]], f[rng.permutation(len(f))[:n]]
            parts.append((np.concatenate([r, f]), np.r_[np.ones(n), np.zeros(n)]))
        (train_x, train_y), (test_x, test_y) = parts
        if len(train_x) < 2 or len(test_x) < 2:
            raise ValueError("too few windows for a two-sample test (need real pieces in both halves)")
        accs.append(_fit_and_score(train_x, train_y, test_x, test_y, vocab, epochs, seed))
    return float(np.mean(accs))
