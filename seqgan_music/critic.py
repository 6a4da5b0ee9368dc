"""A fresh critic: a two-sample test of generated against held-out real windows.

A small bidirectional GRU (another architecture than SeqGAN's CNN discriminator, and trained
from scratch for each test) learns to tell real windows from generated ones on one half of the
data and is scored on the other half; the two halves swap and the accuracies are averaged (k folds
alike: each tested once, trained on the others). Real
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


def group_folds(groups: np.ndarray, folds: int, rng: np.random.Generator) -> np.ndarray:
    """(N,) group ids -> (N,) fold index in 0..folds-1, every group's rows in one fold, the groups
    dealt to the folds in a random order."""
    ids = rng.permutation(np.unique(groups))
    fold_of = {g: i % folds for i, g in enumerate(ids.tolist())}
    return np.array([fold_of[g] for g in groups.tolist()], dtype=np.int64)


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


def _balanced(real: np.ndarray, fake: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """As many rows of each side (the smaller side's count, drawn at random) -> (ids, labels 1 = real)."""
    n = min(len(real), len(fake))
    r, f = real[rng.permutation(len(real))[:n]], fake[rng.permutation(len(fake))[:n]]
    return np.concatenate([r, f]), np.r_[np.ones(n), np.zeros(n)]


def two_sample_accuracy(real: np.ndarray, real_groups: np.ndarray, fake: np.ndarray, vocab: int,
                        fake_groups: np.ndarray | None = None, epochs: int = 6, seed: int = 0,
                        folds: int = 2) -> float:
    """Held-out accuracy (0.5 = indistinguishable, 1 = always told apart) of a fresh critic on
    (N, T) ``real`` windows with (N,) piece ids ``real_groups`` against (M, T) ``fake`` windows
    (split by ``fake_groups`` too when given: real-vs-real floors, or melodies of several windows).
    ``folds``-fold cross-validation (each fold tested once, trained on the others), averaged."""
    rng = np.random.default_rng(seed)
    real_fold = group_folds(real_groups, folds, rng)
    fake_fold = group_folds(fake_groups if fake_groups is not None else np.arange(len(fake)), folds, rng)
    accs = []
    for fold in range(folds):
        train_x, train_y = _balanced(real[real_fold != fold], fake[fake_fold != fold], rng)
        test_x, test_y = _balanced(real[real_fold == fold], fake[fake_fold == fold], rng)
        if len(train_x) < 2 or len(test_x) < 2:
            raise ValueError("too few windows for a two-sample test (need real pieces in every fold)")
        accs.append(_fit_and_score(train_x, train_y, test_x, test_y, vocab, epochs, seed))
    return float(np.mean(accs))
