"""Optimizer steps that survive a bad batch: a non-finite loss (on any rank) skips the step, and
too many in a row stop the run with a one-line error, the last checkpoint kept."""

from __future__ import annotations

import torch

from seqgan_music.distributed import DistInfo, all_true
from seqgan_music.errors import UserError


class NonFiniteLoss(UserError):
    """Too many non-finite losses in a row."""


class GuardedStep:
    """``step(loss, opt, params, clip)``: backward and step unless the loss is non-finite on some
    rank; ``nonfinite`` counts the skips in a row (kept in checkpoints), ``skipped`` all of them."""

    def __init__(self, dist: DistInfo, max_nonfinite: int, last_path: str):
        self.dist, self.max_nonfinite, self.last_path = dist, max_nonfinite, last_path
        self.nonfinite = 0
        self.skipped = 0

    def __call__(self, loss: torch.Tensor, opt: torch.optim.Optimizer, params, clip: float | None) -> bool:
        """Backward and step (gradients clipped to norm ``clip`` when given). Returns whether it stepped."""
        if not all_true(bool(torch.isfinite(loss)), self.dist):
            self.nonfinite += 1
            self.skipped += 1
            if self.nonfinite >= self.max_nonfinite:
                raise NonFiniteLoss(f"training stopped: {self.nonfinite} non-finite losses in a row "
                                    f"(try a lower learning rate); the last checkpoint is {self.last_path}")
            return False
        self.nonfinite = 0
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(params, clip)
        opt.step()
        return True
