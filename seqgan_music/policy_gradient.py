"""The generator's adversarial objective: REINFORCE with a baseline, normalised advantages and a
KL tie to the frozen MLE model. Pure tensor functions, no I/O.

Plain SeqGAN (the paper) maximises sum_t Q_t log G(y_t | Y_1:t-1) with rewards Q in [0, 1]: every
sampled token is pushed up, by more when D likes the sequence. With a per-step baseline b_t (the
batch's mean reward at step t) only tokens better than their peers are pushed up; dividing by the
batch's standard deviation keeps the step size independent of how confident D is. The KL term
KL(G(. | Y_1:t-1) || G_MLE(. | Y_1:t-1)), exact over the vocabulary at each visited prefix, keeps G
near the distribution it learnt by maximum likelihood, so it cannot collapse onto a few tokens.
"""

from __future__ import annotations

import torch

BASELINES = ("none", "batch")


def advantages(rewards: torch.Tensor, baseline: str = "batch", normalize: bool = True, eps: float = 1e-6) -> torch.Tensor:
    """(B, T) rewards -> (B, T) advantages.

    ``baseline``: "none" keeps the rewards (the paper), "batch" subtracts each step's mean over
    the B samples. ``normalize`` divides by the standard deviation over all B x T entries (after
    the baseline), so a batch where D scores everything alike gives small steps, not noise
    blown up to unit size: entries are divided by max(std, ``eps``).
    """
    if baseline not in BASELINES:
        raise ValueError(f"unknown baseline {baseline!r}")
    adv = rewards - rewards.mean(dim=0, keepdim=True) if baseline == "batch" else rewards
    if normalize:
        adv = adv / adv.std().clamp_min(eps) if adv.numel() > 1 else adv
    return adv


def kl_per_token(logits: torch.Tensor, reference_logits: torch.Tensor) -> torch.Tensor:
    """KL(softmax(logits) || softmax(reference_logits)) in nats for each position: (B, T, V) -> (B, T)."""
    log_p = torch.log_softmax(logits.float(), dim=-1)
    log_q = torch.log_softmax(reference_logits.float(), dim=-1)
    return (log_p.exp() * (log_p - log_q)).sum(dim=-1)


def entropy_per_token(logits: torch.Tensor) -> torch.Tensor:
    """Entropy (nats) of softmax(logits) at each position: (B, T, V) -> (B, T)."""
    log_p = torch.log_softmax(logits.float(), dim=-1)
    return -(log_p.exp() * log_p).sum(dim=-1)


def policy_gradient_loss(log_probs: torch.Tensor, adv: torch.Tensor, kl: torch.Tensor | None = None,
                         kl_coef: float = 0.0) -> torch.Tensor:
    """Scalar loss whose gradient is the policy gradient: -(sum_t A_t log G(y_t)) + kl_coef sum_t KL_t,
    averaged over the batch. ``log_probs``, ``adv`` and ``kl``: (B, T); ``adv`` carries no gradient."""
    loss = -(log_probs * adv.detach()).sum(dim=1).mean()
    if kl is not None and kl_coef:
        loss = loss + kl_coef * kl.sum(dim=1).mean()
    return loss
