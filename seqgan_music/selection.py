"""Model selection and the collapse guard: a cheap validation judgement of the generator.

After MLE pre-training and after each adversarial round the trainer judges G without D, whose own
reward is no measure of quality:

- ``score`` (higher is better) is minus the validation NLL: exact over the whole validation set,
  so rounds are compared without sampling noise (on the demo preset over 5 runs it ranked MLE
  against the last round as the fresh critic of ``evaluate`` did; the statistics overlap of
  512 samples, tried first, moved by +-0.01 from round to round and picked noise). Without
  validation windows (the oracle experiment) it is minus the first evaluator's value
  (NLL-oracle); with neither there is nothing to judge by (None) and the newest round counts.
- a round is *eligible* only if its samples are not musically worse than the MLE model's:
  a fixed-seed batch of samples (the same random stream every time) may not raise the silent or
  one-pitch rate by more than ``select_rate_tolerance`` nor lower the mean overlap of
  music-statistics histograms with the validation windows by more than ``select_overlap_drop``;
  its validation NLL may exceed the MLE model's by at most ``select_nll_budget``.
- with ``select_latest`` (the ``tune`` preset) every eligible round replaces the best model
  whatever its score: there the adversarial rounds are what adds phrase repetition, which the
  validation NLL does not see: in every measured run the last round repeated phrases more than
  the round of lowest validation NLL (docs/experiments/whole-tunes-8-bars.md).

The same samples give G's per-token entropy and the silent and one-pitch rates that the collapse
guard compares with the MLE model's.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass

import numpy as np
import torch

from seqgan_music.config import TrainConfig
from seqgan_music.metrics import STAT_NAMES, Notes, histogram_overlap, music_stats, one_pitch_rate, silent_rate
from seqgan_music.models import Generator, eval_mode, never_drawing, places_like
from seqgan_music.policy_gradient import entropy_per_token
from seqgan_music.tokenizer import Tokenizer

SELECTION_SEED = 20170204  # the fixed stream of the judgement samples
VALID_STATS_WINDOWS = 4096  # validation windows whose statistics the samples are compared with


def stats_table(melodies: list[Notes], windows: np.ndarray, tokenizer: Tokenizer) -> dict[str, np.ndarray]:
    """Music statistics of (N, T) windows, decoded to ``melodies`` -> {name: (N,) values}."""
    rows = [music_stats(notes, w, tokenizer.time_steps(w)) for notes, w in zip(melodies, windows)]
    return {name: np.array([r[name] for r in rows]) for name in STAT_NAMES}


@dataclass
class Judgement:
    """One validation judgement of G. ``score``: higher is better (see the module doc)."""

    score: float | None
    entropy: float  # mean per-token entropy (nats) of G's next-token distribution on its samples
    silent: float  # share of samples without a note (0 without a tokenizer)
    one_pitch: float  # share of samples whose notes share one pitch
    overlap: float | None  # mean statistics overlap with the validation windows (music runs)
    valid_nll: float | None

    def as_metrics(self) -> dict[str, float]:
        return {f"select_{k}": float(v) for k, v in asdict(self).items() if v is not None and k != "valid_nll"}


class Judge:
    """Judges generators against the validation windows of one run (``valid``: (M, T) ids; their
    places in their tunes ``place`` (M, 2), where the judged samples start)."""

    def __init__(self, tokenizer: Tokenizer | None, valid: torch.Tensor, seq_len: int, num: int,
                 place: torch.Tensor | None = None):
        self.tokenizer, self.seq_len, self.num = tokenizer, seq_len, num
        self.place = place
        self.valid_stats = None
        if tokenizer is not None and len(valid):
            windows = valid[:VALID_STATS_WINDOWS].cpu().numpy()
            self.valid_stats = stats_table(tokenizer.decode_all(windows), windows, tokenizer)

    @torch.no_grad()
    def __call__(self, G: Generator, metrics: dict[str, float], reference: Judgement | None) -> Judgement:
        """Judge ``G``; ``metrics`` are the trainer's evaluation of it (valid_nll, evaluators) only;
        ``reference`` is the MLE model's judgement (None when judging the MLE model itself)."""
        device = G.out.weight.device
        gen = torch.Generator(device=device).manual_seed(SELECTION_SEED)
        place = places_like(G, None if self.place is None else self.place.to(device), self.num, gen)
        with eval_mode(G), never_drawing(G, self.tokenizer.end_token if self.tokenizer is not None else None):
            samples = G.sample(self.num, self.seq_len, generator=gen, place=place)  # like the windows compared with
            entropy = float(entropy_per_token(G.teacher_forced_logits(samples, place)).mean())
        valid_nll = metrics.get("valid_nll")
        silent = one_pitch = 0.0
        overlap = None
        if self.tokenizer is not None:
            windows = samples.cpu().numpy()
            melodies = self.tokenizer.decode_all(windows)
            silent, one_pitch = silent_rate(melodies), one_pitch_rate(melodies)
            if self.valid_stats is not None:
                gen_stats = stats_table(melodies, windows, self.tokenizer)
                overlap = float(np.mean([histogram_overlap(gen_stats[k], self.valid_stats[k]) for k in STAT_NAMES]))
        judged = ([valid_nll] if valid_nll is not None else []) + [v for k, v in metrics.items() if k != "valid_nll"]
        score = -float(judged[0]) if judged else None
        return Judgement(score, entropy, silent, one_pitch, overlap, valid_nll)


