"""What a training tells those who watch it: events (dicts) to callbacks, and one metrics line
per unit in the run folder.

Events: ``{"event": "progress", "phase", "done", "total"}`` within a unit;
``{"event": "metrics", "phase", "unit", "units", ...numbers}`` after each unit;
``{"event": "sample", "phase", "unit", "tokens", "rewards"}`` with a fresh generated sequence;
``{"event": "notice", "message"}`` when the collapse guard stops the adversarial phase.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch

from seqgan_music.distributed import DistInfo, mean_across_ranks
from seqgan_music.models import Generator, places_like
from seqgan_music.run_folder import RunFolder

Callback = Callable[[dict[str, Any]], None]


class TrainingEvents:
    """The callbacks of one training (the CLI's progress bar, the app's live view) and its metrics
    file; only the main process writes and reports metrics."""

    def __init__(self, callbacks: list[Callback], dist: DistInfo, files: RunFolder, control):
        self.callbacks, self.dist, self.files, self.control = callbacks, dist, files, control

    def emit(self, event: dict[str, Any]) -> None:
        for cb in self.callbacks:
            cb(event)

    def step(self, phase: str, done: int, total: int) -> None:
        """Within a unit: wait while paused (raise when stopped), then report the progress."""
        self.control.wait_unless_stopped()
        self.emit({"event": "progress", "phase": phase, "done": done, "total": total})

    def metrics(self, phase: str, unit: int, metrics: dict[str, Any], unit_index: int, units: int,
                following: int) -> None:
        """One metrics line of ``phase``'s unit ``unit`` (the run's ``unit_index``-th of ``units``),
        averaged over ranks; ``following``: the unit that runs next (past skipped MLE units)."""
        metrics = self._mean_over_ranks(metrics)
        if not self.dist.is_main:
            return
        rec = {"event": "metrics", "phase": phase, "unit": unit, "unit_index": unit_index, "units": units,
               "next_unit": following, "time": time.time(), **metrics}
        self.files.append_metrics(rec)
        self.emit(rec)

    def sample(self, generator: Generator, real_place: torch.Tensor | None, length: int, phase: str, unit: int,
               rewards: list | None) -> None:
        """A fresh melody of ``length`` tokens from a tune's opening, drawn on a side stream seeded by
        ``unit`` (publishing samples never changes training); ``rewards``: the round's first rows."""
        if not self.callbacks:
            return
        gen = torch.Generator(device=next(generator.parameters()).device)
        gen.manual_seed(unit)
        place = places_like(generator, real_place, 1, gen)  # a real window's tune length ...
        if place is not None:
            place[:, 0] = 0  # ... from the tune's opening
        tokens = generator.sample(1, length, generator=gen, place=place)[0].tolist()
        self.emit({"event": "sample", "phase": phase, "unit": unit, "tokens": tokens, "rewards": rewards})

    def _mean_over_ranks(self, metrics: dict[str, Any]) -> dict[str, Any]:
        """The numeric metrics (and the per-step reward list) averaged over ranks."""
        keys = [k for k, v in metrics.items() if isinstance(v, float)]
        values = mean_across_ranks([metrics[k] for k in keys] + list(metrics.get("reward_per_step", [])), self.dist)
        out = dict(metrics, **dict(zip(keys, values[: len(keys)])))
        if "reward_per_step" in metrics:
            out["reward_per_step"] = values[len(keys) :]
        return out
