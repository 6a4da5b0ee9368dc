"""The adversarial objective, model selection, the collapse guard and the evaluation that judges them."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
import torch

from seqgan_music.checkpoint import BEST, LAST, MLE, read_checkpoint
from seqgan_music.cli import main
from seqgan_music.config import TrainConfig, apply_overrides, make_run_config
from seqgan_music.critic import two_sample_accuracy
from seqgan_music.dataset import load_dataset
from seqgan_music.errors import UserError
from seqgan_music.markov import MarkovChain
from seqgan_music.metrics import (
    duration_entropy,
    one_pitch_rate,
    phrase_repetition,
    pitch_class_distance,
    silent_rate,
)
from seqgan_music.policy_gradient import advantages, entropy_per_token, kl_per_token, policy_gradient_loss
from seqgan_music.selection import Judgement, collapse_reason, eligible
from seqgan_music.structure_critic import StructureCritic, phrase_rates, rate_histogram
from seqgan_music.trainer import Trainer

# ---------------------------------------------------------------- policy gradient arithmetic


def test_advantages_batch_baseline_and_normalisation_hand_computed():
    rewards = torch.tensor([[1.0, 0.2], [0.0, 0.2]])
    assert torch.equal(advantages(rewards, "none", False), rewards)
    centred = advantages(rewards, "batch", False)
    assert torch.allclose(centred, torch.tensor([[0.5, 0.0], [-0.5, 0.0]]))
    # entries 0.5, 0, -0.5, 0: mean 0, unbiased variance 0.5 / 3
    normed = advantages(rewards, "batch", True)
    assert torch.allclose(normed, centred / math.sqrt(0.5 / 3))
    flat = advantages(torch.full((3, 4), 0.7), "batch", True)  # D scores all alike: no step, no blown-up noise
    assert torch.equal(flat, torch.zeros(3, 4))
    with pytest.raises(ValueError):
        advantages(rewards, "mean")


def test_kl_and_entropy_hand_computed():
    p = torch.log(torch.tensor([[[0.5, 0.5]]]))
    q = torch.log(torch.tensor([[[0.25, 0.75]]]))
    expected = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    assert kl_per_token(p, q).item() == pytest.approx(expected, abs=1e-6)
    assert kl_per_token(q, q).item() == pytest.approx(0.0, abs=1e-7)
    assert entropy_per_token(torch.zeros(2, 3, 4)).shape == (2, 3)
    assert entropy_per_token(torch.zeros(1, 1, 4)).item() == pytest.approx(math.log(4))


def test_policy_gradient_loss_and_its_gradient():
    logits = torch.zeros(1, 2, 2, requires_grad=True)  # two steps, uniform over two tokens
    targets = torch.tensor([[0, 1]])
    log_probs = torch.log_softmax(logits, -1).gather(2, targets.unsqueeze(2)).squeeze(2)
    adv = torch.tensor([[1.0, -1.0]])
    loss = policy_gradient_loss(log_probs, adv)
    assert loss.item() == pytest.approx(-(math.log(0.5) - math.log(0.5)))
    loss.backward()
    # d(-A log p_y)/d logit_v = -A (1[v = y] - p_v): step 0 pushes token 0 up, step 1 pushes token 1 down
    assert torch.allclose(logits.grad, torch.tensor([[[-0.5, 0.5], [-0.5, 0.5]]]))
    ref = torch.log(torch.tensor([[[0.9, 0.1], [0.9, 0.1]]]))
    kl = kl_per_token(logits, ref)
    with_kl = policy_gradient_loss(log_probs, adv, kl, 0.5)
    assert with_kl.item() == pytest.approx(loss.item() + 0.5 * kl.sum().item(), abs=1e-6)


# ---------------------------------------------------------------- selection and collapse guard


def _judgement(**changes):
    base = dict(score=0.8, entropy=1.2, silent=0.05, one_pitch=0.02, overlap=0.8, valid_nll=1.1)
    return Judgement(**{**base, **changes})


def test_collapse_reasons_and_eligibility():
    ref = _judgement()
    tc = TrainConfig(collapse_entropy=0.5, collapse_rate=0.25, collapse_pinned_rounds=3, select_nll_budget=0.1)
    assert collapse_reason(_judgement(), ref, 0, tc) is None
    assert "entropy" in collapse_reason(_judgement(entropy=0.59), ref, 0, tc)
    assert collapse_reason(_judgement(entropy=0.61), ref, 0, tc) is None
    assert "silent" in collapse_reason(_judgement(silent=0.31), ref, 0, tc)
    assert "one pitch" in collapse_reason(_judgement(one_pitch=0.28), ref, 0, tc)
    assert "pinned" in collapse_reason(_judgement(), ref, 3, tc)
    assert collapse_reason(_judgement(entropy=0.0, silent=1.0), ref, 9, TrainConfig()) is None  # paper: guard off
    assert eligible(_judgement(valid_nll=1.2), ref, tc) and not eligible(_judgement(valid_nll=1.21), ref, tc)
    assert eligible(_judgement(silent=0.1, one_pitch=0.07, overlap=0.77), ref, tc)
    assert not eligible(_judgement(silent=0.11), ref, tc) and not eligible(_judgement(one_pitch=0.08), ref, tc)
    assert not eligible(_judgement(overlap=0.76), ref, tc)


def _trainer(dataset_dir, run_dir, overrides, callbacks=None):
    ds = load_dataset(dataset_dir)
    cfg = apply_overrides(make_run_config("tiny", ds.tokenizer.vocab_size, ds.seq_len), overrides)
    return Trainer(cfg, ds.train, ds.valid, str(run_dir), torch.device("cpu"), ds.tokenizer, callbacks=callbacks)


def _metrics(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def _weights_equal(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


# plain REINFORCE at a huge learning rate: G collapses onto its favourite tokens within a few rounds
COLLAPSING = ["pg_baseline=none", "pg_normalize=false", "kl_coef=0", "pg_lr=1.0", "adv_rounds=8", "select_samples=64"]


def test_collapsing_run_keeps_a_pre_collapse_best_model(tiny_dataset, tmp_path):
    trainer = _trainer(tiny_dataset, tmp_path, COLLAPSING + ["collapse_entropy=0", "collapse_rate=1",
                                                             "collapse_pinned_rounds=0"])
    assert trainer.run() == "done"
    metrics = _metrics(tmp_path)
    adv = [m for m in metrics if m["phase"] == "adversarial"]
    mle_entropy = [m for m in metrics if m["phase"] == "mle"][-1]["select_entropy"]
    assert len(adv) == 8 and adv[-1]["select_entropy"] < 0.5 * mle_entropy  # it did collapse
    best, last, mle = (read_checkpoint(str(tmp_path / f)) for f in (BEST, LAST, MLE))
    best_unit = adv[-1]["best_unit"]
    assert best_unit < metrics.index(adv[-1])  # chosen before the end ...
    chosen = metrics[best_unit]
    assert chosen["select_entropy"] > 0.5 * mle_entropy  # ... from a model that had not collapsed
    assert not _weights_equal(best["generator"], last["generator"])
    if best_unit == len([m for m in metrics if m["phase"] == "mle"]) - 1:
        assert _weights_equal(best["generator"], mle["generator"])


def test_collapse_guard_rolls_back_and_ends_training(tiny_dataset, tmp_path):
    events = []
    trainer = _trainer(tiny_dataset, tmp_path, COLLAPSING + ["collapse_entropy=0.5"], [events.append])
    assert trainer.run() == "done"
    notices = [e for e in events if e["event"] == "notice"]
    assert len(notices) == 1 and "collapse" in notices[0]["message"] and "rolled G back" in notices[0]["message"]
    metrics = _metrics(tmp_path)
    assert metrics[-1]["notice"] == notices[0]["message"]
    assert len([m for m in metrics if m["phase"] == "adversarial"]) < 8  # the remaining rounds were not run
    best, last = read_checkpoint(str(tmp_path / BEST)), read_checkpoint(str(tmp_path / LAST))
    assert _weights_equal(best["generator"], last["generator"])  # rolled back
    assert last["progress"] == last["units"]  # a resume finds the run finished
    assert trainer.run(resume=True) == "done"


def test_kl_tie_reference_is_the_mle_model_and_resumes(tiny_dataset, tmp_path):
    trainer = _trainer(tiny_dataset, tmp_path, ["adv_rounds=2", "kl_coef=0.5"])
    assert trainer.run() == "done"
    mle = read_checkpoint(str(tmp_path / MLE))
    assert _weights_equal(trainer.reference.state_dict(), mle["generator"])
    adv = _metrics(tmp_path)[-2:]
    assert all(m["kl_mle"] >= 0 for m in adv) and adv[-1]["kl_mle"] > 0
    batches = -(-len(trainer.windows.train) // trainer.cfg.train.batch_size)
    g_steps = int(next(iter(trainer.mle.opt.state_dict()["state"].values()))["step"])
    assert g_steps == trainer.cfg.train.mle_epochs * batches  # MLE's Adam is not the policy gradient's
    again = _trainer(tiny_dataset, tmp_path, ["adv_rounds=2", "kl_coef=0.5"])
    again.load_state(str(tmp_path / LAST))
    assert _weights_equal(again.reference.state_dict(), mle["generator"])
    assert again.best.state == trainer.best.state


def test_structure_critic_is_the_density_ratio_of_real_and_recent_samples_hand_computed():
    critic = StructureCritic(rate_histogram(np.full(10, 0.85)))  # real windows: 10 in the bin [0.8, 0.9)
    critic.observe(np.full(10, 0.05))  # G's samples: 10 in [0, 0.1); with one extra count per bin,
    # real has 11/20 in bin 8 and 1/20 elsewhere, the samples 11/20 in bin 0 and 1/20 elsewhere
    got = critic(np.array([0.85, 0.05, 0.45, 1.0]))
    assert torch.allclose(got, torch.tensor([0.55 / 0.6, 0.05 / 0.6, 0.5, 0.5]))
    critic.observe(np.full(10, 0.85))  # G learnt to repeat: bin 8 = 0.9 * 0.05 + 0.1 * 0.55 = 0.1
    assert torch.allclose(critic(np.array([0.85])), torch.tensor([0.55 / 0.65]))
    again = StructureCritic(rate_histogram(np.full(10, 0.85)))
    again.load_state(critic.state())
    assert torch.equal(again(np.array([0.85, 0.05])), critic(np.array([0.85, 0.05])))
    p = critic(np.array([0.85, 0.05])).double().numpy()
    assert np.allclose(critic.log_ratio(np.array([0.85, 0.05])), np.log(p / (1 - p)))


def test_structure_reward_trains_and_resumes_with_the_critic(tiny_dataset, tmp_path):
    ds = load_dataset(tiny_dataset)
    rates = phrase_rates(ds.tokenizer, ds.train)
    notes = ds.tokenizer.decode_notes(ds.train[0].numpy())
    assert rates[0] == phrase_repetition(notes) and ((rates >= 0) & (rates <= 1)).all()
    trainer = _trainer(tiny_dataset, tmp_path, ["adv_rounds=2", "structure_reward=1"])
    assert trainer.run() == "done"
    adv = [m for m in _metrics(tmp_path) if m["phase"] == "adversarial"]
    assert all(0 < m["form_reward"] < 1 and 0 <= m["sample_phrase_rep"] <= 1 for m in adv)
    again = _trainer(tiny_dataset, tmp_path, ["adv_rounds=2", "structure_reward=1"])
    again.load_state(str(tmp_path / LAST))
    assert np.array_equal(again.structure.generated, trainer.structure.generated)
    with pytest.raises(UserError, match="structure_reward"):
        apply_overrides(make_run_config("tiny", 40, 16), ["structure_reward=-1"])


def test_the_form_reward_source_gives_each_token_its_samples_weighted_probability_of_real(tiny_dataset):
    """FormReward: before the first batch the critic observes G's first samples; then every token
    of a sample gets ``weight`` times the critic's probability of real of its phrase repetition."""
    from seqgan_music.rewards import FormReward

    ds = load_dataset(tiny_dataset)
    windows = ds.train[:8]
    critic = StructureCritic(rate_histogram(phrase_rates(ds.tokenizer, ds.train)))
    drawn = []
    source = FormReward(critic, ds.tokenizer, 2.0, lambda num: (drawn.append(num) or windows[:num], None), 4)
    source.before_batch()
    assert drawn == [4] and critic.generated is not None
    source.before_batch()
    assert drawn == [4]  # observed once
    expected = 2.0 * critic(phrase_rates(ds.tokenizer, windows))
    metrics = {}
    rewards = source(windows, None, metrics)
    assert rewards.shape == windows.shape and torch.allclose(rewards, expected[:, None].expand_as(rewards))
    assert metrics["form_reward"] == pytest.approx(float(expected.mean()) / 2)


