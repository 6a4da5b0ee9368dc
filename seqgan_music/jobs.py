"""Background training jobs for the app: one worker thread per job, never touching Streamlit.

The page polls :meth:`TrainingJob.snapshot` for live figures. A server-wide cap limits how many
trainings run at once (``SEQGAN_MUSIC_MAX_TRAININGS``, default 2), and the running trainings
share the cores: each one's torch threads are the cores over the trainings running, updated
whenever one starts or ends (:mod:`seqgan_music.threads`).
"""

from __future__ import annotations

import copy
import json
import os
import threading
import time
import traceback
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import torch

from seqgan_music.base_model import starting_generator
from seqgan_music.clock import Clock, Estimate, probe
from seqgan_music.config import RunConfig, to_dict
from seqgan_music.dataset import load_dataset
from seqgan_music.errors import UserError
from seqgan_music.threads import keep_share, share_cores
from seqgan_music.trainer import TrainControl, Trainer

MEMORISING, MEMORISING_ROUNDS = 0.3, 3  # the page warns when D's held-out accuracy averages below this over these rounds
_running: set[TrainingJob] = set()
_running_lock = threading.Lock()
_latest: dict[str, TrainingJob] = {}  # runs folder -> the newest job started in it (finished ones too)
_probe_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="probe")  # one probe at a time


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
    phase_units: dict[str, int] = field(default_factory=dict)  # units in each phase of the run
    metrics: list[dict[str, Any]] = field(default_factory=list)
    sample: dict[str, Any] | None = None  # newest generated sample event
    notices: list[str] = field(default_factory=list)  # the trainer's messages (collapse guard)
    threads: int = 0  # torch threads the training runs on (its share of the cores; 0 before its first step)
    started: float = 0.0
    first_sample_at: float | None = None  # seconds after start when the first sample arrived
    resumed_from: int = 0  # units already done when this job started
    units_from: float = 0.0  # time.time() when the trainer was ready and its first unit began
    clock: Clock | None = None  # the run's clock (set once the trainer is built)

    def phase_position(self) -> tuple[int, int]:
        """(the unit under way within the current phase, counted from 1; the phase's units)."""
        done = sum(m.get("phase") == self.phase for m in self.metrics)
        total = self.phase_units.get(self.phase, 0)
        return min(done + 1, total), total

    def memorising(self) -> float | None:
        """D's mean accuracy on held-out real tunes over the last :data:`MEMORISING_ROUNDS` adversarial
        rounds when it is below :data:`MEMORISING` (D calls most unseen songs fake: it learns the
        training songs by heart, and its reward says little about music); else None."""
        unseen = [m["d_real_unseen"] for m in self.metrics if m.get("phase") == "adversarial" and "d_real_unseen" in m]
        recent = unseen[-MEMORISING_ROUNDS:]
        mean = sum(recent) / len(recent) if len(recent) == MEMORISING_ROUNDS else None
        return mean if mean is not None and mean < MEMORISING else None

    def pitch_moved(self) -> float | None:
        """The share of D's windows moved in pitch in the newest adversarial round when above 0
        (:mod:`~seqgan_music.d_augment`: D learnt the songs by heart); else None."""
        shares = [m["d_augment"] for m in self.metrics if "d_augment" in m]
        return shares[-1] if shares and shares[-1] > 0 else None

    def eta(self, now: float | None = None) -> tuple[float, list[str]]:
        """(seconds left of the whole run, phases still to come that neither this job nor the
        probe has measured): :meth:`Clock.left` at the unit under way."""
        if self.clock is None:
            return 0.0, []
        now = time.time() if now is None else now
        since = self.metrics[-1]["time"] if self.metrics else self.units_from
        return self.clock.left(self.unit, max(now - since, 0.0)), self.clock.unmeasured(self.unit)


_estimates: dict[str, Future] = {}  # (dataset folder, run config) as JSON -> the probe of that run
_estimates_lock = threading.Lock()


def estimate_later(data_dir: str, cfg: RunConfig, device: torch.device) -> Estimate | UserError | None:
    """The probe's estimate of training ``cfg`` on the dataset in ``data_dir`` (:func:`clock.probe`),
    run once per dataset and config in a background thread: None while it runs, or while a training
    runs in this server (a probe then measures a busy machine, and slows the training); the
    UserError the probe raised, if any."""
    key = json.dumps([os.path.abspath(data_dir), to_dict(cfg)], sort_keys=True)
    with _estimates_lock:
        future = _estimates.get(key)
        if future is None:
            if running_trainings():
                return None
            _estimates[key] = future = _probe_pool.submit(lambda: probe(cfg, load_dataset(data_dir), device))
    if not future.done():
        return None
    error = future.exception()
    if error is not None and not isinstance(error, UserError):
        return UserError(f"could not time this run: {type(error).__name__}: {error}")
    return error or future.result()


def latest_job(runs_folder: str) -> TrainingJob | None:
    """The newest job started with its run folder in ``runs_folder`` in this server process, so a
    reloaded page (or a second tab on the same workspace) re-attaches to it."""
    with _running_lock:
        return _latest.get(os.path.abspath(runs_folder))


class TrainingJob:
    """Train ``cfg`` on a dataset folder into ``run_dir`` in a daemon thread."""

    def __init__(self, data_dir: str, run_dir: str, cfg: RunConfig, device: torch.device, resume: bool = False,
                 estimate: Estimate | None = None, start_from: str | None = None):
        """``estimate``: the probe's figures for this run (:func:`clock.probe`), for the time left
        before each phase has run a unit; ``start_from``: the model G starts from
        (:func:`base_model.start_path`; None: from scratch), for a run not resumed."""
        self.data_dir, self.run_dir, self.cfg, self.device, self.resume_run = data_dir, run_dir, cfg, device, resume
        self.estimate, self.start_from = estimate, start_from
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
                since = st.metrics[-1]["time"] if st.metrics else st.units_from
                st.clock.observe(event, event["time"] - since)
                st.metrics.append(event)
                st.unit = event["next_unit"]
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
                              places=(ds.train_place, ds.valid_place))
            if self.resume_run and os.path.exists(trainer.last_path):
                trainer.load_state(trainer.last_path)
                self._set(unit=trainer.units_done, resumed_from=trainer.units_done, started=time.time())
            elif self.start_from:
                trainer.start_from(starting_generator(self.start_from, self.cfg, ds.tokenizer))
            with self._lock:  # a pause or stop pressed while starting keeps its status
                self._state.units = len(trainer.units)
                self._state.phase_units = dict(Counter(phase for phase, _ in trainer.units))
                self._state.clock = Clock.for_run(self.cfg, len(ds.train), self.estimate)
                self._state.units_from = time.time()
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
