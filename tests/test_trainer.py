from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from hostile import CodeRunningPickle

from seqgan_music.checkpoint import LAST, MLE, load_checkpoint, read_checkpoint, save_checkpoint, saved_run_config
from seqgan_music.config import apply_overrides, make_run_config
from seqgan_music.dataset import load_dataset
from seqgan_music.errors import UserError
from seqgan_music.guarded_step import NonFiniteLoss
from seqgan_music.mle_phase import MLEPhase
from seqgan_music.run_folder import new_run_folder
from seqgan_music.trainer import Trainer


def make_trainer(dataset_dir, run_dir, callbacks=None, overrides=()):
    ds = load_dataset(dataset_dir)
    cfg = apply_overrides(make_run_config("tiny", ds.tokenizer.vocab_size, ds.seq_len), list(overrides))
    return Trainer(cfg, ds.train, ds.valid, str(run_dir), torch.device("cpu"), ds.tokenizer, callbacks=callbacks)


def read_metrics(run_dir):
    with open(os.path.join(run_dir, "metrics.jsonl")) as fh:
        return [json.loads(line) for line in fh]


def test_tiny_training_runs_all_phases_with_finite_losses(tiny_dataset, tmp_path):
    events = []
    trainer = make_trainer(tiny_dataset, tmp_path, [events.append], ["adv_rounds=3", "d_max_acc=1"])
    assert trainer.run() == "done"
    metrics = read_metrics(tmp_path)
    assert [m["phase"] for m in metrics] == ["mle"] * 2 + ["d_pretrain"] + ["adversarial"] * 3
    for m in metrics:
        for key, value in m.items():
            if isinstance(value, float):
                assert math.isfinite(value), key
    adv = [m for m in metrics if m["phase"] == "adversarial"]
    assert all(len(m["reward_per_step"]) == 16 and 0 <= m["mean_reward"] <= 1 for m in adv)
    assert all(0 <= m["d_acc_real"] <= 1 and 0 <= m["d_acc_fake"] <= 1 for m in adv)
    samples = [e for e in events if e["event"] == "sample"]
    assert samples and len(samples[-1]["tokens"]) == 16 and len(samples[-1]["rewards"][0]) == 16
    assert {e["phase"] for e in events if e["event"] == "progress"} == {"mle", "d_pretrain", "adversarial"}
    assert os.path.exists(tmp_path / LAST) and os.path.exists(tmp_path / MLE)
    assert read_checkpoint(str(tmp_path / MLE))["progress"] == 2


