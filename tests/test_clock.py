"""The run's clock: the probe before training, the time left while it runs (seqgan_music/clock.py)."""

from __future__ import annotations

import torch

from seqgan_music.clock import MLE_EPOCHS_TO_BEST, Clock, Estimate, expected_mle_units, probe
from seqgan_music.config import TrainConfig, apply_overrides, make_run_config
from seqgan_music.dataset import load_dataset
from seqgan_music.jobs import JobState


def test_measured_units_past_the_first_set_each_phases_cost():
    """A phase's unit costs the mean of its measured units past the first (which pays one-time
    costs); the unit under way counts what it has run, never below zero; phases not measured and
    not probed are named instead of guessed."""
    clock = Clock(["mle"] * 3 + ["adversarial"] * 2, expected_mle=3)
    clock.observe({"phase": "mle"}, 5.0)
    assert clock.left(1) == 2 * 5.0 and clock.unmeasured(1) == ["mle", "adversarial"][1:]
    clock.observe({"phase": "mle"}, 2.0)
    assert clock.left(2, into_unit=0.5) == 1.5 and clock.left(2, into_unit=9.0) == 0.0
    clock.observe({"phase": "mle"}, 2.0)
    clock.observe({"phase": "adversarial"}, 10.0)
    assert clock.left(4) == 10.0 and clock.unmeasured(4) == []


def test_a_phase_not_measured_yet_costs_the_probes_figure():
    estimate = Estimate({"mle": 1.0, "d_pretrain": 0.5, "adversarial": 3.0}, startup=2.0)
    clock = Clock(["mle"] * 4 + ["d_pretrain"] + ["adversarial"] * 10, expected_mle=4, estimate=estimate)
    assert clock.total() == 2.0 + 4 * 1.0 + 0.5 + 10 * (3.0 - 0.5 / 2)  # half the rounds expected to skip D
    for seconds in (9.0, 2.0, 2.0):  # MLE runs twice as slowly as probed (the first unit aside) ...
        clock.observe({"phase": "mle"}, seconds)
    # ... the other phases as probed; an adversarial round as likely to skip D's round as not
    assert clock.left(3) == 2.0 + 0.5 + 10 * (3.0 - 0.5 / 2) and clock.unmeasured(3) == []


def test_adversarial_rounds_are_priced_with_and_without_d_steps():
    """Rounds that skip D's steps (D far ahead) cost less; the rounds to come mix the two kinds
    by the share seen so far, drawn toward an even share while few rounds are seen."""
    estimate = Estimate({"mle": 1.0, "d_pretrain": 4.0, "adversarial": 12.0}, startup=0.0)
    clock = Clock(["d_pretrain"] + ["adversarial"] * 10, expected_mle=0, estimate=estimate)
    clock.observe({"phase": "d_pretrain"}, 4.0)
    assert clock.left(1) == 10 * (0.5 * 12.0 + 0.5 * (12.0 - 4.0))  # without D: the probe's round less a D round
    clock.observe({"phase": "adversarial", "d_skipped": 0.0}, 12.5)  # the first round: one-time costs, the probe's
    for _ in range(3):
        clock.observe({"phase": "adversarial", "d_skipped": 1.0}, 7.0)
    share = (1 + 0.5 * 4) / (4 + 4)
    assert abs(clock.left(5) - 6 * (share * 12.0 + (1 - share) * 7.0)) < 1e-9


def test_pre_training_with_patience_is_expected_to_end_early_on_a_small_collection():
    cfg = make_run_config("demo", 40, 16)
    cfg.train = TrainConfig(batch_size=32, mle_epochs=12, mle_unit_batches=100, mle_keep_best=True, mle_patience=2)
    small = expected_mle_units(cfg, train_windows=2000)  # 63 batches an epoch: units of 100 batches
    assert small == -(-MLE_EPOCHS_TO_BEST * 63 // 100) + 2 < 12
    tiny = expected_mle_units(cfg, train_windows=300)  # 10 batches an epoch: units of 2 epochs (UNIT_EPOCHS)
    assert tiny == MLE_EPOCHS_TO_BEST // 2 + 2
    assert expected_mle_units(cfg, train_windows=100_000) == 12  # the budget runs out first
    cfg.generator.dropout = 0.4
    assert expected_mle_units(cfg, train_windows=1000) == 12  # with dropout validation NLL falls for longer
    cfg.generator.dropout, cfg.train = 0.0, TrainConfig(mle_epochs=7)
    assert expected_mle_units(cfg, 1000) == 7  # no patience: all of them
    cfg.train = TrainConfig(batch_size=32, mle_epochs=12, mle_unit_batches=100, mle_keep_best=True, mle_patience=2)
    clock = Clock.for_run(cfg, 2000)
    assert clock.remaining(0) == ["mle"] * small + ["d_pretrain"] * 50 + ["adversarial"] * 200
    assert clock.remaining(small + 1)[:2] == ["mle", "d_pretrain"]  # past the expected stop: the unit under way


def test_probe_times_each_phase_of_the_run_on_its_data(tiny_dataset, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ds = load_dataset(tiny_dataset)
    cfg = apply_overrides(make_run_config("tiny", ds.tokenizer.vocab_size, ds.seq_len), ["mle_unit_batches=40"])
    estimate = probe(cfg, ds, torch.device("cpu"))
    assert set(estimate.unit_seconds) == {"mle", "d_pretrain", "adversarial"}
    assert all(seconds > 0 for seconds in estimate.unit_seconds.values()) and estimate.startup > 0
    assert list(tmp_path.iterdir()) == []  # its scratch run is thrown away


def test_job_time_left_counts_from_the_trainers_start():
    clock = Clock(["mle"] * 3 + ["adversarial"] * 2, expected_mle=3)
    state = JobState(unit=0, units=5, units_from=100.0, clock=clock)
    assert state.eta(now=101.0) == (0.0, ["mle", "adversarial"])
    clock.observe({"phase": "mle"}, 2.0)
    state.metrics, state.unit = [{"phase": "mle", "time": 102.0}], 1
    assert state.eta(now=102.5) == (2 * 2.0 - 0.5, ["adversarial"])


def test_an_mle_unit_of_a_budget_reads_at_most_two_epochs():
    """A few dozen songs are learnt by heart within a few epochs: a budget's unit stops at
    UNIT_EPOCHS epochs, so pre-training's best unit is found, not stepped over."""
    budget = TrainConfig(batch_size=32, mle_unit_batches=100)
    assert budget.mle_batches_per_unit(320) == 20 and budget.mle_batches_per_unit(100_000) == 100
    assert TrainConfig(batch_size=32).mle_batches_per_unit(320) == 10  # no budget: one epoch
