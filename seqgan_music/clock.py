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
:func:`expected_mle_units` units until it does.
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
    measured: dict[str, list[float]] = field(default_factory=dict)  # phase -> seconds of each unit measured

    @classmethod
    def for_run(cls, cfg: RunConfig, train_windows: int, estimate: Estimate | None = None) -> Clock:
        return cls([phase for phase, _ in cfg.train.units()], expected_mle_units(cfg, train_windows), estimate)

    def observe(self, phase: str, seconds: float) -> None:
        self.measured.setdefault(phase, []).append(seconds)

    def unit_seconds(self) -> dict[str, float]:
        """Each phase's expected seconds per unit: the mean of its measured units past the first
        (which also pays one-time costs: the structure critic's first samples, D's first steps in
        the rounds), else the probe's figure, else the first unit's."""
        probed = self.estimate.unit_seconds if self.estimate else {}
        return probed | {phase: sum(d[1:]) / len(d[1:]) if len(d) > 1 else probed.get(phase, d[0])
                         for phase, d in self.measured.items() if d}

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
