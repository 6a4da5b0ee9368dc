"""The CUDA paths: the same engine on a GPU. Skipped where torch sees no CUDA device (the
development machine and CI); run on a GPU machine with ``pytest tests/test_cuda.py``."""

from __future__ import annotations

import json
import warnings

import pretty_midi
import pytest
import torch
from test_models_rollout import bar_gen, empirical, exact_completion_probs, tiny_gen, tv

from seqgan_music.checkpoint import load_checkpoint
from seqgan_music.cli import main
from seqgan_music.config import make_run_config
from seqgan_music.models import Discriminator
from seqgan_music.rollout import batched_completions, rollout_rewards

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
CUDA = torch.device("cuda")


@pytest.mark.parametrize("make_gen", [tiny_gen, bar_gen])
def test_rollouts_on_cuda_follow_the_models_law(make_gen):
    """Batched completions drawn on the GPU have the completion law that teacher forcing (on the
    CPU) gives, with and without the bar features and copy path."""
    g = make_gen()
    V, T, N = g.cfg.vocab_size, 3, 20000
    samples = torch.tensor([[0, 2, 1], [2, 2, 0]])
    comps = batched_completions(samples.to(CUDA), g.to(CUDA), N, torch.Generator(device=CUDA).manual_seed(1)).cpu()
    g.cpu()
    for p in range(1, T):
        for b in range(2):
            assert torch.equal(comps[p - 1, :, b, :p], samples[b, :p].expand(N, p))
            assert tv(empirical(comps[p - 1, :, b], p), exact_completion_probs(g, samples[b, :p], T, V)) < 0.03


def test_generator_clones_keep_cudnns_one_weight_chunk():
    """The trainer's copies of G (rollout policy, KL reference) run on cuDNN without compacting
    their LSTM weights at every call (PyTorch warns when it has to), and equal G."""
    g = bar_gen().to(CUDA)
    tokens = torch.tensor([[0, 1, 2, 1, 0, 2]], device=CUDA)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        twin = g.clone()
        assert torch.allclose(twin.teacher_forced_logits(tokens), g.teacher_forced_logits(tokens))


def test_rewards_on_cuda_equal_the_cpu_engine_in_expectation():
    """Rewards from the GPU and the CPU engine on the same models agree up to rollout noise."""
    cfg = make_run_config("tiny", vocab_size=7, seq_len=6)
    g = tiny_gen(7, hidden=16)
    torch.manual_seed(0)
    d = Discriminator(cfg.discriminator).eval()
    samples = torch.randint(0, 7, (4, 6), generator=torch.Generator().manual_seed(0))
    cpu = rollout_rewards(samples, g, d, 4000, generator=torch.Generator().manual_seed(1))
    gpu = rollout_rewards(samples.to(CUDA), g.to(CUDA), d.to(CUDA), 4000,
                          generator=torch.Generator(device=CUDA).manual_seed(1))
    assert gpu.device.type == CUDA.type and gpu.shape == cpu.shape
    assert (gpu.cpu() - cpu).abs().max() < 0.03


def test_train_generate_evaluate_on_cuda_through_the_cli(tiny_dataset, tmp_path, capsys):
    """The whole command-line path on the GPU, D under bfloat16 autocast; the checkpoint loads on
    the CPU."""
    run, out = tmp_path / "run", tmp_path / "midi"
    assert main(["train", tiny_dataset, "--out", str(run), "--preset", "tiny", "--device", "cuda",
                 "--set", "amp=bf16"]) == 0
    assert "on cuda" in capsys.readouterr().out
    assert main(["generate", str(run), "--num", "2", "--out", str(out), "--device", "cuda", "--seed", "1"]) == 0
    assert all(pretty_midi.PrettyMIDI(str(f)).instruments[0].notes for f in sorted(out.glob("*.mid")))
    capsys.readouterr()
    assert main(["evaluate", str(run), "--data", tiny_dataset, "--num", "40", "--temperature", "1.0", "--melodies", "8", "--json",
                 "--device", "cuda"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert {r["model"] for r in rows} >= {"MLE", "best", "last"}
    loaded = load_checkpoint(str(run / "last.pt"), "cpu")
    assert loaded.generator.out.weight.device.type == "cpu"


def test_bars_run_trains_on_cuda_and_cpu_runs_generate_there(bars_run_dir, tmp_path):
    """Bar features and the copy path train on the GPU; a run trained on the CPU generates whole
    bars there."""
    data, cpu_run = bars_run_dir
    run = tmp_path / "run"
    assert main(["train", data, "--out", str(run), "--preset", "tiny", "--device", "cuda"]) == 0
    for name, folder in (("gpu", run), ("cpu", cpu_run)):
        out = tmp_path / name
        assert main(["generate", str(folder), "--num", "2", "--bars", "4", "--out", str(out), "--device", "cuda"]) == 0
        assert len(list(out.glob("*.mid"))) == 2


def test_oracle_and_bench_on_cuda(tmp_path, capsys):
    out = tmp_path / "oracle"
    assert main(["oracle", "--out", str(out), "--preset", "tiny", "--num-train", "256", "--eval-samples", "64",
                 "--set", "adv_rounds=1", "--device", "cuda"]) == 0
    assert "NLL-oracle of G" in capsys.readouterr().out
    assert main(["bench", "rollout", "--config", "music", "--json", "--reps", "1", "--device", "cuda"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["device"] == "cuda" and result["batched_s"] > 0 and result["speedup"] > 0
