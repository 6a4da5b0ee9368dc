"""Background training jobs for the app: one worker thread per job, never touching Streamlit.

The page polls :meth:`TrainingJob.snapshot` for live figures. A server-wide cap limits how many
trainings run at once (``SEQGAN_MUSIC_MAX_TRAININGS``, default 2), and the running trainings
share the cores: each one's torch threads are the cores over the trainings running, updated
whenever one starts or ends (:mod:`seqgan_music.threads`).
"""

from __future__ import annotations

import copy
import os
import threading
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import torch

from seqgan_music.config import RunConfig
from seqgan_music.dataset import load_dataset
from seqgan_music.errors import UserError
from seqgan_music.threads import keep_share, share_cores
from seqgan_music.trainer import TrainControl, Trainer

_running: set[TrainingJob] = set()
_running_lock = threading.Lock()
_latest: dict[str, TrainingJob] = {}  # runs folder -> the newest job started in it (finished ones too)


def max_trainings() -> int:
    return max(1, int(os.environ.get("SEQGAN_MUSIC_MAX_TRAININGS", "2")))


def running_trainings() -> int:
    """How many trainings run in this server now."""
    with _running_lock:
        return sum(j.alive() for j in _running)


@dataclass
class JobState:
    """What the page shows; copied out under the job's lock."""

    status: str = "starting"  # starting, running, paused, stopping, stopped, done, error
    error: str | None = None
    phase: str = ""
    phase_done: int = 0
    phase_total: int = 0
    unit: int = 0  # completed units
    units: int = 0
    schedule: list[str] = field(default_factory=list)  # the phase of every unit of the run, in order
    metrics: list[dict[str, Any]] = field(default_factory=list)
    sample: dict[str, Any] | None = None  # newest generated sample event
    notices: list[str] = field(default_factory=list)  # the trainer's messages (collapse guard)
    threads: int = 0  # torch threads the training runs on (its share of the cores; 0 before its first step)
    started: float = 0.0
    first_sample_at: float | None = None  # seconds after start when the first sample arrived
    resumed_from: int = 0  # units already done when this job started

    def eta(self, now: float | None = None) -> tuple[float, list[str]]:
        """(seconds left, phases still to come that have no measured unit yet).

        Each remaining unit costs the mean measured duration of its phase's units (this job's
        metrics events), less the time already spent in the current unit; phases without a
        measured unit are listed instead of guessed (an adversarial round costs many MLE epochs).
        """
        now = time.time() if now is None else now
        durations: dict[str, list[float]] = {}
        previous = self.started
        for m in self.metrics:
            durations.setdefault(m["phase"], []).append(m["time"] - previous)
            previous = m["time"]
        mean = {phase: sum(d) / len(d) for phase, d in durations.items()}
        remaining = self.schedule[self.unit:]
        left = sum(mean.get(phase, 0.0) for phase in remaining)
        if remaining and remaining[0] in mean:  # the unit under way has partly run
            left -= min(now - previous, mean[remaining[0]])
        return left, [phase for phase in dict.fromkeys(remaining) if phase not in mean]


def latest_job(runs_folder: str) -> TrainingJob | None:
    """The newest job started with its run folder in ``runs_folder`` in this server process, so a
    reloaded page (or a second tab on the same workspace) re-attaches to it."""
    with _running_lock:
        return _latest.get(os.path.abspath(runs_folder))


class TrainingJob:
    """Train ``cfg`` on a dataset folder into ``run_dir`` in a daemon thread."""

    def __init__(self, data_dir: str, run_dir: str, cfg: RunConfig, device: torch.device, resume: bool = False):
        self.data_dir, self.run_dir, self.cfg, self.device, self.resume_run = data_dir, run_dir, cfg, device, resume
        self.control = TrainControl()
        self._lock = threading.Lock()
        self._state = JobState()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ control (page thread)
    def start(self) -> None:
        """Start the worker; raises UserError when the server already runs its cap of trainings."""
        with _running_lock:
            active = [j for j in _running if j.alive()]
            _running.intersection_update(active)
            if len(active) >= max_trainings():
                raise UserError(f"the server is busy: {len(active)} trainings are running (limit {max_trainings()}); "
                                "try again when one finishes")
            _running.add(self)
            _latest[os.path.dirname(os.path.abspath(self.run_dir))] = self
            share_cores(len(_running))
        self._state.started = time.time()
        self._thread = threading.Thread(target=self._work, name=f"train:{self.run_dir}", daemon=True)
        self._thread.start()

    def pause(self) -> None:
        self.control.pause()
        self._set(status="paused")

    def resume(self) -> None:
        self.control.resume()
        self._set(status="running")

    def stop(self) -> None:
        self.control.stop()
        self._set(status="stopping")

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def snapshot(self) -> JobState:
        with self._lock:
            return copy.deepcopy(self._state)

    # ------------------------------------------------------------ worker thread
    def _set(self, **changes: Any) -> None:
        with self._lock:
            for key, value in changes.items():
                setattr(self._state, key, value)

    def _on_event(self, event: dict[str, Any]) -> None:
        threads = keep_share()  # (the trainer's own thread: torch's thread count is per thread)
        with self._lock:
            self._state.threads = threads
            st = self._state
            if event["event"] == "progress":
                st.phase, st.phase_done, st.phase_total = event["phase"], event["done"], event["total"]
            elif event["event"] == "metrics":
                st.metrics.append(event)
                st.unit = event["unit_index"] + 1
            elif event["event"] == "notice":
                st.notices.append(event["message"])
            elif event["event"] == "sample":
                st.sample = event
                if st.first_sample_at is None:
                    st.first_sample_at = time.time() - st.started

    def _work(self) -> None:
        try:
            ds = load_dataset(self.data_dir)
            trainer = Trainer(self.cfg, ds.train, ds.valid, self.run_dir, self.device, ds.tokenizer,
                              callbacks=[self._on_event], control=self.control,
                              places=(ds.train_place, ds.valid_place), tunes=ds.train_tunes())
            if self.resume_run and os.path.exists(trainer.last_path):
                trainer.load_state(trainer.last_path)
                self._set(unit=trainer.units_done, resumed_from=trainer.units_done, started=time.time())
            with self._lock:  # a pause or stop pressed while starting keeps its status
                self._state.units = len(trainer.units)
                self._state.schedule = [phase for phase, _ in trainer.units]
                if self._state.status == "starting":
                    self._state.status = "running"
            result = trainer.run()
            self._set(status=result, unit=trainer.units_done)
        except UserError as exc:
            self._set(status="error", error=str(exc))
        except Exception as exc:  # the page must show a failure, never a dead thread
            self._set(status="error", error=f"internal error: {type(exc).__name__}: {exc}")
            traceback.print_exc()
        finally:
            with _running_lock:
                _running.discard(self)
                share_cores(sum(j.alive() and j is not self for j in _running))
