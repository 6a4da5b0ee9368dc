"""D's windows moved in pitch when D learns the songs by heart (adaptive augmentation).

On a few dozen songs D soon tells them from G's samples by their exact pitches: it calls the
training windows real and the held-out tunes' windows fake, and its reward stops being about
music. :class:`PitchAugment` moves a share ``p`` of the windows D trains on, real and generated
alike, by a random number of semitones, so that the songs cannot be recognised by their pitches.
``p`` starts at 0 and follows D's check after each adversarial round
(:meth:`DiscriminatorPhase.check`): it rises while D calls clearly more of the training windows real
than of the held-out ones, and falls back otherwise. On a large collection D learns nothing by
heart, so ``p`` stays near 0 and D trains as before.
"""

from __future__ import annotations

import numpy as np
import torch

MEMORISED_GAP = 0.25  # D learnt the songs by heart: d_real_seen - d_real_unseen above this
RISE, FALL = 0.25, 0.1  # p's change after a round that shows it, and after one that does not


class PitchAugment:
    """Moves a share ``p`` of (N, T) windows by up to ``semitones`` semitones (notes leaving the
    tokenizer's range by octaves)."""

    def __init__(self, tokenizer, semitones: int, p: float = 0.0):
        self.tokenizer, self.semitones, self.p = tokenizer, semitones, p

    def __call__(self, windows: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
        """(N, T) windows -> the same with about ``p * N`` of them moved (three draws from ``rng`` always)."""
        chosen = torch.rand(len(windows), generator=rng, device=windows.device) < self.p
        moves = torch.randint(1, self.semitones + 1, (len(windows),), generator=rng, device=windows.device)
        signs = torch.where(torch.rand(len(windows), generator=rng, device=windows.device) < 0.5, -1, 1)
        moves = (moves * signs * chosen).cpu().numpy()
        if not moves.any():
            return windows
        out = windows.cpu().numpy().copy()
        for k in np.unique(moves[moves != 0]).tolist():
            out[moves == k] = self.tokenizer.transpose(out[moves == k], k, fold=True)
        return torch.from_numpy(out).to(windows.device)

    def adapt(self, check: dict[str, float]) -> None:
        """Follow one round's check (shares of training and held-out real windows D calls real)."""
        if "d_real_unseen" not in check:
            return
        memorised = check["d_real_seen"] - check["d_real_unseen"] > MEMORISED_GAP
        self.p = min(1.0, self.p + RISE) if memorised else max(0.0, self.p - FALL)