def test_schedule_without_mle_epochs_selects_from_the_start_of_the_adversarial_phase(tiny_dataset, tmp_path):
    trainer = _trainer(tiny_dataset, tmp_path, ["mle_epochs=0", "adv_rounds=2", "select_nll_budget=100"])
    assert trainer.run() == "done"
    adv = _metrics(tmp_path)[-2:]
    assert adv[0]["best_model"] in ("the start of the adversarial phase", "adversarial round 1")
    assert adv[-1]["best_model"].startswith(("the start", "adversarial round"))
    assert all(os.path.exists(tmp_path / f) for f in (BEST, MLE, LAST))
    best = read_checkpoint(str(tmp_path / BEST))["generator"]
    start_or_round = adv[-1]["best_unit"]
    assert start_or_round in (0, 1, 2)  # the D pre-training round before the adversarial phase, or a round
    if start_or_round == 2:  # the last round is the best: best.pt holds the final generator
        assert _weights_equal(best, read_checkpoint(str(tmp_path / LAST))["generator"])


def test_d_steps_are_skipped_while_d_is_ahead(tiny_dataset, tmp_path):
    trainer = _trainer(tiny_dataset, tmp_path, ["adv_rounds=2", "d_max_acc=0.01", "d_label_smoothing=0.2"])
    assert trainer.run() == "done"
    adv = _metrics(tmp_path)[-2:]
    for m in adv:
        assert 0 <= m["d_acc_check"] <= 1 and 0 <= m["d_real_seen"] <= 1 and 0 <= m["d_real_unseen"] <= 1
        assert (m["d_skipped"] == 1.0) == (m["d_acc_check"] > 0.01)
        assert ("d_loss" in m) == (m["d_skipped"] == 0.0)


