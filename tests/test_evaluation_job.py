"""The app's evaluation job: the same numbers as ``seqgan-music evaluate --json``, stored in the
run folder, progress to the end, and the one-line reading of best against MLE."""

from __future__ import annotations

import json
import shlex
import shutil

import pytest
import torch

from seqgan_music import evaluation_job
from seqgan_music.cli import main
from seqgan_music.dataset import load_dataset
from seqgan_music.evaluation_job import EvaluationJob, command_line, stored_evaluation, verdict


def without_timings(value):
    """``value`` (evaluate's result) without its per-row seconds, as sorted JSON."""
    def strip(v):
        if isinstance(v, dict):
            return {k: strip(x) for k, x in v.items() if k != "seconds"}
        return [strip(x) for x in v] if isinstance(v, list) else v
    return json.dumps(strip(value), sort_keys=True)


def test_the_app_evaluation_equals_evaluate_json(bars_run_dir, tmp_path, monkeypatch, capsys):
    data, trained = bars_run_dir
    run = str(tmp_path / "run")
    shutil.copytree(trained, run)
    monkeypatch.setattr(evaluation_job, "SETTINGS", {**evaluation_job.SETTINGS, "num": 24, "melodies": 6})
    job = EvaluationJob(run, data, torch.device("cpu"))
    job.start()
    job.join(300)
    state = job.snapshot()
    assert state.status == "done" and state.done == state.total == 10, state
    stored = stored_evaluation(run)
    assert stored["command"] == command_line(run, data) and stored["seconds"] > 0
    assert evaluation_job.evaluation_job(run) is job
    argv = shlex.split(stored["command"])
    assert argv[:2] == ["seqgan-music", "evaluate"] and "--critic-runs" in argv
    capsys.readouterr()
    assert main(argv[1:]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert without_timings(printed) == without_timings(stored["result"])
    rows = {r["model"]: r for r in stored["result"]["listening"]["rows"]}
    assert set(rows) == {"MLE", "best", "last", "Markov-4", "real"}
    assert abs(sum(rows["MLE"]["pitch_classes"].values()) - 1) < 1e-6
    assert abs(sum(stored["result"]["listening"]["held_out_histograms"]["durations"].values()) - 1) < 1e-6


def test_a_failed_evaluation_says_why_and_keeps_the_stored_one(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "evaluation.json").write_text(json.dumps({"result": {"rows": []}, "seconds": 1.0, "command": "x"}))
    job = EvaluationJob(str(run), str(tmp_path / "no-data"), torch.device("cpu"))
    job.start()
    job.join(60)
    state = job.snapshot()
    assert state.status == "error" and "no-data" in state.error and "\n" not in state.error
    assert stored_evaluation(str(run))["command"] == "x"


def row(model: str, critic: float, sd: float = 0.01) -> dict:
    return {"model": model, "critic": critic, "critic_sd": sd}


@pytest.mark.parametrize("best, mle, kind", [
    (row("best", 0.60), row("MLE", 0.65), "closer"),
    (row("best", 0.64), row("MLE", 0.65, 0.02), "no better"),
    (row("best", 0.70), row("MLE", 0.65), "worse"),
])
def test_verdict_counts_a_difference_only_beyond_the_spread(best, mle, kind):
    got, sentence = verdict({"rows": [mle, best]})
    assert got == kind and f"{best['critic']:.3f}" in sentence


def test_verdict_without_an_mle_model():
    assert verdict({"rows": [row("last", 0.7)]})[0] == "none"
    assert verdict(None)[0] == "none"


def test_a_best_model_equal_to_the_mle_model_shares_its_rows(bars_run_dir, tmp_path):
    """best.pt holding the MLE model's generator is drawn and judged once: its rows are the MLE
    rows under its own name (the evaluation's figures are the same either way)."""
    from seqgan_music.evaluate import evaluate_run, run_models

    data, trained = bars_run_dir
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    shutil.copy(run / "mle.pt", run / "best.pt")
    tok = load_dataset(data).tokenizer
    assert [(label, twin) for label, _, twin in run_models(str(run), "cpu", tok)][:2] == [("MLE", None), ("best", "MLE")]
    stages = []
    result = evaluate_run(str(run), data, num=16, temperatures=(1.0,), critic_runs=0, melodies=6, progress=stages.append)
    rows = {r["model"]: r for r in result["listening"]["rows"]}
    assert {**rows["best"], "model": "MLE"} == rows["MLE"]
    windows = {r["model"]: r for r in result["rows"]}
    assert without_timings({**windows["best"], "model": "MLE"}) == without_timings(windows["MLE"])
    assert "best: listening test (the same model as MLE)" in stages and len(stages) == 10
