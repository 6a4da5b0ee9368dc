"""The folk base model: shipped, loadable, generating; runs start from it (or from another run)
only when it fits, and otherwise say why in one line."""

from __future__ import annotations

import os

import pytest
import torch

from seqgan_music.base_model import BASE_FILES, base_info, start_path
from seqgan_music.checkpoint import load_checkpoint
from seqgan_music.cli import main
from seqgan_music.config import make_run_config
from seqgan_music.dataset import load_dataset
from seqgan_music.generate import generate_tokens, load_run, new_steps

FINE_TUNE = ["--set", "mle_epochs=1", "--set", "mle_unit_batches=2", "--set", "d_pretrain_rounds=1", "--set",
             "adv_rounds=1", "--set", "d_samples=32", "--set", "select_samples=16"]


@pytest.mark.parametrize("preset", list(BASE_FILES))
def test_each_base_model_is_shipped_with_its_provenance_and_writes_melodies(preset):
    path = BASE_FILES[preset]
    assert os.path.getsize(path) < 5_000_000
    info = base_info(path)
    assert info["tunes"] > 9_000 and info["collections"] == [f"builtin:{c}" for c in ("essen", "oneills", "ryans", "airds")]
    assert info["command"].startswith("python3 scripts/build_base_model.py") and len(info["commit"]) == 40
    assert (info["preset"], info["seq_len"]) == (preset, {"demo": 68, "tune": 136}[preset])
    run = load_run(path)
    assert run.tokenizer.config.encoding == "bars" and run.tokenizer.config.key_to_c
    assert run.tokenizer.config.seq_len == info["seq_len"]
    tokens = generate_tokens(run, 4, new_steps(run.tokenizer, 4, meter="6/8"), 1.0, seed=0, meter="6/8")
    notes = [run.tokenizer.decode_notes(row) for row in tokens.numpy()]
    assert all(len(n) >= 4 for n in notes)


def test_base_names_the_base_model_whose_generator_fits_the_preset(bars_run_dir, tmp_path, capsys):
    """The whole-tune preset starts from the whole-tune base model; the Fast demo from the 4-bar one."""
    data, _ = bars_run_dir
    assert main(["train", data, "--out", str(tmp_path / "run"), "--preset", "tune", "--from", "base",
                 "--set", "mle_epochs=0", "--set", "d_pretrain_rounds=0", "--set", "adv_rounds=0"]) == 0
    tunes = base_info(BASE_FILES["tune"])["tunes"]
    assert tunes != base_info(BASE_FILES["demo"])["tunes"]
    assert f"G starts from the folk base model ({tunes:,} tunes)" in capsys.readouterr().err
    base = load_checkpoint(BASE_FILES["tune"]).generator.state_dict()
    got = load_checkpoint(str(tmp_path / "run" / "best.pt")).generator.state_dict()
    assert all(torch.equal(got[k], base[k]) for k in base)
    ds = load_dataset(data)
    for preset, path in BASE_FILES.items():
        assert start_path("base", make_run_config(preset, ds.tokenizer.vocab_size, ds.seq_len, ds.tokenizer.start_token,
                                                 ds.tokenizer.bar_tokens)) == path


def test_train_from_base_starts_g_from_its_weights(bars_run_dir, tmp_path, capsys):
    data, _ = bars_run_dir
    out = tmp_path / "run"
    assert main(["train", data, "--out", str(out), "--preset", "demo", "--from", "base",
                 "--set", "mle_epochs=0", "--set", "d_pretrain_rounds=0", "--set", "adv_rounds=0"]) == 0
    assert "G starts from the folk base model" in capsys.readouterr().err
    base = load_checkpoint(BASE_FILES["demo"]).generator.state_dict()
    for name in ("mle.pt", "best.pt"):
        got = load_checkpoint(str(out / name)).generator.state_dict()
        assert all(torch.equal(got[k], base[k]) for k in base), name
    # a short fine-tuning moves it, and the run resumes from its own weights
    out2 = tmp_path / "tuned"
    assert main(["train", data, "--out", str(out2), "--preset", "demo", "--from", "base", *FINE_TUNE]) == 0
    tuned = load_checkpoint(str(out2 / "mle.pt")).generator.state_dict()
    assert not all(torch.equal(tuned[k], base[k]) for k in base)
    assert main(["train", data, "--out", str(out2), "--preset", "demo", "--from", "base", "--resume", *FINE_TUNE]) == 0


def test_train_from_a_run_folder(bars_run_dir, tmp_path):
    data, run = bars_run_dir
    assert main(["train", data, "--out", str(tmp_path / "again"), "--preset", "tiny", "--from", run,
                 "--set", "mle_epochs=0", "--set", "adv_rounds=0", "--set", "d_pretrain_rounds=0"]) == 0
    want = load_checkpoint(start_path(run)).generator.state_dict()
    got = load_checkpoint(str(tmp_path / "again" / "best.pt")).generator.state_dict()
    assert all(torch.equal(got[k], want[k]) for k in want)


@pytest.mark.parametrize("preset,source,message", [
    ("tiny", "base", "generator differs from the run's: embed_dim 32 (run: 16)"),
    ("demo", "{missing}", "no model to start from"),
    ("demo", "{file}", "not a loadable seqgan-music checkpoint"),
])
def test_a_model_that_does_not_fit_is_one_line(preset, source, message, bars_run_dir, tmp_path, capsys):
    data, _ = bars_run_dir
    (tmp_path / "file").write_text("not a model")
    source = source.format(missing=tmp_path / "nothing", file=tmp_path / "file")
    assert main(["train", data, "--out", str(tmp_path / "run"), "--preset", preset, "--from", source]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and not (tmp_path / "run" / "last.pt").exists()


def test_the_base_model_refuses_another_encoding(tiny_dataset, tmp_path, capsys):
    assert main(["train", tiny_dataset, "--out", str(tmp_path / "run"), "--preset", "demo", "--from", "base"]) == 2
    err = capsys.readouterr().err.strip()
    assert "tokens differ from the dataset's (bars encoding" in err and "--encoding bars" in err
