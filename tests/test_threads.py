"""Trainings that share a machine share its cores (torch's threads)."""

from __future__ import annotations

import torch

from seqgan_music.threads import available_cores, share_cores


def test_cores_are_shared_out_and_the_users_choice_is_kept(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("OMP_NUM_THREADS", "4")
        assert available_cores() == 4
        assert share_cores(2) == 2 and torch.get_num_threads() == 2
        assert share_cores(3) == 1 and share_cores(0) == 4  # never below one thread; no jobs: all cores
        monkeypatch.delenv("OMP_NUM_THREADS")
        assert available_cores() >= 1
    finally:
        torch.set_num_threads(before)


def test_app_jobs_share_the_cores_while_they_run(tiny_dataset, tmp_path, monkeypatch):
    """Two jobs started as the app starts them: while both run, each trains on half the cores;
    once one ends, the other takes up all of them."""
    import time

    from seqgan_music.config import apply_overrides, make_run_config
    from seqgan_music.dataset import load_dataset
    from seqgan_music.jobs import TrainingJob, running_trainings

    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    before = torch.get_num_threads()
    ds = load_dataset(tiny_dataset)
    cfg = apply_overrides(make_run_config("tiny", ds.tokenizer.vocab_size, ds.seq_len), ["adv_rounds=30"])
    jobs = [TrainingJob(tiny_dataset, str(tmp_path / f"r{i}"), cfg, torch.device("cpu")) for i in range(2)]
    try:
        for job in jobs:
            job.start()
        assert running_trainings() == 2 and torch.get_num_threads() == 1
        deadline = time.time() + 60
        while not all(j.snapshot().threads for j in jobs) and time.time() < deadline:
            time.sleep(0.05)
        assert [j.snapshot().threads for j in jobs] == [1, 1]
        jobs[0].stop()
        jobs[0].join(60)
        while jobs[1].snapshot().threads != 2 and jobs[1].alive() and time.time() < deadline:
            time.sleep(0.05)
        assert jobs[1].snapshot().threads == 2
        jobs[1].stop()
        jobs[1].join(60)
        assert running_trainings() == 0
    finally:
        torch.set_num_threads(before)


def test_bench_shared_machine_prints_times_and_ratio(tiny_dataset, capsys):
    from seqgan_music.cli import main

    assert main(["bench", "shared-machine", tiny_dataset, "--preset", "tiny", "--set", "adv_rounds=1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("bench shared-machine (tiny preset, adv_rounds=1") and "x" in out.split("ratio")[1]
