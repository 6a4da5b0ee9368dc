"""The SeqGAN schedule: MLE pre-training of G, pre-training of D, then the adversarial loop.

Training is a list of *units* (one MLE epoch, one D pre-training round, one adversarial round).
After each unit the trainer writes ``last.pt`` atomically (all weights, optimizers and RNG states)
and appends one line to ``metrics.jsonl``, so ``resume`` continues exactly where the last unit
ended. It never prints: it emits events (dicts) to callbacks, which the CLI turns into progress
bars and the app into live charts.

The work of each phase lives in its own object: :class:`~seqgan_music.mle_phase.MLEPhase` (G's
budgeted MLE units), :class:`~seqgan_music.discriminator_phase.DiscriminatorPhase` (D's rounds and
its check on a round's samples), :class:`~seqgan_music.adversarial_phase.PolicyGradientPhase` (G's
policy-gradient steps, rewarded by the sources of :mod:`seqgan_music.rewards`) and :class:`~seqgan_music.selection.BestModel` (the best model so far); what
a checkpoint holds is :mod:`seqgan_music.trainer_state`, the events and metrics lines
:mod:`seqgan_music.training_events`. The trainer keeps the schedule and the ranks of a distributed run.

Model selection: the end of MLE pre-training and every adversarial round are judged on fixed-seed
samples (:mod:`seqgan_music.selection`); the best so far is written to ``best.pt``. When G
collapses (entropy, silent or one-pitch melodies, a pinned reward) the trainer rolls G back to the
best model and ends the adversarial phase.

"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel as DDP

from seqgan_music.adversarial_phase import PolicyGradientPhase
from seqgan_music.config import RunConfig
from seqgan_music.d_augment import PitchAugment
from seqgan_music.discriminator_phase import DiscriminatorPhase
from seqgan_music.distributed import DistInfo, barrier
from seqgan_music.errors import UserError
from seqgan_music.guarded_step import GuardedStep
from seqgan_music.mle_phase import MLEPhase
from seqgan_music.models import (
    Discriminator,
    Generator,
    eval_mode,
    never_drawing,
    places_like,
)
from seqgan_music.rewards import reward_sources
from seqgan_music.run_folder import RunFolder
from seqgan_music.selection import BestModel, Judge
from seqgan_music.structure_critic import StructureCritic, phrase_rates, rate_histogram, real_form
from seqgan_music.tokenizer import Tokenizer
from seqgan_music.trainer_state import restore, saved_state
from seqgan_music.training_events import Callback, TrainingEvents
from seqgan_music.training_windows import training_windows


class TrainingStopped(Exception):
    """Raised inside the trainer when a stop was requested; the last checkpoint stays valid."""


class TrainControl:
    """Thread-safe pause/stop switches, checked between batches."""

    def __init__(self) -> None:
        self.stop_requested = threading.Event()
        self.running = threading.Event()
        self.running.set()

    def pause(self) -> None:
        self.running.clear()

    def resume(self) -> None:
        self.running.set()

    def stop(self) -> None:
        self.stop_requested.set()
        self.running.set()

    def wait_unless_stopped(self) -> None:
        """Block while paused; raise TrainingStopped once a stop was requested (called between steps)."""
        while not self.running.wait(0.1):
            pass
        if self.stop_requested.is_set():
            raise TrainingStopped()


class Trainer:
    """Runs the schedule of ``cfg.train`` on ``train`` (N, T) windows; ``valid`` (M, T) may be empty.

    ``evaluators`` map a metric name to ``fn(generator) -> float``, logged after MLE epochs and
    adversarial rounds (the oracle experiment's NLL-oracle is one).
    """

    def __init__(
        self, cfg: RunConfig, train: torch.Tensor, valid: torch.Tensor, run_dir: str, device: torch.device,
        tokenizer: Tokenizer | None = None, callbacks: list[Callback] | None = None,
        evaluators: dict[str, Callable[[Generator], float]] | None = None, control: TrainControl | None = None,
        dist_info: DistInfo | None = None, places: tuple[torch.Tensor, torch.Tensor] | None = None,
    ):
        self.dist = dist_info or DistInfo(device=device)
        self.cfg, self.run_dir, self.device, self.tokenizer = cfg, run_dir, self.dist.device, tokenizer
        # D never judges where tunes end, and the KL tie on G's whole law pulls END's probability
        # towards the MLE model's (:func:`never_drawing`)
        self.windows = training_windows(train, valid, places, self.device,
                                        tokenizer.end_token if tokenizer is not None else None,
                                        bool(cfg.generator.bars_left and cfg.generator.bar_tokens))
        self.callbacks = list(callbacks or [])
        self.evaluators = dict(evaluators or {})
        self.control = control or TrainControl()
        tc = cfg.train
        if tc.batch_size % self.dist.world or tc.d_samples % self.dist.world:
            raise UserError(f"batch_size and d_samples must be multiples of the {self.dist.world} processes")
        if tc.structure_reward and tokenizer is None:
            raise UserError("structure_reward needs a music dataset (it judges the samples' notes)")
        self.files = RunFolder(run_dir)
        self.events = TrainingEvents(self.callbacks, self.dist, self.files, self.control)
        self.step = GuardedStep(self.dist, tc.max_nonfinite, self.files.last)
        self._build_models()
        self.stop_early = False
        self.mle_over = False  # set by the MLE unit that ends pre-training (its last, or its patience ran out)
        self.units_done = 0
        if self.dist.is_main:
            os.makedirs(run_dir, exist_ok=True)
        barrier(self.dist)

    def _build_models(self) -> None:
        """G, D, G's rollout and reference copies, the best model, the form critic and the phases,
        from the run's seed (identical initial weights on every rank)."""
        cfg, tc, tokenizer, device = self.cfg, self.cfg.train, self.tokenizer, self.device
        torch.manual_seed(tc.seed)
        self.G = Generator(cfg.generator).to(device)
        self.D = Discriminator(cfg.discriminator).to(device)
        self.rollout = self.G.clone()
        self.reference = self.G.clone().requires_grad_(False)  # frozen MLE model (KL tie)
        self.units = tc.units()
        self.best = BestModel(Judge(tokenizer, self.windows.held_out, cfg.seq_len, tc.select_samples,
                                    self.windows.held_out_place), tc, self.units, self.G)
        self.structure = StructureCritic(rate_histogram(phrase_rates(tokenizer, self.windows.real))) \
            if tc.structure_reward else None
        # what checkpoints keep of the real windows' form for generate's drafts (:func:`real_form`),
        # worked out before the first unit so that no unit's time includes it; by the process that saves
        self.form_real = real_form(tokenizer, self.windows.real) if tokenizer is not None and self.dist.is_main else None
        self.rng = torch.Generator(device=device)
        self._seed_rank_streams(0)
        # DDP wrappers average gradients over ranks; single process: the models themselves
        self.G_train = DDP(self.G) if self.dist.enabled else self.G
        self.mle = MLEPhase(self.G, self.G_train, tc, self.dist, self.windows.train, self.windows.train_place,
                            self.step, self.events.step)
        self.d_phase = DiscriminatorPhase(self.D, tc, self.dist, self.windows.real, self.windows.held_out,
                                          lambda num: self._generate(num)[0], self.step, self.events.step,
                                          self.rng, PitchAugment(tokenizer, tc.d_transpose)
                                          if tokenizer is not None and tc.d_transpose else None)
        sources = reward_sources(tc, self.rollout, self.d_phase.judge, self.structure, tokenizer, self.windows.end,
                                 self._generate, self.rng)
        self.pg = PolicyGradientPhase(self.G, self.G_train, self.reference, sources, tc, self.dist.world,
                                      self.windows.end, self._generate, self.step)

    def _seed_rank_streams(self, units_done: int) -> None:
        """Rank 0 draws from the run's seed; other ranks from their own streams (fresh samples)."""
        seed = self.cfg.train.seed
        if self.dist.rank:
            seed = seed + 7919 * self.dist.rank + 104729 * units_done
            torch.manual_seed(seed)
        self.rng.manual_seed(seed)

    # ------------------------------------------------------------ persistence
    @property
    def last_path(self) -> str:
        return self.files.last

    def state(self) -> dict[str, Any]:
        return saved_state(self)

    def start_from(self, generator: dict[str, Any]) -> None:
        """Fine-tuning: G, its rollout copy, the MLE reference and the best model start from
        ``generator``'s weights (:func:`base_model.starting_generator`) instead of fresh ones."""
        for model in (self.G, self.rollout, self.reference):
            model.load_state_dict(generator)
        self.best.keep(self.G)

    def load_state(self, path: str) -> None:
        """Restore everything from a checkpoint of this run (same configs required)."""
        restore(self, path)
        if self.dist.rank:
            self._seed_rank_streams(self.units_done)
        if self.dist.is_main:
            with self.files.locked():  # not while another training writes them
                self.files.truncate_metrics(self.units_done)
        barrier(self.dist)

    # ------------------------------------------------------------ main loop
    def run(self, resume: bool = False) -> str:
        """Train to the end of the schedule, holding the run folder's lock. Returns 'done' or
        'stopped' (checkpoint kept)."""
        with self.files.locked() if self.dist.is_main else contextlib.nullcontext():
            if resume and os.path.exists(self.last_path):
                self.load_state(self.last_path)
            elif self.units_done == 0 and self.dist.is_main:
                self.files.truncate_metrics(0)  # rows of a start killed before its first checkpoint
            self._check_data()
            return self._run_units()

    def _run_units(self) -> str:
        try:
            while self.units_done < len(self.units):
                phase, index = self.units[self.units_done]
                new_best = self.best.state["reference"] is None and phase == "adversarial"
                if new_best:  # no MLE epochs in this schedule: the adversarial phase starts from here
                    self._start_adversarial(self._evaluate(), self.units_done - 1)
                self.mle_over = False
                metrics = self._run_unit(phase, index)
                new_best = new_best or metrics.get("best_unit") == self.units_done
                following = len(self.units) if self.stop_early else self._next_unit(self.mle_over)
                self.events.metrics(phase, index, metrics, self.units_done, len(self.units), following)
                self.units_done = following
                if self.dist.is_main:
                    self.files.save(self.state(), end_of_mle=self.mle_over,
                                    best_generator=self.best.generator if new_best else None)
        except TrainingStopped:
            return "stopped"
        if self.dist.is_main:
            self.files.save_missing(self.state())
        barrier(self.dist)
        return "done"

    def _next_unit(self, mle_over: bool) -> int:
        """The unit after the current one: past the MLE units still scheduled once pre-training is over."""
        following = self.units_done + 1
        while mle_over and following < len(self.units) and self.units[following][0] == "mle":
            following += 1
        return following

    def _check_data(self) -> None:
        cfg = self.cfg
        for name, data in (("training", self.windows.train), ("validation", self.windows.valid)):
            if data.numel() and (data.shape[1] != cfg.seq_len or int(data.min()) < 0
                                 or int(data.max()) >= cfg.generator.vocab_size):
                raise UserError(f"the {name} windows ({data.shape[1]} tokens, ids up to {int(data.max())}) do not fit "
                                f"this run's models (T {cfg.seq_len}, {cfg.generator.vocab_size} tokens)")

    def _run_unit(self, phase: str, index: int) -> dict[str, Any]:
        if phase == "mle":
            return self._mle_unit(index)
        if phase == "d_pretrain":
            return self.d_phase.round("d_pretrain")
        return self._adversarial_unit(index)

    # ------------------------------------------------------------ units
    def _mle_unit(self, epoch: int) -> dict[str, Any]:
        """An MLE unit, then its evaluation; pre-training's best unit is kept, and its end (the
        last unit, or patience run out) starts the adversarial phase."""
        tc = self.cfg.train
        mle_loss = self.mle.train_unit(epoch)
        evaluation = self._evaluate()
        metrics = {"mle_loss": mle_loss, **evaluation}
        best = self.best.after_mle_unit(self.G, evaluation.get("valid_nll"), epoch)
        self.mle_over = epoch == tc.mle_epochs - 1 or bool(tc.mle_patience and epoch - best >= tc.mle_patience)
        if self.mle_over:
            if best != epoch:  # pre-training ends with its best unit's weights
                self.G.load_state_dict(self.best.generator)
                evaluation = self._evaluate()
                metrics.update(mle_kept_epoch=best, mle_kept_valid_nll=evaluation.get("valid_nll"))
            metrics.update(self._start_adversarial(evaluation, self.units_done))
        self.events.sample(self.G, self.windows.real_place, self.cfg.seq_len, "mle", epoch, None)
        return metrics

    def _start_adversarial(self, evaluation: dict[str, float], unit: int) -> dict[str, Any]:
        """G's current state (after units[unit]; -1: before any) becomes the rollout policy, the
        frozen reference of the KL tie, the reference judgement of the collapse guard and the
        first best model. ``evaluation``: :meth:`_evaluate`'s numbers for that state."""
        self.rollout.load_state_dict(self.G.state_dict())
        self.reference.load_state_dict(self.G.state_dict())
        return self.best.start(self.G, evaluation, unit)

    @torch.no_grad()
    def _evaluate(self) -> dict[str, float]:
        out = {}
        with eval_mode(self.G):
            if len(self.windows.nll):
                nll = [float(self.G.nll(b, f)) * len(b) for b, f in zip(self.windows.nll.split(512), self.windows.nll_place.split(512))]
                out["valid_nll"] = sum(nll) / len(self.windows.nll)
            for name, fn in self.evaluators.items():
                out[name] = float(fn(self.G))
        return out

    def _generate(self, num: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(num, T) samples that never end a tune and, for a generator with bar features, the (num, 2)
        places they start at: those of random real windows, so the samples are spread over
        tunes as the windows D compares them with are (None without bar features: all start at 0)."""
        T = self.cfg.seq_len
        place = places_like(self.G, self.windows.real_place, num, self.rng)
        with never_drawing(self.G, self.windows.end):
            samples = [self.G.sample(min(1024, num - i), T, generator=self.rng,
                                     place=None if place is None else place[i : i + 1024])
                       for i in range(0, num, 1024)]
        return torch.cat(samples), place

    def _adversarial_unit(self, index: int) -> dict[str, Any]:
        tc = self.cfg.train
        metrics: dict[str, Any] = {}
        rewards = None
        steps = tc.g_steps + tc.d_steps
        for g in range(tc.g_steps):
            self.events.step("adversarial", g, steps)
            rewards = self.pg.step(metrics)
        check = self.d_phase.check(rewards[:, -1]) if rewards is not None else None
        skip_d = self.d_phase.skips_steps(check)
        for d in range(tc.d_steps):
            self.events.step("adversarial", tc.g_steps + d, steps)
            if not skip_d:
                metrics.update(self.d_phase.round("adversarial"))
        if check is not None:
            metrics.update(check, d_skipped=float(skip_d))
        evaluation = self._evaluate()
        metrics.update(evaluation)
        metrics.update(self._select(evaluation, rewards))
        if index % max(tc.sample_every, 1) == 0 or index == tc.adv_rounds - 1 or self.stop_early:
            self.events.sample(self.G, self.windows.real_place, self.cfg.seq_len, "adversarial", index,
                               None if rewards is None else rewards[:16].tolist())
        return metrics

    def _select(self, evaluation: dict[str, float], rewards: torch.Tensor | None) -> dict[str, Any]:
        """Judge this round's G (``evaluation``: :meth:`_evaluate`'s numbers), kept if it is the
        best model; on collapse roll back to the best model and end the adversarial phase
        (``stop_early``)."""
        out, reason = self.best.after_round(self.G, evaluation, rewards, self.units_done)
        if reason:
            self.G.load_state_dict(self.best.generator)
            self.rollout.load_state_dict(self.best.generator)
            self.stop_early = True
            out["notice"] = f"collapse: {reason}; rolled G back to the best model ({self.best.description()}) " \
                            "and ended training"
            if self.dist.is_main:
                self.events.emit({"event": "notice", "message": out["notice"]})
        return out
