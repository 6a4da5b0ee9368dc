"""Drafts: the real form a run saves, the form critic's scores of drafts, and keeping one draft per
melody in generate, evaluate and old checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seqgan_music.cli import main
from seqgan_music.dataset import load_dataset
from seqgan_music.drafts import CALIBRATION, draft_scores, keep_drafts
from seqgan_music.generate import generate_tokens, load_run
from seqgan_music.metrics import off_key_notes
from seqgan_music.structure_critic import (
    BINS,
    bin_histogram,
    count_bins,
    phrase_rates,
    rate_histogram,
    real_form,
)


def test_real_form_is_the_histogram_of_each_prefix_length(bars_run_dir, monkeypatch):
    data, run = bars_run_dir
    ds = load_dataset(data)
    form = real_form(ds.tokenizer, ds.train)
    assert form["lengths"] == [4, 8, 12, 17, 21, 25, 29, 34]  # T = 34: T * k / 8
    for n, histogram, off_key in zip(form["lengths"], form["histograms"], form["off_key"]):
        assert np.allclose(histogram, rate_histogram(phrase_rates(ds.tokenizer, ds.train[:, :n])))
        counts = [off_key_notes(notes) for notes in ds.tokenizer.decode_all(ds.train[:, :n].numpy())]
        assert np.allclose(off_key, bin_histogram(count_bins(np.array(counts))))
    monkeypatch.setattr("seqgan_music.structure_critic.FORM_WINDOWS", 2)  # at most 2 windows, evenly spaced
    every = -(-len(ds.train) // 2)
    assert np.allclose(real_form(ds.tokenizer, ds.train)["histograms"][-1],
                       rate_histogram(phrase_rates(ds.tokenizer, ds.train[::every])))
    saved = load_run(run).state["form_real"]  # what training saved: its real windows' form
    assert saved["lengths"] == form["lengths"] and all(len(h) == BINS for h in saved["histograms"] + saved["off_key"])


def _drafts(data):
    """Two windows of T = 34 tokens (two bars) from ``data``'s training windows: one whose second
    bar copies its first (many 4-note patterns recur) and one with the lowest repetition."""
    ds = load_dataset(data)
    rates = phrase_rates(ds.tokenizer, ds.train)
    plain = ds.train[int(np.argmin(rates))]
    copied = torch.cat([plain[:17], plain[:17]])
    return ds.tokenizer, copied, plain


def test_draft_scores_are_the_form_critics_log_ratio_hand_computed(bars_run_dir):
    """A run saved before off-key notes were judged (form_real without ``off_key``): the score is
    the phrase-repetition log-ratio alone."""
    data, run_dir = bars_run_dir
    run = load_run(run_dir)
    tok, copied, plain = _drafts(data)
    rate_copied, rate_plain = phrase_rates(tok, torch.stack([copied, plain]))
    assert rate_copied >= 0.5 > rate_plain
    real = rate_histogram(np.full(10, rate_copied))  # real windows repeat as much as the copy
    run.state["form_real"] = {"lengths": [17, 34], "histograms": [rate_histogram(np.zeros(3)).tolist(), real.tolist()]}
    asked = []

    def own_windows(count, length):  # G's windows: all as plain as the plain draft
        asked.append((count, length))
        return plain.repeat(count, 1)[:, :length]

    scores = draft_scores(run, torch.stack([copied, plain]), own_windows)
    assert asked == [(CALIBRATION - 2, 34)]
    gen = rate_histogram(np.array([rate_copied] + [rate_plain] * (CALIBRATION - 1)))
    bin_of = lambda r: min(int(r * BINS), BINS - 1)  # noqa: E731
    expected = [np.log(real[bin_of(r)] / gen[bin_of(r)]) for r in (rate_copied, rate_plain)]
    assert np.allclose(scores, expected)
    # a 3-bar draft is covered by two windows (from its bar lines at 0 and 34), one score
    three_bars = torch.cat([copied, plain[17:]])
    assert len(draft_scores(run, three_bars[None], own_windows)) == 1
    # drafts of 20 tokens are judged as windows of 17, against the real histogram of that length
    short = draft_scores(run, torch.stack([copied, plain])[:, :20], own_windows)
    assert asked[-1] == (CALIBRATION - 4, 17) and np.isfinite(short).all()
    assert draft_scores(run, torch.stack([copied, plain])[:, :10], own_windows) is None  # shorter than any length
    # keep_drafts: groups of (plain, copied): the copy is kept nearly always, each row one of its group's
    groups = torch.stack([plain, copied] * 30)
    kept = keep_drafts(run, groups, 2, own_windows, seed=0)
    assert kept.shape == (30, 34)
    assert sum(bool(torch.equal(row, copied)) for row in kept) >= 28


def test_draft_scores_add_the_off_key_log_ratio_and_keep_the_draft_in_key(bars_run_dir):
    """Drafts: a training window and a sour copy of it, every third note a semitone up. Real
    windows have as many off-key notes as the window, G's as the sour copy: the score is the sum
    of both statistics' log-ratios, and the window is kept nearly always."""
    data, run_dir = bars_run_dir
    run = load_run(run_dir)
    tok, _, plain = _drafts(data)
    sour = plain.clone()
    pitch = tok.token_pitch(plain.numpy())
    notes_at = np.flatnonzero((pitch >= 0) & (pitch < tok.config.pitch_high))  # notes a semitone can raise
    sour[notes_at[::3]] += 1  # NOTE_ON ids run up by pitch
    drafts = torch.stack([plain, sour])
    off_key = [off_key_notes(notes) for notes in tok.decode_all(drafts.numpy())]
    rates = phrase_rates(tok, drafts)
    assert off_key[1] > off_key[0]
    real_rep, real_key = rate_histogram(rates[:1].repeat(10)), bin_histogram(count_bins(np.full(10, off_key[0])))
    run.state["form_real"] = {"lengths": [34], "histograms": [real_rep.tolist()], "off_key": [real_key.tolist()]}
    sour_windows = lambda count, length: sour.repeat(count, 1)[:, :length]  # noqa: E731
    scores = draft_scores(run, drafts, sour_windows)
    gen_rep = rate_histogram(np.array([rates[0]] + [rates[1]] * (CALIBRATION - 1)))
    gen_key = bin_histogram(count_bins(np.array([off_key[0]] + [off_key[1]] * (CALIBRATION - 1))))
    rep_bin = lambda r: min(int(r * BINS), BINS - 1)  # noqa: E731
    key_bin = lambda k: min(k, BINS - 1)  # noqa: E731
    expected = [np.log(real_rep[rep_bin(r)] / gen_rep[rep_bin(r)]) + np.log(real_key[key_bin(k)] / gen_key[key_bin(k)])
                for r, k in zip(rates, off_key)]
    assert np.allclose(scores, expected) and scores[0] > scores[1]
    kept = keep_drafts(run, torch.stack([sour, plain] * 30), 2, sour_windows, seed=0)
    assert sum(bool(torch.equal(row, plain)) for row in kept) >= 28


