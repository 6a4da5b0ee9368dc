"""How long a training run takes: a probe before it starts, the time left while it runs.

A run is a list of units (:meth:`TrainConfig.units`) of three phases: MLE units, D pre-training
rounds and adversarial rounds. :func:`probe` times one unit of each phase on a scratch copy of the
run (its models, its data, a short MLE unit) on this machine, before training; the one-time costs
of a run's first steps count as its start-up. :class:`Clock` turns the probe's unit costs and the
units measured so far into the time left of the whole run: a phase measured in this run costs the
mean of its units, a phase not measured yet the probe's figure. (Scaling the probe's figures by
how far it was off for the phases measured so far made the clock worse: one slow MLE unit moved
the forecast of every adversarial round.)

MLE pre-training with patience may end before its last unit; the clock expects it to run
:func:`expected_mle_units` units until it does. An adversarial round skips its D steps while D
is far enough ahead (``d_max_acc``): the whole-tune preset's rounds cost a few seconds more with
them than without, and some rounds skip them, more of them late in the phase. The clock prices the
two kinds of round apart and expects the share of rounds that run D seen so far, drawn toward an
even share while few rounds are seen (:data:`D_SHARE_PRIOR`, :data:`D_SHARE_PRIOR_ROUNDS`).
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from dataclasses import dataclass, field

import torch

from seqgan_music.config import RunConfig
from seqgan_music.dataset import PreparedDataset

PROBE_MLE_BATCHES = 10  # MLE batches the probe runs (it times those past the first two)
MLE_EPOCHS_TO_BEST = 6  # epochs over the windows after which validation NLL typically stops falling (60-630 tunes)
D_SKIPPED = "adversarial, D skipped"  # the clock's name for adversarial rounds that skipped their D steps
D_SHARE_PRIOR = 0.5  # share of adversarial rounds expected to run D steps before any round is seen ...
D_SHARE_PRIOR_ROUNDS = 4  # ... weighed as this many rounds (demo runs 0.7-1.0 of its rounds' D steps, tune 0.7-0.75)


@dataclass
class Estimate:
    """Seconds per unit of each phase (``unit_seconds``: mle, d_pretrain, adversarial) and the
    run's start-up (``startup``: building the models and what they are judged against, and the
    one-time costs of the first steps)."""

    unit_seconds: dict[str, float]
    startup: float


def expected_mle_units(cfg: RunConfig, train_windows: int) -> int:
    """MLE units a run is expected to run: all of them without patience, or with G's dropout
    (validation NLL then falls for longer: the tune preset's was still falling after 14 epochs of
    630 tunes); else the units that read :data:`MLE_EPOCHS_TO_BEST` epochs of ``train_windows``
    windows, plus the patience."""
    tc = cfg.train
    if not tc.mle_patience or cfg.generator.dropout:
        return tc.mle_epochs
    epoch_batches = -(-train_windows // tc.batch_size)
    return min(tc.mle_epochs, -(-MLE_EPOCHS_TO_BEST * epoch_batches // tc.mle_batches_per_unit(train_windows))
               + tc.mle_patience)


def probe(cfg: RunConfig, dataset: PreparedDataset, device: torch.device) -> Estimate:
    """Time one unit of each phase of ``cfg`` on ``dataset`` (a scratch run, thrown away): an MLE
    unit from :data:`PROBE_MLE_BATCHES` batches and its evaluation, the second of two D rounds, an
    adversarial round. Costs about a run's start-up, an adversarial round and two D rounds."""
    from seqgan_music.trainer import Trainer

    tc = cfg.train
    scratch = dataclasses.replace(cfg, train=dataclasses.replace(
        tc, mle_epochs=1, mle_unit_batches=PROBE_MLE_BATCHES, mle_patience=0, d_pretrain_rounds=2, adv_rounds=1,
        d_max_acc=1.0))  # a round with its D steps (D far ahead of the probe's barely trained G would skip them)
    stamps: list[tuple[float, dict]] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="seqgan-probe-") as folder:
        trainer = Trainer(scratch, dataset.train, dataset.valid, folder, device, dataset.tokenizer,
                          callbacks=[lambda event: stamps.append((time.perf_counter(), event))],
                          places=(dataset.train_place, dataset.valid_place))
        built = time.perf_counter()
        trainer.run()
        evaluated = time.perf_counter()
        trainer._evaluate()  # what each MLE unit ends with
        evaluation = time.perf_counter() - evaluated
    ends = [(e["phase"], t) for t, e in stamps if e["event"] == "metrics"]  # mle, d_pretrain twice, adversarial
    (_, mle_end), (_, d_first), (_, d_second), (_, adversarial_end) = ends
    steps = [t for t, e in stamps if e["event"] == "progress" and e["phase"] == "mle"][2:]  # past the warm-up
    batch = (steps[-1] - steps[0]) / (len(steps) - 1)
    mle = tc.mle_batches_per_unit(len(dataset.train)) * batch + evaluation
    d_round = d_second - d_first  # the first D round also pays D's first steps
    once = (mle_end - built - PROBE_MLE_BATCHES * batch - evaluation) + (d_first - mle_end - d_round)
    return Estimate(unit_seconds={"mle": mle, "d_pretrain": d_round, "adversarial": adversarial_end - d_second},
                    startup=built - started + max(once, 0.0))