def test_d_check_tells_windows_learnt_by_heart_from_held_out_ones(tiny_dataset, tmp_path):
    """A D that calls real exactly the training windows it has seen: it catches every sample and
    every training window (accuracy 1), and no validation window; the round's metrics carry both,
    and the share of D's windows moved in pitch rises (:mod:`seqgan_music.d_augment`)."""
    trainer = _trainer(tiny_dataset, tmp_path, ["adv_rounds=1"])
    seen = {tuple(w.tolist()) for w in trainer.windows.train}
    assert len(trainer.windows.held_out) and not any(tuple(w.tolist()) in seen for w in trainer.windows.held_out)
    trainer.D.prob_real = lambda windows: torch.tensor([float(tuple(w.tolist()) in seen) for w in windows])
    check = trainer.d_phase.check(torch.full((8,), 0.2))
    assert check == {"d_acc_check": 1.0, "d_real_seen": 1.0, "d_real_unseen": 0.0, "d_augment": 0.25}
    again = trainer.d_phase.check(torch.full((8,), 0.9))
    assert again["d_acc_check"] == 0.5 and again["d_augment"] == 0.5


def test_paper_preset_keeps_the_plain_algorithm():
    t = make_run_config("paper", 89, 32).train
    assert (t.pg_baseline, t.pg_normalize, t.kl_coef, t.d_max_acc, t.d_label_smoothing) == ("none", False, 0.0, 1.0, 0.0)
    assert (t.collapse_entropy, t.collapse_rate, t.collapse_pinned_rounds) == (0.0, 1.0, 0)
    s = make_run_config("demo", 39, 32).train
    assert s.pg_baseline == "batch" and s.kl_coef > 0 and s.collapse_entropy > 0


