"""D's windows moved in pitch once D learns the songs by heart: the move itself, the share's rule,
and that a run keeps the share across a resume."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from seqgan_music.checkpoint import save_checkpoint
from seqgan_music.config import TokenizerConfig, apply_overrides, make_run_config
from seqgan_music.d_augment import FALL, RISE, PitchAugment
from seqgan_music.dataset import load_dataset
from seqgan_music.tokenizer import HOLD, Tokenizer
from seqgan_music.trainer import Trainer
from seqgan_music.trainer_state import restore, saved_state


def test_every_chosen_window_moves_its_notes_and_keeps_bars_and_holds():
    tok = Tokenizer(TokenizerConfig(encoding="bars", seq_len=34, hop=17))
    rng = np.random.default_rng(0)
    windows = torch.from_numpy(np.stack([_window(tok, rng) for _ in range(64)]))
    assert PitchAugment(tok, 5, p=0.0)(windows, torch.Generator().manual_seed(0)).equal(windows)
    moved = PitchAugment(tok, 5, p=1.0)(windows, torch.Generator().manual_seed(0)).numpy()
    before, after = tok.token_pitch(windows.numpy()), tok.token_pitch(moved)
    assert ((before >= 0) == (after >= 0)).all()  # notes stay notes; bar lines, holds and rests stay put
    assert (moved[before < 0] == windows.numpy()[before < 0]).all()
    shifts = set()
    for b, a in zip(before, after):
        steps = {int(x) % 12 for x in (a - b)[b >= 0]}  # by octaves where a note left the range
        assert len(steps) == 1 and steps != {0}
        shifts |= steps
    assert len(shifts) > 4  # moves in both directions, several sizes


def _window(tok: Tokenizer, rng: np.random.Generator) -> np.ndarray:
    """A (34,) window of two bars of 4/4: a bar line, then notes of random pitch held for a step."""
    enc = tok.encoding
    bar = [enc.bar_token("4/4")]
    body = [int(t) for k in rng.integers(0, enc.high - enc.low + 1, 8) for t in (2 + k, HOLD)]  # NOTE_ON(low + k), HOLD
    return np.array(bar + body + bar + body[::-1], dtype=np.int64)


@pytest.mark.parametrize("seen, unseen, expected", [(0.9, 0.2, 0.5 + RISE), (0.6, 0.5, 0.5 - FALL)])
def test_the_share_rises_while_d_calls_held_out_tunes_fake_and_falls_otherwise(seen, unseen, expected):
    augment = PitchAugment(None, 5, p=0.5)
    augment.adapt({"d_real_seen": seen, "d_real_unseen": unseen})
    assert augment.p == pytest.approx(expected)
    augment.adapt({"d_real_seen": 1.0})  # no held-out windows: nothing to go by
    assert augment.p == pytest.approx(expected)
    for _ in range(20):
        augment.adapt({"d_real_seen": 1.0, "d_real_unseen": 0.0})
    assert augment.p == 1.0


def test_a_run_reports_the_share_each_round_and_keeps_it_on_resume(bars_run_dir, tmp_path):
    data, _ = bars_run_dir
    ds = load_dataset(data)
    cfg = apply_overrides(make_run_config("tiny", ds.tokenizer.vocab_size, ds.seq_len), ["adv_rounds=3", "d_max_acc=1"])
    assert cfg.train.d_transpose == 5 and cfg.train.d_round_share == 0.2  # the Fast demo's and tiny's settings
    assert cfg.train.d_samples_per_round(100) == 20 and cfg.train.d_samples_per_round(10_000) == cfg.train.d_samples
    assert cfg.train.d_samples_per_round(10) == cfg.train.batch_size  # never below a batch
    trainer = Trainer(cfg, ds.train, ds.valid, str(tmp_path / "a"), torch.device("cpu"), ds.tokenizer)
    assert trainer.run() == "done"
    rounds = [json.loads(line) for line in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    assert [0 <= m["d_augment"] <= 1 for m in rounds if m["phase"] == "adversarial"] == [True] * 3
    trainer.d_phase.augment.p = 0.75
    save_checkpoint(str(tmp_path / "state.pt"), saved_state(trainer))
    again = Trainer(cfg, ds.train, ds.valid, str(tmp_path / "b"), torch.device("cpu"), ds.tokenizer)
    restore(again, str(tmp_path / "state.pt"))
    assert again.d_phase.augment.p == 0.75
    plain = Trainer(apply_overrides(cfg, ["d_transpose=0"]), ds.train, ds.valid, str(tmp_path / "c"),
                    torch.device("cpu"), ds.tokenizer)
    assert plain.d_phase.augment is None


@pytest.mark.parametrize("setting", ["d_transpose=13", "d_round_share=1.5", "d_average=1"])
def test_d_settings_out_of_range_are_refused_in_one_line(setting):
    from seqgan_music.errors import UserError

    with pytest.raises(UserError, match=setting.split("=")[0]):
        apply_overrides(make_run_config("demo", 52, 68), [setting])
