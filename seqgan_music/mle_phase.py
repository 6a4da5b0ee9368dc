"""G's maximum-likelihood pre-training: the training windows read in budgeted units of batches,
epoch after epoch in a seeded order, each rank taking its share of every global batch."""

from __future__ import annotations

from collections.abc import Callable

import torch

from seqgan_music.config import TrainConfig
from seqgan_music.discriminator_phase import Step
from seqgan_music.distributed import DistInfo
from seqgan_music.models import Generator, mean_nll


class MLEPhase:
    """Teacher-forced NLL steps of ``G`` (``G_train``: its DDP wrapper, or G) on ``train_data``
    (N, T) windows starting at ``train_place`` (N, 2); ``step`` and ``progress`` as in
    :class:`~seqgan_music.discriminator_phase.DiscriminatorPhase`."""

    def __init__(self, G: Generator, G_train, tc: TrainConfig, dist: DistInfo, train_data: torch.Tensor,
                 train_place: torch.Tensor, step: Step, progress: Callable[[str, int, int], None]):
        self.G, self.G_train, self.tc, self.dist = G, G_train, tc, dist
        self.train_data, self.train_place = train_data, train_place
        self.opt = torch.optim.Adam(G.parameters(), lr=tc.g_lr)
        self._step, self._progress = step, progress
        self._order: tuple[int, torch.Tensor] | None = None  # (epoch, its window order): epoch_order's cache

    def epoch_length(self) -> int:
        """Windows per MLE epoch: the training windows, padded to a multiple of the ranks."""
        return -(-len(self.train_data) // self.dist.world) * self.dist.world

    def unit_batches(self) -> int:
        """Global batches per MLE unit: ``mle_unit_batches``, or one epoch over the training windows."""
        return self.tc.mle_batches_per_unit(self.epoch_length())

    def epoch_order(self, epoch: int) -> torch.Tensor:
        """The training windows' order in MLE epoch ``epoch``: DistributedSampler's permutation seeded
        by (seed, epoch), padded with its own head to a multiple of the ranks."""
        if self._order is None or self._order[0] != epoch:
            n, length = len(self.train_data), self.epoch_length()
            perm = torch.randperm(n, generator=torch.Generator().manual_seed(self.tc.seed + epoch))
            self._order = (epoch, perm.repeat(-(-length // n))[:length].to(self.train_data.device))
        return self._order[1]

    def batches(self, unit: int):
        """This rank's share of MLE unit ``unit``'s global batches. The windows are read epoch after
        epoch, each in :meth:`epoch_order`; a unit is one epoch, or ``mle_unit_batches`` batches read
        on from where the unit before stopped (so a unit's cost does not grow with the collection).
        Global batch i is positions i*B..(i+1)*B of its epoch's order and rank r takes every world-th
        of them from r: K ranks together see exactly the batches a single process sees."""
        batch, per_unit = self.tc.batch_size, self.unit_batches()
        per_epoch = -(-self.epoch_length() // batch)
        for g in range(unit * per_unit, (unit + 1) * per_unit):
            epoch, i = divmod(g, per_epoch)
            yield self.epoch_order(epoch)[i * batch : (i + 1) * batch][self.dist.rank :: self.dist.world]

    def loss(self, idx: torch.Tensor) -> torch.Tensor:
        """Mean NLL of the training windows ``idx`` (B,), teacher forced."""
        batch = self.train_data[idx]
        return mean_nll(self.G_train(self.G.shifted_inputs(batch), None, batch, self.train_place[idx])[0], batch)

    def train_unit(self, unit: int) -> float:
        """Run MLE unit ``unit``'s batches. -> the mean training NLL of the steps taken."""
        self.G.train()
        total, count = 0.0, 0
        n_batches = self.unit_batches()
        for i, idx in enumerate(self.batches(unit)):
            self._progress("mle", i, n_batches)
            loss = self.loss(idx)
            if self._step(loss, self.opt, self.G.parameters(), self.tc.grad_clip):
                total, count = total + loss.item() * len(idx), count + len(idx)
        return total / max(count, 1)