# ---------------------------------------------------------------- generate picks a model


def test_generate_uses_best_by_default_and_lets_the_user_pick(tiny_run_dir, tmp_path, monkeypatch):
    import shutil

    import seqgan_music.generate as generate

    loaded = []
    real_load = generate.load_checkpoint
    monkeypatch.setattr(generate, "load_checkpoint", lambda path, device: loaded.append(path) or real_load(path, device))
    for model in ("best", "mle", "last"):
        assert main(["generate", tiny_run_dir, "--num", "2", "--steps", "8", "--out", str(tmp_path / model),
                     "--model", model]) == 0
    assert main(["generate", tiny_run_dir, "--num", "1", "--steps", "8", "--out", str(tmp_path / "default")]) == 0
    assert [os.path.basename(p) for p in loaded] == [BEST, MLE, LAST, BEST]
    old = tmp_path / "old-run"  # a run trained before model selection: "best" means its last state
    shutil.copytree(tiny_run_dir, old)
    os.remove(old / BEST)
    assert os.path.basename(generate.checkpoint_path(str(old), "best")) == LAST
    with pytest.raises(SystemExit) as exc:
        main(["generate", tiny_run_dir, "--num", "1", "--out", str(tmp_path / "x"), "--model", "worst"])
    assert exc.value.code == 2