def test_policy_gradient_has_its_own_optimizer(tiny_dataset, tmp_path):
    """As in the authors' code: PG steps use a fresh Adam, MLE's Adam is left as MLE left it."""
    trainer = make_trainer(tiny_dataset, tmp_path, overrides=["adv_rounds=3"])
    assert trainer.run() == "done"
    def steps(opt):
        return int(next(iter(opt.state_dict()["state"].values()))["step"])

    mle_batches = -(-len(trainer.windows.train) // trainer.cfg.train.batch_size)
    assert steps(trainer.mle.opt) == trainer.cfg.train.mle_epochs * mle_batches
    assert steps(trainer.pg.opt) == 3 * trainer.cfg.train.g_steps
    saved = read_checkpoint(str(tmp_path / LAST))
    trainer.pg.opt.load_state_dict(saved["pg_opt"])
    assert steps(trainer.pg.opt) == 3 * trainer.cfg.train.g_steps


def test_bf16_mixed_precision_trains_with_finite_losses(tiny_dataset, tmp_path):
    trainer = make_trainer(tiny_dataset, tmp_path, overrides=["amp=bf16", "adv_rounds=2"])
    x = trainer.windows.train[:4]
    with trainer.d_phase.autocast():
        assert trainer.D(x).dtype == torch.bfloat16
    assert trainer.run() == "done"
    for m in read_metrics(tmp_path):
        assert all(math.isfinite(v) for v in m.values() if isinstance(v, float)), m
    assert trainer.D.out.weight.dtype == torch.float32  # master weights stay float32
    with pytest.raises(UserError, match="amp must be"):
        make_trainer(tiny_dataset, tmp_path / "x", overrides=["amp=fp8"])


@pytest.mark.parametrize("judge", ["d_average=0", "d_average=0.5"])  # G scored by D, or by an average of D's weights
def test_stop_then_resume_continues_identically(tiny_dataset, tmp_path, judge):
    settings = ["adv_rounds=3", judge]
    straight = make_trainer(tiny_dataset, tmp_path / "a", overrides=settings)
    straight.run()

    def stop_after_first_adversarial_round(event):  # the policy-gradient Adam has state by then
        if event["event"] == "metrics" and event["phase"] == "adversarial":
            interrupted.control.stop()

    interrupted = make_trainer(tiny_dataset, tmp_path / "b", [stop_after_first_adversarial_round], settings)
    assert interrupted.run() == "stopped" and interrupted.units_done == 4
    resumed = make_trainer(tiny_dataset, tmp_path / "b", overrides=settings)
    assert resumed.run(resume=True) == "done"
    for a, b in zip(straight.G.state_dict().values(), resumed.G.state_dict().values()):
        assert torch.equal(a, b)
    for a, b in zip(straight.D.state_dict().values(), resumed.D.state_dict().values()):
        assert torch.equal(a, b)
    for a, b in zip(straight.d_phase.judge.state_dict().values(), resumed.d_phase.judge.state_dict().values()):
        assert torch.equal(a, b)
    assert (straight.d_phase.judge is not straight.D) == judge.endswith("0.5")
    ma, mb = read_metrics(tmp_path / "a"), read_metrics(tmp_path / "b")
    assert [m["unit_index"] for m in mb] == list(range(6))
    assert [m.get("mean_reward") for m in ma] == [m.get("mean_reward") for m in mb]


def write_version_1(path, state: dict) -> None:
    """Save ``state`` as a checkpoint of format version 1 (what runs saved before version 2 hold)."""
    torch.save({**state, "format": "seqgan-music", "version": 1}, str(path))


def test_a_version_1_checkpoint_from_before_model_selection_loads_generates_and_resumes(tiny_dataset, tmp_path):
    """Version 1 files lacking the fields added while it was current (model selection, the
    policy-gradient optimizer, the form critic, the non-finite count, the training windows' form)
    are brought to version 2 on reading; version 3 is refused in one line."""
    from seqgan_music.checkpoint import VERSION
    from seqgan_music.generate import generate_tokens, load_run

    first = make_trainer(tiny_dataset, tmp_path, overrides=["adv_rounds=2"])
    first.units = first.units[:3]
    first.run()
    state = read_checkpoint(str(tmp_path / LAST))
    assert state["version"] == VERSION == 2
    old = {k: v for k, v in state.items()
           if k not in ("selection", "reference", "best_generator", "pg_opt", "structure", "nonfinite", "form_real")}
    write_version_1(tmp_path / LAST, old)
    migrated = read_checkpoint(str(tmp_path / LAST))
    assert migrated["version"] == 2 and migrated["pg_opt"] is None and migrated["selection"]["best_unit"] is None
    assert all(torch.equal(migrated["best_generator"][k], v) for k, v in state["generator"].items())
    assert generate_tokens(load_run(str(tmp_path / LAST)), 2, 8).shape == (2, 8)
    assert make_trainer(tiny_dataset, tmp_path, overrides=["adv_rounds=2"]).run(resume=True) == "done"
    torch.save({**state, "version": 3}, str(tmp_path / "future.pt"))
    with pytest.raises(UserError, match="format version 3 is not supported"):
        read_checkpoint(str(tmp_path / "future.pt"))


def test_a_version_1_checkpoint_without_the_bar_count_settings_loads_as_those_runs_were(bars_run_dir, tmp_path):
    """A version-1 run saved before G's ``max_bars`` and ``bars_left`` existed numbered 16 bars and
    had no bars-left feature (today's defaults: 96 and on); it loads and generates so."""
    from seqgan_music.generate import generate_tokens, load_run
    from seqgan_music.models import Generator

    state = read_checkpoint(os.path.join(bars_run_dir[1], LAST))
    assert state["run_config"]["generator"]["max_bars"] == 96 and state["run_config"]["generator"]["bars_left"]
    cfg = saved_run_config(state, "x")
    old_g = Generator(dataclasses.replace(cfg.generator, max_bars=16, bars_left=False)).state_dict()
    generator = {k: v for k, v in state["run_config"]["generator"].items() if k not in ("max_bars", "bars_left")}
    old = {k: v for k, v in state.items() if k not in ("selection", "reference", "best_generator")}
    old.update(run_config={**state["run_config"], "generator": generator}, generator=old_g, rollout=old_g)
    write_version_1(tmp_path / LAST, old)
    loaded = load_checkpoint(str(tmp_path / LAST))
    assert (loaded.config.generator.max_bars, loaded.config.generator.bars_left) == (16, False)
    assert generate_tokens(load_run(str(tmp_path / LAST)), 2, 8).shape == (2, 8)


def test_checkpoint_without_policy_gradient_optimizer_still_resumes(tiny_dataset, tmp_path):
    """Checkpoints written before pg_opt existed resume with a fresh policy-gradient Adam."""
    def stop_after_first_adversarial_round(event):
        if event["event"] == "metrics" and event["phase"] == "adversarial":
            first.control.stop()

    first = make_trainer(tiny_dataset, tmp_path, [stop_after_first_adversarial_round], ["adv_rounds=3"])
    assert first.run() == "stopped" and first.units_done == 4
    state = read_checkpoint(str(tmp_path / LAST))
    del state["pg_opt"]
    write_version_1(tmp_path / LAST, state)
    resumed = make_trainer(tiny_dataset, tmp_path, overrides=["adv_rounds=3"])
    assert resumed.run(resume=True) == "done" and resumed.units_done == 6


def test_resume_with_other_config_is_refused(tiny_dataset, tmp_path):
    make_trainer(tiny_dataset, tmp_path, overrides=["adv_rounds=1"]).run()
    with pytest.raises(UserError, match="another configuration"):
        make_trainer(tiny_dataset, tmp_path, overrides=["adv_rounds=1", "g_lr=0.5"]).run(resume=True)


def test_non_finite_losses_skip_steps_then_stop_with_clear_error(tiny_dataset, tmp_path, monkeypatch):
    trainer = make_trainer(tiny_dataset, tmp_path, overrides=["mle_epochs=3"])
    calls = {"n": 0}
    real_loss = MLEPhase.loss
    first_epoch = math.ceil(len(trainer.windows.train) / trainer.cfg.train.batch_size)

    def flaky_loss(self, batch):
        calls["n"] += 1
        loss = real_loss(self, batch)
        return loss * float("nan") if calls["n"] > first_epoch else loss  # the first epoch is fine

    monkeypatch.setattr(MLEPhase, "loss", flaky_loss)
    with pytest.raises(NonFiniteLoss, match="5 non-finite losses in a row"):
        trainer.run()
    assert trainer.step.skipped == 5
    ckpt = load_checkpoint(str(tmp_path / LAST))  # the last good checkpoint is intact
    assert ckpt.state["progress"] == 1
    assert all(torch.isfinite(p).all() for p in ckpt.generator.parameters())


def test_crafted_pickle_checkpoint_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"


    path = tmp_path / "evil.pt"
    torch.save({"format": "seqgan-music", "version": 1, "payload": CodeRunningPickle(marker)}, str(path))
    with pytest.raises(UserError, match="not a loadable"):
        load_checkpoint(str(path))
    assert not marker.exists()


def test_checkpoint_validation(tiny_dataset, tmp_path):
    make_trainer(tiny_dataset, tmp_path, overrides=["adv_rounds=0", "d_pretrain_rounds=0"]).run()
    state = read_checkpoint(str(tmp_path / LAST))
    state["generator"]["out.weight"] = torch.zeros(3, 3)
    save_checkpoint(str(tmp_path / "bad_shape.pt"), state)
    with pytest.raises(UserError, match="wrong shape"):
        load_checkpoint(str(tmp_path / "bad_shape.pt"))
    state = read_checkpoint(str(tmp_path / LAST))
    state["run_config"]["generator"]["colour"] = "red"
    save_checkpoint(str(tmp_path / "bad_cfg.pt"), state)
    with pytest.raises(UserError, match="unknown key"):
        load_checkpoint(str(tmp_path / "bad_cfg.pt"))
    (tmp_path / "torn.pt").write_bytes((tmp_path / LAST).read_bytes()[:1000])
    with pytest.raises(UserError, match="not a loadable"):
        load_checkpoint(str(tmp_path / "torn.pt"))


@pytest.mark.slow
def test_hard_kill_mid_training_then_resume(tiny_dataset, tmp_path):
    """SIGKILL a training process mid-run; the checkpoint stays loadable and resume completes."""
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "seqgan_music", "train", tiny_dataset, "--out", str(run), "--preset", "tiny",
           "--set", "mle_epochs=150", "--device", "cpu"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            if (run / "metrics.jsonl").exists() and len((run / "metrics.jsonl").read_text().splitlines()) >= 3:
                break
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    done_before = read_checkpoint(str(run / LAST))["progress"]
    assert 2 <= done_before < 150  # metrics.jsonl may be one unit ahead of the checkpoint
    resume = subprocess.run(cmd + ["--resume"],
                            capture_output=True, text=True, timeout=300)
    assert resume.returncode == 0, resume.stderr
    metrics = read_metrics(run)
    assert [m["unit_index"] for m in metrics] == list(range(153))


@pytest.mark.parametrize("keep_best", [True, False])
def test_pre_training_ends_with_its_best_validation_epoch(tiny_dataset, tmp_path, monkeypatch, keep_best):
    """With mle_keep_best, G enters the adversarial phase (and mle.pt) with the weights of the
    epoch of lowest validation NLL, also when training stops and resumes between epochs;
    without it (the paper), with the last epoch's."""
    trainer = make_trainer(tiny_dataset, tmp_path, overrides=["mle_epochs=3", "adv_rounds=0", "d_pretrain_rounds=0",
                                                              f"mle_keep_best={str(keep_best).lower()}"])
    made = []  # the weights after each epoch, as judged
    nll_of_epoch = iter([1.0, 0.5, 0.9])
    evaluate = Trainer._evaluate

    def scripted(self):
        out = evaluate(self)
        if self.units_done < 3 and len(made) == self.units_done:
            made.append({k: v.clone() for k, v in self.G.state_dict().items()})
            out["valid_nll"] = next(nll_of_epoch)
        return out

    monkeypatch.setattr(Trainer, "_evaluate", scripted)
    trainer.units = trainer.units[:2]  # stop after two epochs, then resume for the third
    assert trainer.run() == "done"
    trainer = make_trainer(tiny_dataset, tmp_path, overrides=["mle_epochs=3", "adv_rounds=0", "d_pretrain_rounds=0",
                                                              f"mle_keep_best={str(keep_best).lower()}"])
    assert trainer.run(resume=True) == "done"
    kept = made[1] if keep_best else made[2]
    for weights in (trainer.G.state_dict(), load_checkpoint(str(tmp_path / MLE)).generator.state_dict()):
        assert all(torch.equal(weights[k], kept[k]) for k in kept)
    assert not torch.equal(made[1]["out.weight"], made[2]["out.weight"])
    last = read_metrics(tmp_path)[-1]
    assert last.get("mle_kept_epoch") == (1 if keep_best else None) and last["valid_nll"] == 0.9
    assert ("mle_kept_valid_nll" in last) == keep_best  # the kept weights' NLL, measured again


def test_generator_dropout_acts_in_mle_training_only(tiny_dataset, tmp_path):
    """Dropout (``generator.dropout``) changes teacher-forced logits in training mode only; with
    G in eval mode (sampling, rollouts, validation) the model equals one without it; policy-gradient
    steps compute their log-probabilities without it; MLE pre-training with it."""
    from seqgan_music.config import GeneratorConfig
    from seqgan_music.models import Generator

    g = Generator(GeneratorConfig(vocab_size=9, embed_dim=8, hidden_dim=16, dropout=0.5))
    plain = Generator(GeneratorConfig(vocab_size=9, embed_dim=8, hidden_dim=16))
    plain.load_state_dict(g.state_dict())
    x = torch.randint(0, 9, (4, 12), generator=torch.Generator().manual_seed(0))
    g.train()
    assert not torch.allclose(g.teacher_forced_logits(x), g.teacher_forced_logits(x))
    g.eval()
    assert torch.equal(g.teacher_forced_logits(x), plain.eval().teacher_forced_logits(x))
    with pytest.raises(UserError, match="dropout"):
        GeneratorConfig(dropout=1.0).validate()

    trainer = make_trainer(tiny_dataset, tmp_path, overrides=["generator.dropout=0.5", "adv_rounds=1"])
    seen, inside_pg = {"mle": set(), "pg": set()}, []
    mle_loss, pg_step, forward = trainer.mle.loss, trainer.pg.step, trainer.G.forward

    def pg_step_marked(metrics):
        inside_pg.append(True)
        try:
            return pg_step(metrics)
        finally:
            inside_pg.pop()

    def forward_seen(*args, **kwargs):
        if inside_pg and torch.is_grad_enabled():
            seen["pg"].add(trainer.G.training)
        return forward(*args, **kwargs)

    trainer.pg.step, trainer.G.forward = pg_step_marked, forward_seen
    trainer.mle.loss = lambda batch: seen["mle"].add(trainer.G.training) or mle_loss(batch)
    assert trainer.run() == "done"
    assert seen == {"mle": {True}, "pg": {False}}


def test_run_folders_started_in_the_same_second_get_distinct_names(tmp_path, monkeypatch):
    """The app names runs by the time; a second one within the same second gets a suffix instead
    of failing on the existing folder."""
    monkeypatch.setattr(time, "strftime", lambda fmt: "20261126-173000")
    runs = str(tmp_path / "runs")
    first, second = new_run_folder(runs), new_run_folder(runs)
    third = new_run_folder(runs, "uploaded-")
    assert [os.path.basename(p) for p in (first, second, third)] == [
        "20261126-173000", "20261126-173000-2", "uploaded-20261126-173000"]
    assert all(os.path.isdir(p) and not os.listdir(p) for p in (first, second, third))


def test_kept_mle_says_whether_an_adversarial_round_became_best(tiny_dataset, tmp_path):
    """The line train prints (and the app shows) when best.pt is the MLE model."""
    from seqgan_music.cli import KEPT_MLE

    trainer = make_trainer(tiny_dataset, str(tmp_path / "r"))
    assert not trainer.best.kept_mle(trainer.units_done)  # nothing ran yet
    trainer.run()
    first_adversarial = trainer.units.index(("adversarial", 0))
    trainer.best.state["best_unit"] = first_adversarial - 1
    assert trainer.best.kept_mle(trainer.units_done)
    trainer.best.state["best_unit"] = first_adversarial
    assert not trainer.best.kept_mle(trainer.units_done)
    assert "did not improve on the MLE model" in KEPT_MLE


def test_mle_units_read_a_budget_of_batches_on_through_the_epochs(tiny_dataset, tmp_path):
    """With mle_unit_batches, each MLE unit runs that many batches, read on through the shuffled
    windows epoch after epoch: three units of 5 batches read the windows of the epochs it takes,
    each epoch a permutation of them."""
    trainer = make_trainer(tiny_dataset, tmp_path, overrides=["mle_epochs=3", "mle_unit_batches=5", "adv_rounds=0",
                                                              "d_pretrain_rounds=0"])
    rows = [b for unit in range(3) for b in trainer.mle.batches(unit)]
    windows = len(trainer.windows.train)
    seen = torch.cat(rows)
    assert len(rows) == 15 and all(1 <= len(b) <= 16 for b in rows) and len(seen) > windows  # past one epoch
    assert sorted(seen[:windows].tolist()) == list(range(windows))  # the first epoch reads each window once
    assert seen[windows:].tolist() != seen[: len(seen) - windows].tolist()  # the next in another order
    events = []
    trainer.callbacks.append(events.append)
    assert trainer.run() == "done"
    totals = {e["total"] for e in events if e["event"] == "progress" and e["phase"] == "mle"}
    assert totals == {5} and sum(e["event"] == "progress" and e["phase"] == "mle" for e in events) == 15


def test_mle_patience_ends_pre_training_at_its_best_unit_and_resumes(tiny_dataset, tmp_path, monkeypatch):
    """With mle_patience 1, pre-training ends after the first unit that does not lower validation
    NLL: the MLE units left are skipped (the next metrics line says so), G keeps its best unit, and
    a run stopped there resumes with D pre-training."""
    overrides = ["mle_epochs=6", "mle_unit_batches=2", "mle_patience=1", "mle_keep_best=true", "adv_rounds=1",
                 "d_pretrain_rounds=1"]
    nll_of_unit = {0: 1.0, 1: 0.5, 2: 0.9}
    evaluate = Trainer._evaluate

    def scripted(self):  # each unit's first evaluation (the kept weights' is measured again)
        out = evaluate(self)
        if nll_of_unit.get(self.units_done) is not None:
            out["valid_nll"] = nll_of_unit.pop(self.units_done)
        return out

    monkeypatch.setattr(Trainer, "_evaluate", scripted)
    trainer = make_trainer(tiny_dataset, tmp_path, overrides=overrides)
    trainer.callbacks.append(lambda e: e["event"] == "metrics" and e["phase"] == "mle" and trainer.control.stop())
    assert trainer.run() == "stopped"
    resumed = make_trainer(tiny_dataset, tmp_path, overrides=overrides)
    assert resumed.run(resume=True) == "done"
    metrics = read_metrics(tmp_path)
    assert [m["phase"] for m in metrics] == ["mle"] * 3 + ["d_pretrain", "adversarial"]
    assert [m["next_unit"] for m in metrics] == [1, 2, 6, 7, 8]
    assert metrics[2]["mle_kept_epoch"] == 1 and read_checkpoint(str(tmp_path / MLE))["progress"] == 6


def test_mle_patience_needs_the_best_unit_kept(tiny_dataset, tmp_path):
    with pytest.raises(UserError, match="mle_patience needs mle_keep_best"):
        make_trainer(tiny_dataset, tmp_path, overrides=["mle_patience=2", "mle_keep_best=false"])


def test_runs_saved_with_retired_experiment_settings_still_load_and_resume(tiny_dataset, tmp_path):
    """Checkpoints written while experiments measured and not kept had their settings (e.g.
    mle_whole_tunes) load without them, and such a run resumes."""
    from seqgan_music.checkpoint import RETIRED_TRAIN_FIELDS

    trainer = make_trainer(tiny_dataset, tmp_path, overrides=["adv_rounds=2"])
    trainer.units = trainer.units[:3]
    trainer.run()
    state = read_checkpoint(str(tmp_path / LAST))
    state["run_config"]["train"].update(mle_lr_decay=False, mle_whole_tunes=False, mle_steps=0, form_steps=0,
                                        select_margin=0.0)
    assert set(RETIRED_TRAIN_FIELDS) <= set(state["run_config"]["train"])
    write_version_1(tmp_path / LAST, state)
    assert load_checkpoint(str(tmp_path / LAST)).config == trainer.cfg
    assert make_trainer(tiny_dataset, tmp_path, overrides=["adv_rounds=2"]).run(resume=True) == "done"


def test_a_run_folder_takes_one_training_at_a_time(tiny_dataset, tmp_path, capsys):
    """A second training (train, train --resume, the app) in a folder a training holds is one line
    naming the holder, and changes nothing there; the lock goes with its holder."""
    from seqgan_music.cli import main
    from seqgan_music.run_folder import RunFolder

    holder = make_trainer(tiny_dataset, tmp_path)
    with holder.files.locked():
        for extra in ([], ["--resume"]):
            assert main(["train", tiny_dataset, "--out", str(tmp_path), "--preset", "tiny", *extra]) == 2
            err = capsys.readouterr().err.strip()
            assert "another training is running in this folder (process " in err and len(err.splitlines()) == 1
        assert not os.path.exists(tmp_path / "metrics.jsonl") and not os.path.exists(tmp_path / "last.pt")
    with RunFolder(str(tmp_path)).locked():  # released: free again
        pass
    assert main(["train", tiny_dataset, "--out", str(tmp_path), "--preset", "tiny"]) == 0


def test_a_start_killed_before_its_first_checkpoint_leaves_no_stale_rows(tiny_dataset, tmp_path):
    (tmp_path / "metrics.jsonl").write_text(json.dumps({"event": "metrics", "phase": "mle", "unit": 0,
                                                        "unit_index": 0, "mle_loss": 9.0}) + "\n")
    trainer = make_trainer(tiny_dataset, tmp_path)
    assert trainer.run(resume=True) == "done"  # no last.pt: a fresh start
    rows = read_metrics(tmp_path)
    assert [r["unit_index"] for r in rows] == sorted({r["unit_index"] for r in rows}) and rows[0]["mle_loss"] != 9.0
