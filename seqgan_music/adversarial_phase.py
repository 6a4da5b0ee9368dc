"""G's policy-gradient steps of the adversarial phase: fresh samples, per-token rewards from D's
Monte Carlo rollouts (plus the form critic's whole-sample reward, when on), advantages and the KL
tie to the frozen MLE model."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from seqgan_music.config import TrainConfig
from seqgan_music.discriminator_phase import Step
from seqgan_music.models import NEVER, Discriminator, Generator, never_drawing, token_log_probs
from seqgan_music.policy_gradient import advantages, kl_per_token, policy_gradient_loss
from seqgan_music.rollout import rollout_rewards, update_rollout_policy
from seqgan_music.structure_critic import StructureCritic, phrase_rates
from seqgan_music.tokenizer import Tokenizer

Sample = Callable[[int], tuple[torch.Tensor, torch.Tensor | None]]


class PolicyGradientPhase:
    """Policy-gradient steps of ``G`` (``G_train``: its DDP wrapper, or G) rewarded by ``D``
    through ``rollout`` (the rollout policy, a delayed copy of G); ``reference`` is the frozen MLE
    model of the KL tie, ``structure`` the form critic (None: off). ``sample(num)`` -> (num, T)
    samples that never end a tune and their places; ``end``: the END token (None without one)."""

    def __init__(self, G: Generator, G_train, D: Discriminator, rollout: Generator, reference: Generator,
                 structure: StructureCritic | None, tc: TrainConfig, world: int, tokenizer: Tokenizer | None,
                 end: int | None, sample: Sample, step: Step, rng: torch.Generator):
        self.G, self.G_train, self.D, self.rollout, self.reference = G, G_train, D, rollout, reference
        self.structure, self.tc, self.world, self.tokenizer, self.end = structure, tc, world, tokenizer, end
        # its own Adam, as in the authors' code: the moment estimates of MLE pre-training must not
        # scale the first policy-gradient steps
        self.opt = torch.optim.Adam(G.parameters(), lr=tc.pg_lr)
        self._sample, self._step, self.rng = sample, step, rng

    def step(self, metrics: dict[str, Any]) -> torch.Tensor:
        """One g-step on a fresh batch (its numbers into ``metrics``). -> D's (B, T) rewards."""
        tc = self.tc
        self._observe_first_samples()
        with never_drawing(self.rollout, self.end):
            samples, place = self._sample(tc.batch_size // self.world)
            rewards = rollout_rewards(samples, self.rollout, self.D, tc.rollout_num, tc.rollout_memory_mb, self.rng,
                                      place=place)
        total = rewards
        if self.structure is not None:  # a whole-sample reward: every token of a sample gets it
            total = rewards + tc.structure_reward * self._form_rewards(samples, metrics)[:, None]
        self._update(samples, place, total, metrics)
        update_rollout_policy(self.rollout, self.G, tc.rollout_update_rate)
        metrics.update(mean_reward=float(rewards.mean()), reward_per_step=rewards.mean(0).tolist())
        return rewards

    def _observe_first_samples(self) -> None:
        """Before the form critic's first judgement: show it select_samples of G's samples, what
        the first batch is judged against."""
        if self.structure is not None and self.structure.generated is None:
            self.structure.observe(phrase_rates(self.tokenizer, self._sample(self.tc.select_samples)[0]))

    def _form_rewards(self, samples: torch.Tensor, metrics: dict[str, Any]) -> torch.Tensor:
        """(B,) the form critic's probability of real for (B, T) ``samples``, which it then observes."""
        rates = phrase_rates(self.tokenizer, samples)
        form = self.structure(rates).to(samples.device)
        self.structure.observe(rates)
        metrics.update(form_reward=float(form.mean()), sample_phrase_rep=float(rates.mean()))
        return form

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