def test_generate_warns_about_silent_melodies(tiny_run_dir, tmp_path, capsys, monkeypatch):
    import seqgan_music.melody_request as melody_request

    monkeypatch.setattr(melody_request, "generate_tokens", lambda *a, **k: torch.zeros(3, 8, dtype=torch.long))
    assert main(["generate", tiny_run_dir, "--num", "3", "--out", str(tmp_path)]) == 0
    assert "3 of 3 melodies have no notes" in capsys.readouterr().err


# ---------------------------------------------------------------- new metrics, hand computed


def test_melody_measures_hand_computed():
    a = [(60, 0, 2), (62, 2, 3), (64, 3, 4), (65, 4, 8), (60, 8, 10), (62, 10, 11), (64, 11, 12), (65, 12, 16)]
    assert phrase_repetition(a) == pytest.approx(2 / 5)
    assert phrase_repetition(a[:3]) == 0.0
    melodies = [a, [], [(67, 0, 1), (67, 2, 3)]]
    assert silent_rate(melodies) == pytest.approx(1 / 3)
    assert one_pitch_rate(melodies) == pytest.approx(1 / 3)
    # durations: 2, 1, 1, 4, 2, 1, 1, 4, 1, 1 -> 1: 6/10, 2: 2/10, 4: 2/10
    expected = -(0.6 * math.log2(0.6) + 2 * 0.2 * math.log2(0.2))
    assert duration_entropy(melodies) == pytest.approx(expected)
    assert duration_entropy([[]]) == 0.0
    # pitch classes C D E F each 2/8 vs all on G: distance 1; against itself 0
    assert pitch_class_distance([a], [[(67, 0, 1)]]) == pytest.approx(1.0)
    assert pitch_class_distance([a], [a]) == 0.0
    assert pitch_class_distance([[(60, 0, 1), (62, 1, 2)]], [[(60, 0, 1)]]) == pytest.approx(0.5)


def test_markov_chain_reproduces_deterministic_data_and_backs_off():
    windows = np.array([[1, 2, 3, 1, 2, 3], [1, 2, 3, 1, 2, 3]])
    chain = MarkovChain(2, 5).fit(windows)
    assert (chain.sample(4, 6, seed=1) == windows[0]).all()
    assert chain.distribution((4, 4))[-1] == pytest.approx(1.0)  # unseen context: the unigram distribution
    unigram = np.diff(np.r_[0, chain.distribution((4, 4))])
    assert np.allclose(unigram, [0, 1 / 3, 1 / 3, 1 / 3, 0])
    mixed = MarkovChain(1, 3).fit(np.array([[0, 1], [0, 2]]))
    draws = mixed.sample(400, 2, seed=0)
    assert (draws[:, 0] == 0).all() and 0.4 < (draws[:, 1] == 1).mean() < 0.6


def test_critic_separates_different_sources_and_not_identical_ones():
    rng = np.random.default_rng(0)
    real = rng.integers(0, 4, (240, 12))
    groups = np.repeat(np.arange(24), 10)
    other = rng.integers(4, 8, (240, 12))
    assert two_sample_accuracy(real, groups, other, 8, epochs=3) > 0.95
    same = rng.integers(0, 4, (240, 12))
    assert abs(two_sample_accuracy(real, groups, same, 8, epochs=3) - 0.5) < 0.12


