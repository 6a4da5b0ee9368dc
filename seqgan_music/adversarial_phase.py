"""G's policy-gradient steps of the adversarial phase: fresh samples, per-token rewards from the
run's reward sources (:mod:`seqgan_music.rewards`: D's Monte Carlo rollouts, and the form critic
when on), advantages and the KL tie to the frozen MLE model."""

from __future__ import annotations

from typing import Any

import torch

from seqgan_music.config import TrainConfig
from seqgan_music.discriminator_phase import Step
from seqgan_music.models import NEVER, Generator, token_log_probs
from seqgan_music.policy_gradient import advantages, kl_per_token, policy_gradient_loss
from seqgan_music.rewards import RewardSource, Sample


class PolicyGradientPhase:
    """Policy-gradient steps of ``G`` (``G_train``: its DDP wrapper, or G) rewarded by the sum of
    its ``sources`` (the first is D's, whose rewards the round reports); ``reference`` is the
    frozen MLE model of the KL tie. ``sample(num)`` -> (num, T) samples that never end a tune and
    their places; ``end``: the END token (None without one)."""

    def __init__(self, G: Generator, G_train, reference: Generator, sources: list[RewardSource], tc: TrainConfig,
                 world: int, end: int | None, sample: Sample, step: Step):
        self.G, self.G_train, self.reference, self.sources = G, G_train, reference, sources
        self.tc, self.world, self.end = tc, world, end
        # its own Adam, as in the authors' code: the moment estimates of MLE pre-training must not
        # scale the first policy-gradient steps
        self.opt = torch.optim.Adam(G.parameters(), lr=tc.pg_lr)
        self._sample, self._step = sample, step

    def step(self, metrics: dict[str, Any]) -> torch.Tensor:
        """One g-step on a fresh batch (its numbers into ``metrics``). -> the first source's (B, T) rewards."""
        for source in self.sources:
            source.before_batch()
        samples, place = self._sample(self.tc.batch_size // self.world)
        rewards = [source(samples, place, metrics) for source in self.sources]
        self._update(samples, place, sum(rewards[1:], rewards[0]), metrics)
        for source in self.sources:
            source.after_step(self.G)
        return rewards[0]

    def _update(self, samples: torch.Tensor, place: torch.Tensor | None, rewards: torch.Tensor,
                metrics: dict[str, Any]) -> None:
        """One step of G on (B, T) ``samples`` (drawn from ``place``) and their (B, T) ``rewards``:
        advantages and the KL tie to the MLE model."""
        tc = self.tc
        self.G.eval()  # the gradient of the policy that drew the samples: without dropout (MLE pre-training only)
        self.G.lstm.train()  # cuDNN computes an LSTM's backward only in training mode (one layer: nothing else changes)
        inputs = self.G.shifted_inputs(samples)
        logits = self.G_train(inputs, None, samples, place)[0]  # G's whole law, END included
        drawn = logits if self.end is None else logits.index_fill(-1, torch.tensor([self.end], device=logits.device), NEVER)
        kl = None
        if tc.kl_coef:  # on the whole law: the KL tie pulls END's probability towards the MLE model's
            with torch.no_grad():
                reference_logits = self.reference(inputs, None, samples, place)[0]
            kl = kl_per_token(logits, reference_logits)
        adv = advantages(rewards, tc.pg_baseline, tc.pg_normalize)
        loss = policy_gradient_loss(token_log_probs(drawn, samples), adv, kl, tc.kl_coef)
        self._step(loss, self.opt, self.G.parameters(), tc.grad_clip)
        metrics["pg_loss"] = loss.item()
        if kl is not None:
            metrics["kl_mle"] = float(kl.detach().mean())
