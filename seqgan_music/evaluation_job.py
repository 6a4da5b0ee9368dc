"""The app's evaluation of a run: ``seqgan-music evaluate`` (:func:`evaluate.evaluate_run`) with a
small, fixed set of settings, in a background thread, stored in the run folder.

The page starts an :class:`EvaluationJob`, polls its :meth:`~EvaluationJob.snapshot`, and shows
the stored result (``evaluation.json``) after a reload. :func:`verdict` turns the listening test's
best and MLE rows into the one-line answer to "did the adversarial phase help?".
"""

from __future__ import annotations

import json
import os
import shlex
import threading
import time
import traceback
from dataclasses import dataclass, replace

import torch

from seqgan_music.checkpoint import MODELS
from seqgan_music.errors import UserError
from seqgan_music.evaluate import evaluate_run
from seqgan_music.listening_test import compare
from seqgan_music.threads import keep_share

RESULT_FILE = "evaluation.json"  # in a run folder: the newest evaluation the app made of it
# evaluate's settings in the app: the listening test of 60 melodies per model (two critic seeds), and
# 200 windows per model for the statistics and the validation NLL, without a critic of their own
SETTINGS = {"num": 200, "temperatures": [1.0], "critic_runs": 0, "melodies": 60, "seed": 0}
_one_at_a_time = threading.Lock()  # evaluations share the machine with trainings: one runs at a time
_jobs: dict[str, EvaluationJob] = {}  # run folder -> its newest job in this server, for a reloaded page
_jobs_lock = threading.Lock()


def command_line(run_dir: str, data_dir: str) -> str:
    """The ``seqgan-music evaluate`` command that computes what the app shows."""
    return (f"seqgan-music evaluate {shlex.quote(run_dir)} --data {shlex.quote(data_dir)} --num {SETTINGS['num']} --temperature "
            f"{SETTINGS['temperatures'][0]} --critic-runs {SETTINGS['critic_runs']} --melodies "
            f"{SETTINGS['melodies']} --seed {SETTINGS['seed']} --json")


def stored_evaluation(run_dir: str) -> dict | None:
    """{result, seconds, command} of the run's last evaluation, or None (none yet, or unreadable)."""
    try:
        with open(os.path.join(run_dir, RESULT_FILE), encoding="utf-8") as fh:
            stored = json.load(fh)
        return stored if isinstance(stored, dict) and isinstance(stored.get("result"), dict) else None
    except (OSError, ValueError):
        return None


def verdict(listening: dict | None) -> tuple[str, str]:
    """(kind, sentence) on the listening test's best row against its MLE row: kind is "closer",
    "no better", "worse" (:func:`listening_test.compare`) or "none" (no such comparison)."""
    rows = {r["model"]: r for r in (listening or {}).get("rows", [])}
    best, mle = rows.get("best"), rows.get("MLE")
    if best is None or mle is None:
        return "none", ("This run has no MLE model and best model to compare yet (it stopped during pre-training): "
                        "train it further to see whether the adversarial phase helps.")
    side, _, noise = compare(best, mle)
    figures = f"critic {best['critic']:.3f} against {mle['critic']:.3f}, spread {noise:.3f}"
    if side < 0:
        return "closer", f"The best model is closer to your songs than the MLE model ({figures})."
    if side == 0:
        return "no better", f"The best model is no better than the MLE model: the difference is within the spread ({figures})."
    return "worse", f"The best model is further from your songs than the MLE model ({figures})."


@dataclass(frozen=True)
class EvaluationState:
    """What the page shows while an evaluation runs."""

    status: str = "waiting"  # waiting (for another evaluation), running, done, error
    stage: str = ""  # the row being judged
    done: int = 0  # rows judged
    total: int = 1  # rows to judge
    error: str | None = None


def evaluation_job(run_dir: str) -> EvaluationJob | None:
    """The newest evaluation started on ``run_dir`` in this server process (finished ones too)."""
    with _jobs_lock:
        return _jobs.get(os.path.abspath(run_dir))


class EvaluationJob:
    """Evaluate the run in ``run_dir`` on the dataset in ``data_dir`` with :data:`SETTINGS` in a
    daemon thread, then write :data:`RESULT_FILE` into the run folder."""

    def __init__(self, run_dir: str, data_dir: str, device: torch.device):
        self.run_dir, self.data_dir, self.device = run_dir, data_dir, device
        present = sum(os.path.exists(os.path.join(run_dir, f)) for f in MODELS.values())
        self._state = EvaluationState(total=2 * (present + 2))  # listening test and windows: models, Markov, real
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        with _jobs_lock:
            _jobs[os.path.abspath(self.run_dir)] = self
        self._thread = threading.Thread(target=self._work, name=f"evaluate:{self.run_dir}", daemon=True)
        self._thread.start()

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def snapshot(self) -> EvaluationState:
        with self._lock:
            return self._state

    def _set(self, **changes) -> None:
        with self._lock:
            self._state = replace(self._state, **changes)

    def _stage(self, name: str) -> None:
        keep_share()  # the cores' share set by the trainings running now
        with self._lock:
            self._state = replace(self._state, stage=name, done=self._state.done + (self._state.stage != ""))

    def _work(self) -> None:
        with _one_at_a_time:
            self._set(status="running")
            start = time.perf_counter()
            try:
                result = evaluate_run(self.run_dir, self.data_dir, device=self.device, progress=self._stage,
                                      **{**SETTINGS, "temperatures": tuple(SETTINGS["temperatures"])})
                stored = {"result": result, "seconds": time.perf_counter() - start,
                          "command": command_line(self.run_dir, self.data_dir)}
                tmp = os.path.join(self.run_dir, RESULT_FILE + ".tmp")
                with open(tmp, "w", encoding="utf-8") as fh:
                    json.dump(stored, fh)
                os.replace(tmp, os.path.join(self.run_dir, RESULT_FILE))
                self._set(status="done", done=self._state.done + 1)  # the last row is judged
            except UserError as exc:
                self._set(status="error", error=str(exc))
            except MemoryError:
                self._set(status="error", error="out of memory while evaluating; the run is unchanged")
            except Exception as exc:  # the page must show a failure, never a dead thread
                self._set(status="error", error=f"internal error: {type(exc).__name__}: {exc}")
                traceback.print_exc()
