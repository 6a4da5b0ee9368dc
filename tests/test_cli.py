from __future__ import annotations

import os
import re

import numpy as np
import pretty_midi
import pytest
import torch
from midi_factory import melody_pm, random_melody_pm, write

from seqgan_music.cli import main
from seqgan_music.errors import UserError


def test_prepare_train_generate_end_to_end(midi_folder, tmp_path, capsys):
    data, run, out = tmp_path / "data", tmp_path / "run", tmp_path / "midi"
    assert main(["prepare", str(midi_folder), "--out", str(data), "--seq-len", "16", "--report", str(tmp_path / "r.json")]) == 0
    assert "pieces" in capsys.readouterr().out and (tmp_path / "r.json").exists()
    assert main(["train", str(data), "--out", str(run), "--preset", "tiny", "--device", "cpu"]) == 0
    assert "training done" in capsys.readouterr().out
    primer = write(random_melody_pm(9, notes=6), tmp_path / "primer.mid")
    assert main(["generate", str(run), "--num", "3", "--out", str(out), "--steps", "32", "--temperature", "0.9",
                 "--top-k", "10", "--seed", "1", "--primer", primer, "--qpm", "100", "--program", "40"]) == 0
    files = sorted(out.glob("*.mid"))
    assert len(files) == 3
    pm = pretty_midi.PrettyMIDI(str(files[0]))
    assert pm.instruments[0].program == 40 and len(pm.instruments[0].notes) > 0
    assert abs(pm.get_tempo_changes()[1][0] - 100) < 1e-6


def test_prepare_with_repeat_marks_then_train_and_generate_whole_bars(tmp_path, capsys):
    """prepare --repeat-marks: tunes whose second half repeats the first get REPEAT_4 bar lines
    (four per tune of 8 bars, in the 8-bar windows); a run on them writes whole bars whose bar
    lines are the metre's, marks included; a mark on the melody grid is one line and exit 2."""
    from seqgan_music.dataset import load_dataset
    from seqgan_music.generate import generate_tokens, load_run

    rng = np.random.default_rng(0)
    for i in range(6):
        half = rng.integers(60, 72, 32)  # four bars of eighth notes
        write(melody_pm(np.concatenate([half, half])), tmp_path / f"aa_{i}.mid")
    data, run, out = tmp_path / "data", tmp_path / "run", tmp_path / "tunes"
    assert main(["prepare", str(tmp_path), "--out", str(data), "--encoding", "bars", "--seq-len", "136",
                 "--hop", "68", "--repeat-marks", "1", "2", "4", "--valid-fraction", "0.34"]) == 0
    ds = load_dataset(str(data))
    names = ds.tokenizer.token_names()
    assert [names[t] for t in ds.pieces[0][::17][:8]] == ["BAR_4/4"] * 4 + ["BAR_4/4_REPEAT_4"] * 4
    assert main(["train", str(data), "--out", str(run), "--preset", "tiny", "--device", "cpu"]) == 0
    capsys.readouterr()
    assert main(["generate", str(run), "--num", "2", "--bars", "3", "--meter", "4/4", "--out", str(out)]) == 0
    assert len(list(out.glob("*.mid"))) == 2
    loaded = load_run(str(run))
    tokens = generate_tokens(loaded, 20, 17 * 3, seed=0, meter="4/4")
    lines = [t for t, _ in ds.tokenizer.bar_line_choices("4/4")]
    assert np.isin(tokens[:, ::17], lines).all() and not np.isin(tokens.view(-1, 3, 17)[:, :, 1:], ds.tokenizer.bar_tokens).any()
    assert main(["prepare", str(tmp_path), "--out", str(tmp_path / "x"), "--encoding", "melody", "--repeat-marks", "4"]) == 2
    assert "repeat_marks need the bars encoding" in capsys.readouterr().err


def test_generate_is_reproducible_by_seed(tiny_run_dir, tmp_path):
    for name in ("a", "b"):
        assert main(["generate", tiny_run_dir, "--num", "2", "--out", str(tmp_path / name), "--seed", "7"]) == 0
    assert (tmp_path / "a" / "melody_000.mid").read_bytes() == (tmp_path / "b" / "melody_000.mid").read_bytes()


