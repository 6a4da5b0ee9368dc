"""What G's policy-gradient steps are rewarded by: reward sources behind one small interface.

A reward source turns a batch of G's (B, T) samples into (B, T) per-token rewards, probabilities
of real in [0, 1] scaled by its weight. :class:`RolloutReward` is SeqGAN's: D's score of Monte
Carlo completions of each prefix (:func:`rollout.rollout_rewards`). :class:`FormReward` is the form
critic's (:mod:`seqgan_music.structure_critic`): one whole-sample reward given to every token.
:class:`~seqgan_music.adversarial_phase.PolicyGradientPhase` adds up the rewards of its sources.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import torch

from seqgan_music.config import TrainConfig
from seqgan_music.models import Discriminator, Generator, never_drawing
from seqgan_music.rollout import rollout_rewards, update_rollout_policy
from seqgan_music.structure_critic import StructureCritic, phrase_rates
from seqgan_music.tokenizer import Tokenizer

Sample = Callable[[int], tuple[torch.Tensor, torch.Tensor | None]]  # num -> (num, T) samples, their (num, 2) places or None


class RewardSource(Protocol):
    """One source of G's rewards in the adversarial phase."""

    def before_batch(self) -> None:
        """Called before the batch is drawn (a source may draw samples of its own)."""

    def __call__(self, samples: torch.Tensor, place: torch.Tensor | None, metrics: dict[str, Any]) -> torch.Tensor:
        """(B, T) ``samples`` drawn from ``place`` -> (B, T) rewards (its numbers into ``metrics``)."""

    def after_step(self, G: Generator) -> None:
        """Called after G's step on the batch."""


class RolloutReward:
    """D's reward of each prefix of a sample: the mean of D's probability of real over
    ``rollout_num`` completions by ``rollout``, G's delayed copy (moved towards G after each step
    by ``update_rate``), chunked to ``memory_mb``; ``end``: the END token completions never draw (None)."""

    def __init__(self, rollout: Generator, D: Discriminator, rollout_num: int, update_rate: float, memory_mb: int,
                 end: int | None, rng: torch.Generator):
        self.rollout, self.D, self.rollout_num, self.update_rate = rollout, D, rollout_num, update_rate
        self.memory_mb, self.end, self.rng = memory_mb, end, rng

    def before_batch(self) -> None:
        pass

    def __call__(self, samples: torch.Tensor, place: torch.Tensor | None, metrics: dict[str, Any]) -> torch.Tensor:
        with never_drawing(self.rollout, self.end):
            rewards = rollout_rewards(samples, self.rollout, self.D, self.rollout_num, self.memory_mb, self.rng,
                                      place=place)
        metrics.update(mean_reward=float(rewards.mean()), reward_per_step=rewards.mean(0).tolist())
        return rewards

    def after_step(self, G: Generator) -> None:
        update_rollout_policy(self.rollout, G, self.update_rate)


class FormReward:
    """The form critic's reward, ``weight`` times its probability of real of each sample's phrase
    repetition, given to every token. Before its first judgement the critic observes
    ``first_samples`` of G's samples (``sample``), what the first batch is judged against."""

    def __init__(self, critic: StructureCritic, tokenizer: Tokenizer, weight: float, sample: Sample,
                 first_samples: int):
        self.critic, self.tokenizer, self.weight = critic, tokenizer, weight
        self._sample, self.first_samples = sample, first_samples

    def before_batch(self) -> None:
        if self.critic.generated is None:
            self.critic.observe(phrase_rates(self.tokenizer, self._sample(self.first_samples)[0]))

    def __call__(self, samples: torch.Tensor, place: torch.Tensor | None, metrics: dict[str, Any]) -> torch.Tensor:
        rates = phrase_rates(self.tokenizer, samples)
        form = self.critic(rates).to(samples.device)
        self.critic.observe(rates)
        metrics.update(form_reward=float(form.mean()), sample_phrase_rep=float(rates.mean()))
        return self.weight * form[:, None].expand_as(samples)

    def after_step(self, G: Generator) -> None:
        pass


def reward_sources(tc: TrainConfig, rollout: Generator, D: Discriminator, structure: StructureCritic | None,
                   tokenizer: Tokenizer | None, end: int | None, sample: Sample,
                   rng: torch.Generator) -> list[RewardSource]:
    """A run's reward sources: D's rollouts, and the form critic ``structure`` when the run weighs
    it (``tc.structure_reward``; None: off)."""
    sources: list[RewardSource] = [RolloutReward(rollout, D, tc.rollout_num, tc.rollout_update_rate,
                                                 tc.rollout_memory_mb, end, rng)]
    if structure is not None:
        sources.append(FormReward(structure, tokenizer, tc.structure_reward, sample, tc.select_samples))
    return sources
