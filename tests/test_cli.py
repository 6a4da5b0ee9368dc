from __future__ import annotations

import pretty_midi
import pytest
from midi_factory import random_melody_pm, write

from seqgan_music.cli import main


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
])
def test_bad_input_is_one_line_and_exit_2(argv, message, tiny_dataset, midi_folder, tmp_path, capsys):
    argv = [a.format(data=tiny_dataset, run=tmp_path / "run", midi=midi_folder) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


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
                 "--temperature", "0.8", "--json", "--device", "cpu"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [(r["model"], r["temperature"]) for r in result["rows"]] == [
        ("MLE", 1.0), ("MLE", 0.8), ("best", 1.0), ("best", 0.8), ("last", 1.0), ("last", 0.8), ("Markov-4", 1.0),
        ("real", None)]
    for r in result["rows"]:
        assert 0 <= r["bleu4"] <= 1 and r["mse"] >= 0 and 0 <= r["overlap"] <= 1
    assert "nearest training window" in result["definitions"]["mse"]
    assert main(["evaluate", tiny_run_dir, "--data", tiny_dataset, "--num", "20", "--temperature", "1.0"]) == 0
    assert "BLEU-4" in capsys.readouterr().out


def test_bench_first_melody(midi_folder, capsys):
    files = [str(p) for p in sorted(midi_folder.glob("*.mid"))]
    assert main(["bench", "first-melody", *files, "--preset", "tiny"]) == 0
    assert "first generated melody" in capsys.readouterr().out