def test_evaluate_rows_mle_best_last_markov_real(tiny_run_dir, tiny_dataset, capsys):
    assert main(["evaluate", tiny_run_dir, "--data", tiny_dataset, "--num", "40", "--temperature", "1.0", "--melodies", "0",
                 "--json", "--device", "cpu"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [r["model"] for r in result["rows"]] == ["MLE", "best", "last", "Markov-4", "real"]
    for r in result["rows"]:
        assert 0 <= r["critic"] <= 1 and 0 <= r["silent"] <= 1 and 0 <= r["pc_dist"] <= 1
        assert r["dur_entropy"] >= 0 and 0 <= r["phrase_rep"] <= 1
    assert math.isnan(result["rows"][-1]["valid_nll"]) and result["rows"][-1]["temperature"] is None


def test_evaluate_reports_tune_lengths_with_tune_ends(bars_run_dir, tiny_run_dir, tiny_dataset):
    """On data with tune ends, evaluate samples whole tunes until END and compares their lengths in
    bars with the validation tunes' (a model with the bars-left feature, every preset's, asked for
    lengths of training tunes), and how many end on their key's tonic against the real tunes;
    without tune ends there is no such section."""
    from seqgan_music.evaluate import MAX_TUNE_BARS, evaluate_run, format_report
    from seqgan_music.metrics import ends_on_tonic

    data, run = bars_run_dir
    result = evaluate_run(run, data, num=30, temperatures=(1.0,), melodies=0)
    ds = load_dataset(data)
    real = [ds.tokenizer.bars_in(p) for p, v in zip(ds.pieces, ds.piece_is_valid) if v]
    assert result["tune_bars"]["valid"]["mean"] == pytest.approx(np.mean(real))
    tonic = [ends_on_tonic(ds.tokenizer.decode_notes(p)) for p, v in zip(ds.pieces, ds.piece_is_valid) if v]
    assert result["tune_bars"]["valid"]["tonic"] == pytest.approx(np.mean(tonic))
    for label in ("MLE", "best", "last", "real"):
        lengths = result["tune_bars"][label]
        assert 0 <= lengths["p10"] <= lengths["median"] <= lengths["p90"] <= MAX_TUNE_BARS
        assert 0 <= lengths["ended"] <= 1 and 0 <= lengths["overlap"] <= 1 and 0 <= lengths["tonic"] <= 1
        assert (0 <= lengths["as_asked"] <= 1) if label != "real" else "as_asked" not in lengths
    assert "tune length in bars" in format_report(result) and "as asked" in format_report(result)
    assert not evaluate_run(tiny_run_dir, tiny_dataset, num=10, temperatures=(1.0,), melodies=0)["tune_bars"]


def test_structure_floor_script_reports_what_real_tunes_reach(bars_run_dir):
    """scripts/structure_floor.py: per structure statistic, the overlap of training windows with
    the validation windows (mean and lowest over draws) and with other training windows."""
    import subprocess
    import sys

    data, _ = bars_run_dir
    script = os.path.join(os.path.dirname(__file__), "..", "scripts", "structure_floor.py")
    out = subprocess.run([sys.executable, script, data, "--num", "10", "--draws", "3"], capture_output=True,
                         text=True, check=True).stdout.splitlines()
    head = next(i for i, line in enumerate(out) if "validation tunes" in line)  # (a library may print before it)
    rows = {line.split()[0]: [float(x.strip("()")) for x in line.split()[1:]] for line in out[head + 1 :]}
    assert list(rows) == ["phrase_rep", "tonic_ending", "downbeat_share", "on_beat_share", "key_agreement"]
    for mean, lowest, training in rows.values():
        assert 0 <= lowest <= mean <= 1 and 0 <= training <= 1


def test_select_latest_keeps_the_newest_eligible_round(tiny_dataset, tmp_path, monkeypatch):
    """With ``select_latest`` every eligible round becomes best.pt whatever its validation NLL; a
    round that fails the guards does not."""
    from seqgan_music import selection

    verdicts = iter([True, False, True, False])  # the guards' verdict on adversarial rounds 0..3
    monkeypatch.setattr(selection, "eligible", lambda j, reference, tc: next(verdicts))
    trainer = _trainer(tiny_dataset, tmp_path, ["select_latest=true", "adv_rounds=4", "d_max_acc=1"])
    assert trainer.run() == "done"
    adv = [m for m in _metrics(tmp_path) if m["phase"] == "adversarial"]
    assert [m["best_unit"] for m in adv] == [adv[0]["unit_index"]] * 2 + [adv[2]["unit_index"]] * 2
    best, last = (read_checkpoint(str(tmp_path / f)) for f in (BEST, LAST))
    assert not _weights_equal(best["generator"], last["generator"])  # round 3 failed the guards


def test_whole_tune_preset_keeps_the_newest_round_trains_with_dropout_copy_runs_and_the_form_critic():
    cfg = make_run_config("tune", 52, 136, 0, list(range(39, 52)))
    assert cfg.train.select_latest and cfg.generator.dropout == 0.4 and cfg.train.mle_patience > 0
    assert cfg.generator.copy_runs and cfg.generator.lookback_bars == [1, 2, 4, 8]
    assert cfg.train.structure_reward == 1.0
    cpu = make_run_config("cpu", 39, 32).train
    assert not cpu.select_latest and cpu.structure_reward == 0
