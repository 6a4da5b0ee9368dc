"""Two CPU processes with gloo: DDP keeps the ranks' weights identical after every step, and the
MLE result matches single-process training on the same global batches."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from ports import free_port

from seqgan_music.config import apply_overrides, make_run_config
from seqgan_music.dataset import load_dataset
from seqgan_music.distributed import DistInfo
from seqgan_music.trainer import Trainer


def flat_weights(model) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def _worker(rank: int, world: int, port: int, data: str, run: str, overrides: list[str], out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    ds = load_dataset(data)
    cfg = apply_overrides(make_run_config("tiny", ds.tokenizer.vocab_size, ds.seq_len), overrides)
    snapshots = []
    trainer = Trainer(cfg, ds.train, ds.valid, run, torch.device("cpu"), ds.tokenizer,
                      callbacks=[lambda e: e["event"] == "progress" and snapshots.append(flat_weights(trainer.G))],
                      dist_info=DistInfo(rank, world, torch.device("cpu")))
    trainer.run()
    snapshots.append(flat_weights(trainer.G))
    snapshots.append(flat_weights(trainer.D))
    torch.save(torch.stack(snapshots[:-1]), f"{out}/g{rank}.pt")
    torch.save(snapshots[-1], f"{out}/d{rank}.pt")
    dist.barrier()  # no rank tears down its connections while the other still uses them
    dist.destroy_process_group()


@pytest.mark.slow
def test_two_gloo_ranks_stay_identical_and_match_single_process(tiny_dataset, tmp_path):
    overrides = ["mle_epochs=2", "d_pretrain_rounds=1", "adv_rounds=2", "batch_size=16", "d_samples=64"]
    mp.spawn(_worker, args=(2, free_port(), tiny_dataset, str(tmp_path / "ddp"), overrides, str(tmp_path)), nprocs=2)
    g0, g1 = torch.load(tmp_path / "g0.pt"), torch.load(tmp_path / "g1.pt")
    assert g0.shape[0] > 10 and torch.equal(g0, g1)  # after every step of every phase
    assert torch.equal(torch.load(tmp_path / "d0.pt"), torch.load(tmp_path / "d1.pt"))
    assert (tmp_path / "ddp" / "last.pt").exists() and (tmp_path / "ddp" / "metrics.jsonl").exists()

    # MLE only: two ranks of 8 rows each equal one process with batches of 16
    mle = ["mle_epochs=3", "d_pretrain_rounds=0", "adv_rounds=0", "batch_size=16", "d_samples=64"]
    mp.spawn(_worker, args=(2, free_port(), tiny_dataset, str(tmp_path / "ddp_mle"), mle, str(tmp_path)), nprocs=2)
    ds = load_dataset(tiny_dataset)
    single = Trainer(apply_overrides(make_run_config("tiny", ds.tokenizer.vocab_size, ds.seq_len), mle),
                     ds.train, ds.valid, str(tmp_path / "single"), torch.device("cpu"), ds.tokenizer)
    single.run()
    ddp_final = torch.load(tmp_path / "g0.pt")[-1]
    assert torch.allclose(ddp_final, flat_weights(single.G), atol=2e-5)


@pytest.mark.slow
def test_torchrun_cli_train_and_resume(tiny_dataset, tmp_path):
    """Two torchrun ranks train and write one set of files; a run cut after MLE pre-training (its
    mle.pt as the newest checkpoint) resumes from there and trains the remaining units. (Not to
    the same bits: rank 1 reseeds its random streams from the unit count on resume.)"""
    import shutil

    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port", str(free_port()),
           "-m", "seqgan_music", "train", tiny_dataset, "--out", str(run), "--preset", "tiny", "--device", "cpu"]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-2000:]
    assert first.stdout.count("training done") == 1  # only rank 0 reports
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 5  # rank 0 alone writes metrics
    final = torch.load(run / "last.pt", weights_only=True)
    shutil.copyfile(run / "mle.pt", run / "last.pt")  # as if killed right after pre-training
    cut_state = torch.load(run / "last.pt", weights_only=True)
    cut = cut_state["progress"]
    assert 0 < cut < 5
    (run / "metrics.jsonl").write_text("\n".join(lines[:cut]) + "\n")
    again = subprocess.run(cmd[:4] + ["--master_port", str(free_port())] + cmd[6:] + ["--resume"],
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["unit_index"] for r in records] == list(range(5))
    resumed = torch.load(run / "last.pt", weights_only=True)
    assert resumed["progress"] == 5 and resumed["units"] == 5
    moved = [not torch.equal(resumed["generator"][k], t) for k, t in cut_state["generator"].items()]
    assert any(moved)  # the adversarial rounds after the cut did train G
    for key, tensor in final["generator"].items():
        assert torch.allclose(resumed["generator"][key], tensor, atol=0.05), key
