"""D's part of training: its rounds (fresh negatives from G and as many real windows, k epochs of
D) in pre-training and in each adversarial round, and its check on an adversarial round's samples
(how far ahead of G it is, and what it learnt by heart)."""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP

from seqgan_music.config import TrainConfig
from seqgan_music.d_augment import PitchAugment
from seqgan_music.distributed import DistInfo, mean_across_ranks
from seqgan_music.models import Discriminator, eval_mode

Step = Callable[[torch.Tensor, torch.optim.Optimizer, object, float | None], bool]


class DiscriminatorPhase:
    """Trains ``D`` on ``real_windows`` (N, T) against samples of G (``sample(num)`` -> (num, T));
    ``held_out_windows`` (M, T) are real windows it never trains on. ``step(loss, opt, params,
    clip)`` is the trainer's guarded optimizer step, ``progress(phase, done, total)`` its progress
    event; ``rng`` the trainer's random stream (the draws' order is part of an exact resume);
    ``augment`` moves the windows D trains on in pitch once it learns them by heart (None: never).
    ``judge`` is the D that scores G: with ``d_average`` a moving average of D's weights after
    each round (D's call then does not swing with each round's threshold), else D itself."""

    def __init__(self, D: Discriminator, tc: TrainConfig, dist: DistInfo, real_windows: torch.Tensor,
                 held_out_windows: torch.Tensor, sample: Callable[[int], torch.Tensor], step: Step,
                 progress: Callable[[str, int, int], None], rng: torch.Generator,
                 augment: PitchAugment | None = None):
        self.D, self.tc, self.dist, self.augment = D, tc, dist, augment
        self.judge = copy.deepcopy(D).requires_grad_(False) if tc.d_average else D
        self.D_train = DDP(D) if dist.enabled else D  # averages gradients over ranks
        self.opt = torch.optim.Adam(D.parameters(), lr=tc.d_lr)
        self.real_windows, self.held_out_windows = real_windows, held_out_windows
        self._sample, self._step, self._progress, self.rng = sample, step, progress, rng
        self.device = real_windows.device

    def autocast(self):
        """bfloat16 autocast for D's training passes when ``amp`` is "bf16" (the loss stays
        float32). D's convolutions are where the FLOPs are; G's small LSTM stays float32."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.tc.amp == "bf16")

    def round(self, phase: str) -> dict[str, float]:
        """One round: fresh negatives and as many real windows, ``d_epochs`` epochs of D. -> D's
        loss and accuracies on each side over its last epoch."""
        tc = self.tc
        per_rank = tc.d_samples_per_round(len(self.real_windows)) // self.dist.world
        fake = self._sample(per_rank)
        idx = torch.randint(len(self.real_windows), (per_rank,), generator=self.rng, device=self.device)
        real = self.real_windows[idx]
        data = torch.cat([real, fake])
        if self.augment is not None and self.augment.p > 0:  # real and generated windows alike
            data = self.augment(data, self.rng)
        labels = torch.cat([torch.ones(len(real)), torch.zeros(len(fake))]).long().to(self.device)
        self.D.train()
        stats = torch.zeros(4, device=self.device)  # loss sum, real correct, fake correct, rows
        local = tc.batch_size // self.dist.world
        n_batches = tc.d_epochs * -(-len(data) // local)
        step = 0
        for epoch in range(tc.d_epochs):
            perm = torch.randperm(len(data), generator=self.rng, device=self.device)
            for i in range(0, len(data), local):
                self._progress(phase, step, n_batches)
                step += 1
                b = perm[i : i + local]
                with self.autocast():
                    logits = self.D_train(data[b])
                loss = F.cross_entropy(logits.float(), labels[b], label_smoothing=tc.d_label_smoothing) \
                    + self.D.l2_penalty()
                if self._step(loss, self.opt, self.D.parameters(), None) and epoch == tc.d_epochs - 1:
                    pred = logits.argmax(1)
                    y = labels[b]
                    stats += torch.stack([loss.detach() * len(b), ((pred == y) & (y == 1)).sum(),
                                          ((pred == y) & (y == 0)).sum(), torch.tensor(len(b), device=self.device)])
        self._average()
        loss_sum, real_ok, fake_ok, rows = stats.tolist()
        return {"d_loss": loss_sum / max(rows, 1), "d_acc_real": real_ok / max(rows / 2, 1),
                "d_acc_fake": fake_ok / max(rows / 2, 1)}

    @torch.no_grad()
    def _average(self) -> None:
        """Move the judge's weights toward D's: judge = d_average * judge + (1 - d_average) * D."""
        if self.judge is self.D:
            return
        for mine, new in zip(self.judge.state_dict().values(), self.D.state_dict().values()):
            if mine.is_floating_point():
                mine.lerp_(new, 1.0 - self.tc.d_average)

    @torch.no_grad()
    def check(self, fake_prob: torch.Tensor) -> dict[str, float]:
        """The judge on the round's samples (their probability of real: ``fake_prob`` (B,)) and B real
        windows of each side, averaged over ranks: ``d_acc_check``, its accuracy on the samples and
        training windows; the share of training windows (``d_real_seen``) and of validation windows
        (``d_real_unseen``; absent without them) it judges real: the gap is what it learnt by heart,
        and moves ``augment``'s share by it (``d_augment``)."""
        sides = {"d_real_seen": self.real_windows, "d_real_unseen": self.held_out_windows}
        shares = [float((fake_prob < 0.5).float().mean())]
        with eval_mode(self.judge):
            for windows in filter(len, sides.values()):
                idx = torch.randint(len(windows), (len(fake_prob),), generator=self.rng, device=self.device)
                shares.append(float((self.judge.prob_real(windows[idx]) > 0.5).float().mean()))
        fake_caught, *real = mean_across_ranks(shares, self.dist)
        out = dict(zip([k for k, w in sides.items() if len(w)], real))
        if self.augment is not None:  # the share of windows D's next steps move, from what it learnt by heart
            self.augment.adapt(out)
            out["d_augment"] = self.augment.p
        return {"d_acc_check": 0.5 * (out["d_real_seen"] + fake_caught), **out}

    def skips_steps(self, check: dict[str, float] | None) -> bool:
        """Whether an adversarial round skips D's steps: D is far enough ahead (``d_max_acc``)."""
        return check is not None and check["d_acc_check"] > self.tc.d_max_acc