def test_generate_keeps_one_of_each_melodys_drafts(tiny_run_dir):
    """generate_tokens with drafts K draws the same K * num melodies as K * num single drafts
    (the same random stream) and keeps one of each consecutive K."""
    run = load_run(tiny_run_dir)
    drafts = generate_tokens(run, 12, 32, seed=3)
    kept = generate_tokens(run, 3, 32, seed=3, drafts=4)
    assert kept.shape == (3, 32)
    for i, row in enumerate(kept):
        assert any(torch.equal(row, d) for d in drafts[4 * i : 4 * i + 4])
    with pytest.raises(Exception, match="--drafts must lie in 1..64, not 0"):
        generate_tokens(run, 3, 32, drafts=0)
    with pytest.raises(Exception, match="--drafts must lie in 1..64, not 1000000000"):
        generate_tokens(run, 3, 32, drafts=10**9)
    with pytest.raises(Exception, match="more than 16777216 tokens in one request"):
        generate_tokens(run, 10_000, 65_536)


def test_old_checkpoints_keep_the_first_draft_and_crafted_forms_are_refused(tiny_run_dir, tmp_path, capsys):
    state = torch.load(f"{tiny_run_dir}/last.pt", weights_only=True)
    for name, form in (("old", None), ("crafted", {"lengths": [8, 16], "histograms": [[0.5] * BINS]})):
        (tmp_path / name).mkdir()
        torch.save({**state, "form_real": form}, str(tmp_path / name / "last.pt"))
    out = tmp_path / "midi"
    assert main(["generate", str(tmp_path / "old"), "--num", "2", "--steps", "32", "--out", str(out), "--seed", "5"]) == 0
    assert "trained before drafts were judged" in capsys.readouterr().err
    assert torch.equal(generate_tokens(load_run(str(tmp_path / "old")), 2, 32, seed=5, drafts=4),
                       generate_tokens(load_run(str(tmp_path / "old")), 2, 32, seed=5))  # as drawn, no drafts
    T = state["run_config"]["discriminator"]["seq_len"]
    sour = {"lengths": [T], "histograms": [[0.1] * BINS], "off_key": [[0.1] * (BINS - 1)]}  # off-key histogram too short
    (tmp_path / "sour").mkdir()
    torch.save({**state, "form_real": sour}, str(tmp_path / "sour" / "last.pt"))
    for name in ("crafted", "sour"):
        assert main(["generate", str(tmp_path / name), "--num", "1", "--out", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert "form_real must give increasing window lengths" in err and len(err.splitlines()) == 1


def test_evaluate_adds_rows_of_kept_drafts(tiny_run_dir, tiny_dataset, capsys):
    import json

    assert main(["evaluate", tiny_run_dir, "--data", tiny_dataset, "--num", "30", "--temperature", "1.0", "--melodies", "0",
                 "--drafts", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [r["model"] for r in result["rows"]] == ["MLE", "MLE x2", "best", "best x2", "last", "last x2", "Markov-4", "real"]
    assert result["drafts"] == 2
    assert main(["evaluate", tiny_run_dir, "--data", tiny_dataset, "--drafts", "0"]) == 2


def test_drafts_of_tunes_the_model_ends_are_judged_up_to_their_end(bars_run_dir):
    data, run_dir = bars_run_dir
    run = load_run(run_dir)
    tok = run.tokenizer
    kept = generate_tokens(run, 3, 17 * 5, seed=0, meter="4/4", model_ends=True, drafts=4)
    assert kept.shape == (3, 85)
    for row in kept.numpy():
        tune = tok.tune_part(row)
        assert 1 <= tok.bars_in(tune) <= 5 and (row[len(tune):] == tok.end_token).all()
    ended = torch.full((2, 34), tok.end_token)
    ended[:, :17] = load_dataset(data).train[0, :17]  # one bar, then END: judged as that bar alone
    assert np.isfinite(draft_scores(run, ended, lambda count, length: ended[:1].repeat(count, 1)[:, :length])).all()