def eligible(j: Judgement, reference: Judgement, tc: TrainConfig) -> bool:
    """Whether a round may become the best model: its melodies not musically worse than the MLE
    model's (see the module doc) and its validation NLL within the budget."""
    if j.silent > reference.silent + tc.select_rate_tolerance or j.one_pitch > reference.one_pitch + tc.select_rate_tolerance:
        return False
    if j.overlap is not None and reference.overlap is not None and j.overlap < reference.overlap - tc.select_overlap_drop:
        return False
    return j.valid_nll is None or reference.valid_nll is None or j.valid_nll <= reference.valid_nll + tc.select_nll_budget


def collapse_reason(j: Judgement, reference: Judgement, pinned_rounds: int, tc: TrainConfig) -> str | None:
    """Why G has collapsed compared with its MLE model, or None. ``pinned_rounds``: consecutive
    rounds whose mean reward stayed within 0.02 of 0 or 1 (D no longer tells samples apart)."""
    if j.entropy < tc.collapse_entropy * reference.entropy:
        return (f"G's next-token entropy fell to {j.entropy:.2f} nats (MLE model {reference.entropy:.2f}): "
                "it keeps writing the same few tokens")
    if j.silent > reference.silent + tc.collapse_rate:
        return f"{j.silent:.0%} of G's melodies are silent (MLE model {reference.silent:.0%})"
    if j.one_pitch > reference.one_pitch + tc.collapse_rate:
        return f"{j.one_pitch:.0%} of G's melodies use one pitch only (MLE model {reference.one_pitch:.0%})"
    if tc.collapse_pinned_rounds and pinned_rounds >= tc.collapse_pinned_rounds:
        return f"the mean reward stayed pinned near 0 or 1 for {pinned_rounds} rounds: D's reward carries no signal"
    return None


def fresh_selection() -> dict:
    """:attr:`BestModel.state` before any judgement: no reference, no best score or unit yet."""
    return {"reference": None, "best_score": None, "best_unit": None, "pinned": 0}


class BestModel:
    """The best generator so far and how it was chosen, for a run of ``units`` (its schedule of
    (phase, index)): pre-training's best unit by validation NLL (``mle_keep_best``), then the
    adversarial phase's rounds by ``judge`` against the judgement of the model it started from.
    ``state`` is what a checkpoint keeps of it: the reference judgement, the best score and unit,
    the rounds of pinned reward and pre-training's best NLL and unit."""

    def __init__(self, judge: Judge, tc: TrainConfig, units: list[tuple[str, int]], G: Generator):
        self.judge, self.tc, self.units = judge, tc, units
        self.state: dict = fresh_selection()
        self.generator = copy.deepcopy(G.state_dict())  # the best weights

    def keep(self, G: Generator) -> None:
        """G's current weights become the best model (a fine-tuning start, an old checkpoint)."""
        self.generator = copy.deepcopy(G.state_dict())

    def after_mle_unit(self, G: Generator, nll: float | None, unit: int) -> int:
        """Keep MLE unit ``unit``'s G if its validation ``nll`` is pre-training's lowest (with
        ``mle_keep_best``). -> pre-training's best unit so far."""
        if self.tc.mle_keep_best and nll is not None and nll < self.state.get("mle_best_nll", math.inf):
            self.state.update(mle_best_nll=nll, mle_best_epoch=unit)
            self.keep(G)
        return self.state.get("mle_best_epoch", unit)

    def start(self, G: Generator, evaluation: dict[str, float], unit: int) -> dict:
        """G (after units[unit]; -1: before any; ``evaluation``: its validation numbers) starts
        the adversarial phase: the reference judgement of the collapse guard and the first best
        model. -> its metrics."""
        self.keep(G)
        j = self.judge(G, evaluation, None)
        self.state.update(reference=vars(j).copy(), best_score=j.score, best_unit=unit, pinned=0)
        return {**j.as_metrics(), "best_unit": unit, "best_model": self.description()}

    def after_round(self, G: Generator, evaluation: dict[str, float], rewards: torch.Tensor | None,
                    unit: int) -> tuple[dict, str | None]:
        """Judge adversarial unit ``unit``'s G; keep it if it is the best eligible one. -> its
        metrics and the collapse guard's reason to stop (None: go on)."""
        reference = Judgement(**self.state["reference"])
        j = self.judge(G, evaluation, reference)
        if rewards is not None:
            pinned = min(float(rewards.mean()), 1 - float(rewards.mean())) < 0.02
            self.state["pinned"] = self.state["pinned"] + 1 if pinned else 0
        best = self.state["best_score"]
        newer_wins = self.tc.select_latest or j.score is None or best is None
        if eligible(j, reference, self.tc) and (newer_wins or j.score > best):
            self.keep(G)
            self.state.update(best_score=j.score, best_unit=unit)
        metrics = {**j.as_metrics(), "best_unit": self.state["best_unit"], "best_model": self.description()}
        return metrics, collapse_reason(j, reference, self.state["pinned"], self.tc)

    def description(self) -> str:
        """Where the best model comes from, in words."""
        best_unit = self.state["best_unit"]
        if best_unit is None:
            return "the newest state"
        if best_unit < 0 or self.units[best_unit][0] == "d_pretrain":
            return "the start of the adversarial phase"
        phase, unit = self.units[best_unit]
        return f"adversarial round {unit + 1}" if phase == "adversarial" else "the end of MLE pre-training"

    def kept_mle(self, units_done: int) -> bool:
        """Whether the adversarial phase ran (within the first ``units_done`` units) and none of
        its rounds became the best model (the MLE model was kept)."""
        best_unit = self.state["best_unit"]
        ran = any(phase == "adversarial" for phase, _ in self.units[:units_done])
        return ran and (best_unit is None or best_unit < 0 or self.units[best_unit][0] != "adversarial")
