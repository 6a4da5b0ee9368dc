"""A run's windows on its device: the training and validation windows, where each lies in its
tune, the validation windows the NLL after each unit reads, and the real windows D and the judge
compare samples with."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from seqgan_music.errors import UserError

NLL_WINDOWS = 1024  # validation windows the NLL after each unit reads (evenly spaced): its cost stays put on large collections


@dataclass
class TrainingWindows:
    """(N, T) ``train`` and (M, T) ``valid`` windows with their (N, 2) and (M, 2) places (first
    bar, tune bars); ``nll``: at most NLL_WINDOWS evenly spaced validation windows; ``real`` and
    ``held_out``: the training and validation windows that do not reach a tune's end (what D and
    the judge compare samples with: the adversarial phase's samples start at those windows' bar
    numbers and, like its rollouts, never end a tune); ``end``: the END token (None without one)."""

    train: torch.Tensor
    valid: torch.Tensor
    train_place: torch.Tensor
    valid_place: torch.Tensor
    nll: torch.Tensor
    nll_place: torch.Tensor
    real: torch.Tensor
    real_place: torch.Tensor
    held_out: torch.Tensor
    held_out_place: torch.Tensor
    end: int | None


def training_windows(train: torch.Tensor, valid: torch.Tensor, places: tuple[torch.Tensor, torch.Tensor] | None,
                     device: torch.device, end: int | None, needs_tune_lengths: bool) -> TrainingWindows:
    """The windows on ``device``; ``places`` None: every window at a tune's start (zeros).
    ``needs_tune_lengths``: G reads the bars left in the tune, which datasets prepared before
    tune lengths were stored lack (a UserError)."""
    train, valid = train.to(device), valid.to(device)
    train_place, valid_place = (b.to(device) for b in places) if places else \
        (torch.zeros(len(d), 2, dtype=torch.long, device=device) for d in (train, valid))
    if needs_tune_lengths and not bool(train_place[:, 1].all()):
        raise UserError("this dataset was prepared before tune lengths were stored, which the generator's "
                        "bars_left feature needs: prepare it again")
    spaced = slice(None, None, max(1, -(-len(valid) // NLL_WINDOWS)))
    going_on = [d[:, -1] != end if end is not None and not bool((d[:, -1] == end).all()) else slice(None)
                for d in (train, valid)]
    return TrainingWindows(train, valid, train_place, valid_place, valid[spaced], valid_place[spaced],
                           train[going_on[0]], train_place[going_on[0]], valid[going_on[1]], valid_place[going_on[1]],
                           end)