@dataclass
class Clock:
    """The time left of a run: ``schedule`` (each unit's phase), ``expected_mle`` (MLE units it is
    expected to run, :func:`expected_mle_units`) and the probe's ``estimate`` (None: phases not
    measured yet are left out and named by :meth:`unmeasured`)."""

    schedule: list[str]
    expected_mle: int
    estimate: Estimate | None = None
    d_steps: int = 1  # D rounds in an adversarial round that runs them
    measured: dict[str, list[float]] = field(default_factory=dict)  # phase (or D_SKIPPED) -> seconds of each unit

    @classmethod
    def for_run(cls, cfg: RunConfig, train_windows: int, estimate: Estimate | None = None) -> Clock:
        return cls([phase for phase, _ in cfg.train.units()], expected_mle_units(cfg, train_windows), estimate,
                   cfg.train.d_steps)

    def observe(self, event: dict, seconds: float) -> None:
        """A unit's metrics ``event`` (its phase; ``d_skipped`` in adversarial rounds) that took ``seconds``."""
        skipped = event["phase"] == "adversarial" and event.get("d_skipped")
        self.measured.setdefault(D_SKIPPED if skipped else event["phase"], []).append(seconds)

    def unit_seconds(self) -> dict[str, float]:
        """Each phase's expected seconds per unit: the mean of its measured units past the first
        (which also pays one-time costs: the form critic's first samples, D's first steps in
        the rounds), else the probe's figure, else the first unit's; an adversarial round as the
        expected mix of rounds with and without D steps (:meth:`_adversarial_round`)."""
        probed = self.estimate.unit_seconds if self.estimate else {}
        costs = probed | {phase: sum(d[1:]) / len(d[1:]) if len(d) > 1 else probed.get(phase, d[0])
                          for phase, d in self.measured.items() if d and phase != D_SKIPPED}
        round_cost = self._adversarial_round(costs)
        if round_cost is not None:
            costs["adversarial"] = round_cost
        return costs

    def _adversarial_round(self, costs: dict[str, float]) -> float | None:
        """Seconds of an adversarial round to come: rounds with D steps (``costs``) and without
        (measured, else those less D's rounds), mixed by the share expected to run D steps."""
        with_d, skipped = costs.get("adversarial"), self.measured.get(D_SKIPPED, [])
        d_part = self.d_steps * costs["d_pretrain"] if "d_pretrain" in costs else None
        without_d = sum(skipped) / len(skipped) if skipped else None
        if without_d is None and with_d is not None and d_part is not None:
            without_d = max(with_d - d_part, 0.0)
        if with_d is None and without_d is not None and d_part is not None:
            with_d = without_d + d_part
        if with_d is None or without_d is None:
            return with_d if with_d is not None else without_d
        ran = len(self.measured.get("adversarial", []))
        share = (ran + D_SHARE_PRIOR * D_SHARE_PRIOR_ROUNDS) / (ran + len(skipped) + D_SHARE_PRIOR_ROUNDS)
        return share * with_d + (1 - share) * without_d

    def remaining(self, next_unit: int) -> list[str]:
        """The phases of the units expected to run from ``next_unit`` on (MLE pre-training still
        under way runs to :attr:`expected_mle`, and at least the unit it is in)."""
        rest = self.schedule[next_unit:]
        if not rest or rest[0] != "mle":
            return rest
        later = [phase for phase in rest if phase != "mle"]
        return ["mle"] * max(self.expected_mle - next_unit, 1) + later

    def left(self, next_unit: int, into_unit: float = 0.0) -> float:
        """Seconds left when units up to ``next_unit`` are done and ``into_unit`` seconds have
        passed in the unit under way."""
        costs = self.unit_seconds()
        remaining = self.remaining(next_unit)
        left = sum(costs.get(phase, 0.0) for phase in remaining)
        if remaining and remaining[0] in costs:
            left -= min(into_unit, costs[remaining[0]])
        return left

    def total(self) -> float:
        """Seconds of the whole run from its start, the start-up included (0 without an estimate)."""
        return (self.estimate.startup + self.left(0)) if self.estimate else 0.0

    def unmeasured(self, next_unit: int) -> list[str]:
        """Phases still to come that neither this run nor the probe has measured."""
        costs = self.unit_seconds()
        return [phase for phase in dict.fromkeys(self.remaining(next_unit)) if phase not in costs]