@pytest.mark.parametrize("argv, message", [
    (["prepare", "/nonexistent/folder", "--out", "x"], "no such file or folder"),
    (["prepare", "builtin:nope", "--out", "x"], "unknown collection"),
    (["prepare", "{midi}", "--out", "x", "--max-files", "1"], "more than 1 files"),
    (["train", "/nonexistent/data", "--out", "x"], "no such dataset folder"),
    (["generate", "/nonexistent/run", "--out", "x"], "no checkpoint found"),
    (["train", "{data}", "--out", "{run}", "--set", "mle_epoch=3"], "unknown setting"),
    (["train", "{data}", "--out", "{run}", "--set", "g_lr=fast"], "expected a number"),
    (["train", "{data}", "--out", "{run}", "--device", "cuda:7"], "CUDA is not available"),
    (["train", "{data}", "--out", "{run}", "--set", "start_token=100000"], "comes from the dataset"),
    (["train", "{data}", "--out", "{run}", "--set", "seq_len=64"], "comes from the dataset"),
    (["train", "{data}", "--out", "{run}", "--set", "embed_dim=16"], "generator.embed_dim=... or discriminator.embed_dim"),
    (["train", "{data}", "--out", "{run}", "--set", "hidden_dim=-5"], "hidden_dim must be between"),
    (["train", "{data}", "--out", "{run}", "--set", "num_filters=[2, 0]", "--set", "filter_widths=[1, 2]"], "num_filters[1] must be between"),
    (["train", "{data}", "--out", "{run}", "--set", "pg_normalize=1"], "expected bool"),
    (["prepare", "{midi}", "--out", "{file}/data"], "cannot write there"),
    (["train", "{data}", "--out", "/proc/seqgan-run"], "cannot write there"),
    (["train", "{data}", "--out", "{file}/run"], "cannot write there"),
    (["oracle", "--preset", "tiny", "--out", "/sys/seqgan-run"], "cannot write there"),
    (["prepare", "{midi}", "--out", "{run}", "--valid-fraction", "nan"], "validation fraction must lie in [0, 1), not nan"),
    (["prepare", "{midi}", "--out", "{run}", "--valid-fraction", "2"], "validation fraction must lie in [0, 1), not 2"),
    (["prepare", "{run}/..", "--out", "{run}", "--report", "{file}/r.json"], "cannot write there"),
    (["prepare", "{midi}", "--out", "{run}", "--report", "{midi}"], "is a folder"),
])
def test_bad_input_is_one_line_and_exit_2(argv, message, tiny_dataset, midi_folder, tmp_path, capsys):
    (tmp_path / "file").write_text("a plain file")
    argv = [a.format(data=tiny_dataset, run=tmp_path / "run", midi=midi_folder, file=tmp_path / "file") for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_a_folder_without_music_says_so(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("no music here")
    assert main(["prepare", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    assert "no MIDI, ABC or MusicXML files found" in capsys.readouterr().err


def test_train_refuses_to_overwrite_a_run(tiny_run_dir, tiny_dataset, capsys):
    assert main(["train", tiny_dataset, "--out", tiny_run_dir, "--preset", "tiny"]) == 2
    assert "--resume" in capsys.readouterr().err


def test_prepare_list(capsys):
    assert main(["prepare", "--list"]) == 0
    assert "builtin:essen" in capsys.readouterr().out


def test_a_reader_gone_away_ends_quietly():
    """``seqgan-music ... | head``: no BrokenPipeError traceback, the exit status of SIGPIPE."""
    import os
    import subprocess
    import sys

    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run([sys.executable, "-m", "seqgan_music", "prepare", "--list"], stdout=write_end,
                              stderr=subprocess.PIPE, timeout=120)
    finally:
        os.close(write_end)
    assert proc.returncode == 141 and proc.stderr == b""


def test_bench_rollout_prints_figures(capsys, monkeypatch):
    import json

    from seqgan_music import bench

    monkeypatch.setitem(bench.CONFIGS, "music", dict(bench.CONFIGS["music"], batch=4, rollouts=2, seq_len=8))
    assert main(["bench", "rollout", "--config", "music", "--json", "--reps", "1", "--device", "cpu"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["batched_s"] > 0 and result["sequential_s"] > 0 and result["speedup"] > 0
    assert result["d_dense_fraction_of_peak"] > 0 and result["matmul_peak_gflops"] > 0
    assert result["d_shared_s"] > 0 and result["d_shared_dense_equivalent_gflops"] > 0


@pytest.mark.slow
def test_oracle_experiment_tiny(tmp_path, capsys):
    import json

    import numpy as np

    out = tmp_path / "oracle"
    argv = ["oracle", "--out", str(out), "--preset", "tiny", "--num-train", "256", "--eval-samples", "64",
            "--set", "adv_rounds=1", "--device", "cpu", "--samples-out", str(tmp_path / "s.npy")]
    assert main(argv) == 0
    assert "NLL-oracle of G" in capsys.readouterr().out
    samples = np.load(tmp_path / "s.npy")
    assert samples.shape == (10000, 20) and samples.max() < 5000
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert all("nll_oracle" in line for line in lines if '"mle"' in line or '"adversarial"' in line)
    judged = [json.loads(line) for line in lines if "select_score" in line]
    assert judged and all(m["select_score"] == -m["nll_oracle"] for m in judged)  # selection by NLL-oracle


def test_evaluate_report(tiny_run_dir, tiny_dataset, capsys):
    import json

    assert main(["evaluate", tiny_run_dir, "--data", tiny_dataset, "--num", "40", "--temperature", "1.0",
                 "--temperature", "0.8", "--melodies", "8", "--json", "--device", "cpu"]) == 0
    result = json.loads(capsys.readouterr().out)
    listening = result["listening"]  # the listening test: melodies as generate writes them, read back from MIDI
    assert [r["model"] for r in listening["rows"]] == ["MLE", "best", "last", "Markov-4", "real"]
    assert all(r["melodies"] == 8 and 0 <= r["critic"] <= 1 and r["critic_sd"] >= 0 for r in listening["rows"][:4])
    assert listening["readings"][0].startswith("best is ")
    assert [(r["model"], r["temperature"]) for r in result["rows"]] == [
        ("MLE", 1.0), ("MLE", 0.8), ("best", 1.0), ("best", 0.8), ("last", 1.0), ("last", 0.8), ("Markov-4", 1.0),
        ("real", None)]
    for r in result["rows"]:
        assert 0 <= r["bleu4"] <= 1 and r["mse"] >= 0 and 0 <= r["overlap"] <= 1
    assert "nearest training window" in result["definitions"]["mse"]
    real = result["rows"][-1]
    assert set(real["structure_mean"]) == {"phrase_rep", "tonic_ending", "downbeat_share", "on_beat_share", "key_agreement"}
    assert 0 <= real["structure_mean"]["tonic_ending"] <= 1 and 0.5 < real["structure_mean"]["key_agreement"] <= 1
    from seqgan_music.evaluate import format_report

    listening_text = format_report(result)  # what evaluate prints without --json
    assert listening_text.startswith("listening test: 8 melodies") and "0.5 = it cannot tell them apart" in listening_text
    assert main(["evaluate", tiny_run_dir, "--data", tiny_dataset, "--num", "20", "--temperature", "1.0",
                 "--melodies", "0"]) == 0
    report = capsys.readouterr().out
    assert "BLEU-4" in report and "structure (means" in report and "tonic_ending" in report


def test_evaluate_averages_critics_of_several_seeds(tiny_run_dir, tiny_dataset):
    """--critic-runs K: each row's critic is the mean of K critics (seeds 0, 1, ...) on the same
    windows, critic_sd their spread; one run gives the first critic alone and no spread."""
    import math

    from seqgan_music.evaluate import evaluate_run, format_report

    one = evaluate_run(tiny_run_dir, tiny_dataset, num=40, temperatures=(1.0,), melodies=0)
    two = evaluate_run(tiny_run_dir, tiny_dataset, num=40, temperatures=(1.0,), critic_runs=2, melodies=0)
    for r1, r2 in zip(one["rows"], two["rows"]):
        assert r1["bleu4"] == r2["bleu4"] and r1["phrase_rep"] == r2["phrase_rep"]  # the same windows
        assert math.isnan(r1["critic_sd"]) and 0 <= r2["critic"] <= 1
        assert r2["critic_sd"] == pytest.approx(math.sqrt(2) * abs(r2["critic"] - r1["critic"]))
    assert any(r["critic_sd"] > 0 for r in two["rows"])
    assert "+-" in format_report(two) and "+-" not in format_report(one)
    none = evaluate_run(tiny_run_dir, tiny_dataset, num=40, temperatures=(1.0,), critic_runs=0, melodies=0)
    assert all(math.isnan(r["critic"]) for r in none["rows"])
    assert [r["bleu4"] for r in none["rows"]] == [r["bleu4"] for r in one["rows"]]
    with pytest.raises(UserError, match="critic-runs"):
        evaluate_run(tiny_run_dir, tiny_dataset, num=40, temperatures=(1.0,), critic_runs=-1)
    with pytest.raises(UserError, match="--num"):
        evaluate_run(tiny_run_dir, tiny_dataset, num=0, temperatures=(1.0,))


def test_bench_first_melody(midi_folder, capsys):
    files = [str(p) for p in sorted(midi_folder.glob("*.mid"))]
    assert main(["bench", "first-melody", *files, "--preset", "tiny"]) == 0
    assert "first generated melody" in capsys.readouterr().out


def test_generate_to_an_unwritable_place_is_one_line(tiny_run_dir, tmp_path, capsys):
    (tmp_path / "file").write_text("a plain file")
    for out in (str(tmp_path / "file" / "midi"), "/proc/seqgan-midi"):
        assert main(["generate", tiny_run_dir, "--num", "1", "--out", out]) == 2
        err = capsys.readouterr().err.strip()
        assert "cannot write there" in err and len(err.splitlines()) == 1


def _crafted(run_dir, tmp_path, change) -> str:
    """A copy of ``run_dir``'s last.pt with ``change(state)`` applied, as a run folder of its own."""
    import torch

    state = torch.load(f"{run_dir}/last.pt", weights_only=True)
    change(state)
    (tmp_path / "crafted").mkdir(exist_ok=True)
    torch.save(state, str(tmp_path / "crafted" / "last.pt"))
    return str(tmp_path / "crafted")


@pytest.mark.parametrize("field, value, message", [
    ("start_token", 100000, "start_token must be a token id"), ("start_token", -5, "start_token must be a token id"),
    ("hidden_dim", 16000, "hidden_dim must be between"), ("embed_dim", "32", "expected int"),
])
def test_generate_refuses_crafted_config_values(field, value, message, tiny_run_dir, tmp_path, capsys):
    run = _crafted(tiny_run_dir, tmp_path, lambda s: s["run_config"]["generator"].update({field: value}))
    assert main(["generate", run, "--num", "1", "--out", str(tmp_path / "midi")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_a_small_checkpoint_cannot_force_a_large_allocation(tiny_run_dir, tmp_path):
    """Declared sizes are compared with the stored tensors before any model is built: a checkpoint
    declaring a 4096-wide generator (half a gigabyte of LSTM weights) is refused without the memory."""
    import subprocess
    import sys

    run = _crafted(tiny_run_dir, tmp_path, lambda s: s["run_config"]["generator"].update(hidden_dim=4096, embed_dim=4096))
    probe = ("import resource, sys\n"
             "from seqgan_music.checkpoint import load_checkpoint\n"
             "from seqgan_music.errors import UserError\n"
             "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
             "try:\n    load_checkpoint(sys.argv[1])\nexcept UserError as exc:\n    print('refused', exc)\n"
             "print('grew_mb', (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)\n")
    out = subprocess.run([sys.executable, "-c", probe, f"{run}/last.pt"], capture_output=True, text=True, check=True).stdout
    assert "refused" in out and "wrong shape" in out
    assert int(out.split("grew_mb")[1]) < 100, out


def test_resume_with_another_dataset_is_refused(tiny_run_dir, midi_folder, tmp_path, capsys):
    import shutil

    paper = tmp_path / "paper"
    assert main(["prepare", str(midi_folder), "--out", str(paper), "--encoding", "paper", "--seq-len", "16"]) == 0
    run = tmp_path / "run"
    shutil.copytree(tiny_run_dir, run)
    capsys.readouterr()
    assert main(["train", str(paper), "--out", str(run), "--resume"]) == 2
    err = capsys.readouterr().err.strip()
    assert "another tokenizer" in err and len(err.splitlines()) == 1


def test_generate_whole_bars_in_three_formats(tiny_run_dir, tmp_path, capsys):
    """--bars N writes N bars of 4/4 (after a primer, whose last bar is completed first) as MIDI,
    MusicXML and ABC; the MusicXML has the bars, the ABC parses back."""
    from music21 import converter

    out = tmp_path / "tunes"
    assert main(["generate", tiny_run_dir, "--num", "2", "--bars", "3", "--formats", "mid,musicxml,abc",
                 "--out", str(out)]) == 0
    assert "3 new bars (48 steps) each" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == [f"melody_00{i}.{ext}" for i in range(2) for ext in ("abc", "mid", "musicxml")]
    score = converter.parse(str(out / "melody_000.musicxml"))
    assert len(score.parts[0].getElementsByClass("Measure")) == 3
    converter.parse((out / "melody_001.abc").read_text(), format="abc")
    primer = write(random_melody_pm(3, notes=3), tmp_path / "primer.mid")
    assert main(["generate", tiny_run_dir, "--num", "1", "--bars", "2", "--primer", primer, "--out", str(tmp_path / "p"),
                 "--formats", "musicxml"]) == 0
    report = capsys.readouterr().out
    new, primer_steps = map(int, re.search(r"\((\d+) steps\) each after a primer of (\d+)", report).groups())
    assert (new + primer_steps) % 16 == 0 and 32 <= new < 48
    assert main(["generate", tiny_run_dir, "--bars", "2", "--steps", "8", "--out", str(tmp_path / "x")]) == 2
    assert main(["generate", tiny_run_dir, "--formats", "mid,pdf", "--out", str(tmp_path / "x")]) == 2


def test_end_on_tonic_prefers_candidates_that_close_on_their_tonic(tiny_run_dir, tmp_path):
    """By hand: of three C-major lines, the two ending on C come first, in drawn order. Through
    the CLI, --end-on-tonic writes at least as many tonic endings as plain sampling does."""
    import torch

    from seqgan_music.generate import load_run, tonic_endings_first
    from seqgan_music.metrics import estimate_key

    tok = load_run(tiny_run_dir).tokenizer
    rows = [[2 + p - tok.config.pitch_low for p in line]
            for line in ([60, 64, 67, 64, 62, 60], [60, 64, 67, 65, 64, 62], [64, 65, 67, 64, 62, 60])]
    assert tonic_endings_first(torch.tensor(rows), tok, 2).tolist() == [rows[0], rows[2]]

    def tonic_endings(folder) -> int:
        count = 0
        for path in sorted(folder.glob("*.mid")):
            notes = [(n.pitch, round(n.start * 8), round(n.end * 8))  # steps of a 16th at 120 qpm
                     for n in pretty_midi.PrettyMIDI(str(path)).instruments[0].notes]
            count += bool(notes) and notes[-1][0] % 12 == estimate_key(notes)[0]
        return count

    for flags, name in (([], "plain"), (["--end-on-tonic"], "tonic")):
        assert main(["generate", tiny_run_dir, "--num", "6", "--bars", "2", "--out", str(tmp_path / name), *flags]) == 0
    assert tonic_endings(tmp_path / "tonic") >= tonic_endings(tmp_path / "plain")


def test_generate_whole_bars_of_a_chosen_metre(bars_run_dir, tmp_path, capsys):
    """A bars-encoding run writes exactly N bars of the asked metre: a bar line every bar and nowhere
    else, the time signature in MIDI, MusicXML and ABC; a primer's metre is kept; a metre the
    model cannot write is one line."""
    from music21 import converter

    from seqgan_music.generate import load_run
    from seqgan_music.melody import extract_melody

    data, run = bars_run_dir
    out = tmp_path / "waltz"
    assert main(["generate", run, "--num", "3", "--bars", "3", "--meter", "3/4", "--formats", "mid,musicxml,abc",
                 "--out", str(out)]) == 0
    assert "3 new bars of 3/4 (39 steps) each" in capsys.readouterr().out  # 3 bars of (BAR + 12 steps)
    pm = pretty_midi.PrettyMIDI(str(out / "melody_000.mid"))
    assert [(ts.numerator, ts.denominator) for ts in pm.time_signature_changes] == [(3, 4)]
    tok = load_run(run).tokenizer
    tokens = tok.encode(extract_melody(pm, tok.config))  # a tune that starts with a rest comes back shorter
    assert set(np.flatnonzero(np.isin(tokens, tok.bar_tokens))) <= {0, 13, 26} and tok.meter_of(tokens) == "3/4"
    part = converter.parse(str(out / "melody_001.musicxml")).parts[0]
    assert part.recurse().getElementsByClass("TimeSignature")[0].ratioString == "3/4"
    assert len(part.getElementsByClass("Measure")) == 3
    assert "M:3/4" in (out / "melody_002.abc").read_text()
    primer = pretty_midi.PrettyMIDI(str(out / "melody_000.mid"))
    primer_path = tmp_path / "primer.mid"
    primer.write(str(primer_path))
    assert main(["generate", run, "--num", "1", "--bars", "2", "--primer", str(primer_path),
                 "--out", str(tmp_path / "more")]) == 0
    assert "2 new bars of 3/4 (26 steps) each after a primer of 39 steps" in capsys.readouterr().out
    assert main(["generate", run, "--bars", "2", "--meter", "4/3", "--out", str(tmp_path / "x")]) == 2
    assert "--meter 4/3: choose one of" in capsys.readouterr().err


def test_generate_tunes_the_model_ends(bars_run_dir, tiny_run_dir, tmp_path, capsys):
    """--model-ends: tunes end at a bar line the model picks, at most --bars long, and the files
    hold just the tune; without it, a tune the model ends is followed by the next it writes, up to
    --bars; a model trained without tune ends is one line."""
    from seqgan_music.generate import generate_tokens, load_run

    data, run = bars_run_dir
    assert main(["generate", run, "--num", "6", "--bars", "5", "--model-ends", "--formats", "mid,musicxml",
                 "--out", str(tmp_path / "g")]) == 0
    said = capsys.readouterr().out
    assert "at most 5 new bars of 4/4 (85 steps) each" in said and "the model ended them after" in said
    loaded = load_run(run)
    tok = loaded.tokenizer
    with torch.no_grad():
        loaded.generator.out.bias[tok.end_token] += 20.0  # a model sure that tunes end at the first chance
    tokens = generate_tokens(loaded, 4, 85, seed=0, meter="4/4", model_ends=True)
    assert [tok.bars_in(row) for row in tokens] == [1, 1, 1, 1] and (tokens[:, 17:] == tok.end_token).all()
    starts = []  # without --model-ends every tune it ends makes way for a new one: here one per bar
    sample = loaded.generator.sample
    loaded.generator.sample = lambda num, steps, *args, place: starts.append((num, steps, place[:, 1].unique().tolist())) \
        or sample(num, steps, *args, place=place)
    tokens = generate_tokens(loaded, 4, 85, seed=0, meter="4/4")
    assert [tok.bars_in(row) for row in tokens] == [5, 5, 5, 5] and not (tokens == tok.end_token).any()
    # 4 candidates each, asked (bars_left) to last the bars still to fill
    assert starts == [(4, 85, [5]), (16, 68, [4]), (16, 51, [3]), (16, 34, [2]), (16, 17, [1])]
    assert (tokens[:, ::17] == tok.bar_tokens[0]).all()  # each new tune starts at its bar line
    assert main(["generate", tiny_run_dir, "--model-ends", "--bars", "2", "--out", str(tmp_path / "x")]) == 2
    assert "trained on data without tune ends" in capsys.readouterr().err


def test_a_generator_told_its_tunes_length_ends_them_there(tmp_path):
    """bars_left end to end: a generator trained on whole tunes of 3 to 8 bars of one figure, told
    each tune's length, ends its tunes at the bar asked for; the same model without the feature
    cannot tell the lengths apart. generate asks for the length it writes, a primer's bars counted."""
    from types import SimpleNamespace

    from seqgan_music.config import GeneratorConfig, TokenizerConfig
    from seqgan_music.generate import asked_place, generate_tokens
    from seqgan_music.melody import melody_from_quarters
    from seqgan_music.models import Generator
    from seqgan_music.tokenizer import Tokenizer

    tok = Tokenizer(TokenizerConfig(encoding="bars", seq_len=34, tune_end=True))
    lengths = list(range(3, 9))
    tunes = [tok.encode(melody_from_quarters(np.tile([60, 62, 64, 65], n), np.arange(4.0 * n), np.arange(4.0 * n) + 1))
             for n in lengths]
    assert [tok.bars_in(t) for t in tunes] == lengths
    batch = torch.full((len(tunes), max(map(len, tunes))), tok.end_token)
    for row, t in zip(batch, tunes):
        row[: len(t)] = torch.from_numpy(t)
    place = torch.tensor([[0, n] for n in lengths])

    def ended_where_asked(bars_left: bool) -> float:
        torch.manual_seed(0)
        g = Generator(GeneratorConfig(vocab_size=tok.vocab_size, embed_dim=16, hidden_dim=32, start_token=tok.start_token,
                                      bar_tokens=tok.bar_tokens, lookback_bars=[1], bars_left=bars_left))
        opt = torch.optim.Adam(g.parameters(), lr=0.02)
        for _ in range(120):
            opt.zero_grad()
            g.nll(batch, place).backward()
            opt.step()
        run = SimpleNamespace(tokenizer=tok, generator=g.eval(), state={})  # a run saved before drafts
        primer = torch.from_numpy(tok.tune_part(tunes[0])[:34].copy())  # two bars
        asked = asked_place(run, 3, tok.steps_for(4), primer, (None, 17))
        assert (asked.tolist() == [[0, 6]] * 3) if bars_left else asked is None
        hits, gen, bar_line = [], torch.Generator().manual_seed(0), (tok.bar_line_choices("4/4"), 17)
        for n in lengths:  # room for two bars more than asked
            rows = g.sample(20, tok.steps_for(n + 2), generator=gen, bar_line=bar_line, end_token=tok.end_token,
                            place=torch.tensor([[0, n]]).repeat(20, 1))
            hits += [tok.bars_in(r) == n and bool((r == tok.end_token).any()) for r in rows.numpy()]
        tokens = generate_tokens(run, 4, tok.steps_for(3), seed=0, primer=primer, meter="4/4")  # as generate writes
        assert [tok.bars_in(r) for r in tokens.numpy()] == [5] * 4 and not (tokens == tok.end_token).any()
        return float(np.mean(hits))

    assert ended_where_asked(True) >= 0.95
    assert ended_where_asked(False) < 0.5


def test_the_next_tune_is_the_first_candidate_in_the_mode_so_far(bars_run_dir):
    from seqgan_music.generate import load_run, same_mode_first

    tok = load_run(bars_run_dir[1]).tokenizer
    low, bar, hold = tok.config.pitch_low, tok.bar_tokens[0], 1

    def tune(*pitches):
        return [bar] + [t for p in pitches for t in (2 + p - low, hold, hold, hold)] + [tok.end_token] * 3

    minor, major = tune(60, 63, 67, 72), tune(60, 64, 67, 72)
    candidates = torch.tensor([minor, minor, major, minor])
    assert same_mode_first(candidates, tok, major=True) == 2 and same_mode_first(candidates, tok, major=False) == 0
    assert same_mode_first(torch.tensor([minor, minor]), tok, major=True) == 0  # none in the mode: the first


def test_silent_bars_script_counts_bars_without_a_sounding_note(bars_run_dir):
    """scripts/silent_bars.py: its count on a hand-made row, and its table for a run."""
    import importlib.util
    import subprocess
    import sys

    from seqgan_music.generate import load_run

    data, run = bars_run_dir
    script = os.path.join(os.path.dirname(__file__), "..", "scripts", "silent_bars.py")
    spec = importlib.util.spec_from_file_location("silent_bars", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    tok = load_run(run).tokenizer
    bar, note, rest, hold = tok.bar_tokens[0], 20, 0, 1
    row = [bar, note] + [hold] * 15 + [bar] + [rest] * 16 + [bar, rest, note] + [hold] * 14 + [bar, hold] + [rest] * 15
    assert module.silent_bars(tok, np.array(row + [tok.end_token] * 5)) == 1  # bar 2; bar 4's held note sounds
    out = subprocess.run([sys.executable, script, run, "--bars", "3", "--num", "4", "--seeds", "1"],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    rows = out[next(i for i, line in enumerate(out) if line.startswith("model")) + 1 :]  # (a library may print first)
    assert [line.split()[0] for line in rows] == ["mle", "best", "last"]
    for line in rows:
        share, per_tune, share_now, per_tune_now = (float(x.strip("()")) for x in line.split()[1:])
        assert 0 <= share <= 1 and 0 <= share_now <= 1 and per_tune >= share and per_tune_now >= share_now


def test_generate_in_a_requested_key(bars_run_dir, tmp_path, capsys):
    """--key: every melody is in that key by the shared estimate (the one the score's key
    signature and evaluate use), the ABC says so; a malformed key or a key with a primer is one line."""
    from seqgan_music.generate import generate_tokens, load_run
    from seqgan_music.metrics import estimate_key

    data, run = bars_run_dir
    loaded = load_run(run)
    for key in ((10, True), (4, False)):  # Bb major, E minor
        tokens = generate_tokens(loaded, 5, 26, seed=1, key=key)
        assert tokens.shape == (5, 26)
        assert all(estimate_key(loaded.tokenizer.decode_notes(row)) == key for row in tokens)
    out = tmp_path / "in_d"
    assert main(["generate", run, "--num", "2", "--bars", "2", "--key", "D", "--formats", "mid,abc", "--out", str(out)]) == 0
    assert all("K:D\n" in (out / f"melody_00{i}.abc").read_text() for i in range(2))
    assert all([k.key_number for k in pretty_midi.PrettyMIDI(str(out / f"melody_00{i}.mid")).key_signature_changes] == [2]
               for i in range(2))  # D major's key signature in the MIDI file
    assert main(["generate", run, "--bars", "2", "--key", "H", "--out", str(tmp_path / "x")]) == 2
    assert "--key 'H': write a tonic" in capsys.readouterr().err
    assert main(["generate", run, "--num", "1", "--bars", "2", "--out", str(tmp_path / "p")]) == 0
    assert main(["generate", run, "--bars", "2", "--key", "Em", "--primer", str(tmp_path / "p" / "melody_000.mid"),
                 "--out", str(tmp_path / "x")]) == 2
    assert "--key cannot be combined with a primer" in capsys.readouterr().err


def test_a_model_of_tunes_moved_to_c_writes_in_their_keys(bars_run_dir, tmp_path):
    """key_to_c: each generated melody goes to a key drawn from the training tunes' keys of its
    mode, a primer is continued in its own key (moved to C for the model and back with the tune),
    and D's rewards for a melody are those of the melody moved to C."""
    from dataclasses import replace

    from seqgan_music.dataset import load_dataset
    from seqgan_music.generate import generate_tokens, load_run, primer_tokens, to_home_keys, token_rewards
    from seqgan_music.metrics import estimate_key
    from seqgan_music.tokenizer import Tokenizer

    data, run = bars_run_dir
    loaded = load_run(run)
    tok = loaded.tokenizer
    assert tok.config.key_to_c and sum(tok.config.home_keys) == len(load_dataset(data).pieces)
    home = [0] * 24
    home[2], home[12 + 11] = 5, 3  # the training tunes were in D major and B minor only
    only = Tokenizer(replace(tok.config, home_keys=home))
    rows = [[t for p in pitches for t in (2 + p - tok.config.pitch_low, 1, 1, 1)]
            for pitches in ([60, 62, 64, 65, 67, 69, 71, 72, 67, 64, 60], [60, 62, 63, 65, 67, 68, 70, 72, 67, 63, 60])]
    moved = to_home_keys(torch.tensor(rows), only, np.random.default_rng(0))
    assert [estimate_key(only.decode_notes(row)) for row in moved] == [(2, True), (11, False)]
    write(melody_pm([62, 66, 69, 74, 73, 71, 69, 66, 67, 64, 62, 62]), tmp_path / "in_d.mid")  # a D major primer
    primer = primer_tokens(str(tmp_path / "in_d.mid"), tok)
    for seed in range(3):  # the primer comes back as it was, whatever notes the model added
        tokens = generate_tokens(loaded, 3, 34, seed=seed, primer=primer)
        assert (tokens[:, : len(primer)] == primer).all()
    in_c = torch.from_numpy(tok.transpose(primer.numpy(), -2))  # D judges a melody as it learnt tunes: in C
    assert np.array_equal(token_rewards(loaded, primer, 4, 3), token_rewards(loaded, in_c, 4, 3))



@pytest.mark.parametrize("argv, message", [
    (["--temperature", "nan"], "--temperature must be a positive number"),
    (["--temperature", "inf"], "--temperature must be a positive number"),
    (["--num", "1000000000"], "--num must lie in 1..10000"),
    (["--steps", "1000000000"], "length in 1..65536"),
    (["--seed", "-5"], "--seed must lie in"),
    (["--seed", str(10**23)], "--seed must lie in"),
    (["--drafts", "1000000000"], "--drafts must lie in 1..64"),
    (["--num", "10000", "--steps", "65536"], "tokens in one request"),
])
def test_generate_refuses_requests_no_sampler_can_serve(tiny_run_dir, tmp_path, capsys, argv, message):
    assert main(["generate", tiny_run_dir, "--out", str(tmp_path / "m"), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("argv, message", [
    (["--temperature", "nan"], "--temperature must be positive"),
    (["--max-refs", "0"], "--max-refs at least 1"),
    (["--num", "0"], "--num in 1..10000"),
    (["--critic-runs", "1000000000"], "--critic-runs must lie in 0..20"),
    (["--melodies", "1000000000"], "--melodies in 0..10000"),
])
def test_evaluate_refuses_bad_numbers_in_one_line(tiny_run_dir, tiny_dataset, capsys, argv, message):
    assert main(["evaluate", tiny_run_dir, "--data", tiny_dataset, *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_generate_from_a_stopped_run_says_it_is_barely_trained(tiny_dataset, tmp_path, capsys):
    run = tmp_path / "stopped"
    assert main(["train", tiny_dataset, "--out", str(run), "--preset", "tiny", "--set", "mle_epochs=1",
                 "--set", "adv_rounds=0", "--set", "d_pretrain_rounds=0", "--device", "cpu"]) == 0
    capsys.readouterr()
    assert main(["generate", str(run), "--num", "1", "--out", str(tmp_path / "m")]) == 0
    assert "barely trained" not in capsys.readouterr().err  # a finished run
    from seqgan_music.checkpoint import read_checkpoint, save_checkpoint

    best = read_checkpoint(str(run / "best.pt"))  # best.pt saved before the run's end: the run, not it, counts
    save_checkpoint(str(run / "best.pt"), {**best, "progress": 0})
    assert main(["generate", str(run), "--num", "1", "--out", str(tmp_path / "b")]) == 0
    assert "barely trained" not in capsys.readouterr().err
    state = read_checkpoint(str(run / "last.pt"))
    save_checkpoint(str(run / "last.pt"), {**state, "units": state["units"] + 5})
    assert main(["generate", str(run), "--model", "last", "--num", "1", "--out", str(tmp_path / "n")]) == 0
    assert "trained for 1 of its 6 units only" in capsys.readouterr().err


def test_a_primer_must_be_a_regular_file_of_bounded_size(tiny_run_dir, tmp_path, capsys):
    fifo = tmp_path / "fifo.mid"
    os.mkfifo(fifo)
    for primer, message in (("/dev/zero", "not a regular file"), (str(fifo), "not a regular file")):
        assert main(["generate", tiny_run_dir, "--primer", primer, "--out", str(tmp_path / "m")]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1
    big = tmp_path / "big.mid"
    with open(big, "wb") as fh:
        fh.truncate(25_000_000)
    assert main(["generate", tiny_run_dir, "--primer", str(big), "--out", str(tmp_path / "m")]) == 2
    assert "file too large" in capsys.readouterr().err


def test_unwritable_melody_and_string_version_are_one_line(tiny_run_dir, tmp_path, capsys):
    import torch

    (tmp_path / "out" / "melody_000.mid").mkdir(parents=True)
    assert main(["generate", tiny_run_dir, "--num", "1", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert "melody_000.mid: cannot write it" in err and len(err.splitlines()) == 1
    state = torch.load(f"{tiny_run_dir}/last.pt", weights_only=True)
    torch.save(dict(state, version="1"), tmp_path / "v.pt")
    assert main(["generate", str(tmp_path / "v.pt"), "--num", "1", "--out", str(tmp_path / "o2")]) == 2
    assert "format version '1' is not supported" in capsys.readouterr().err
