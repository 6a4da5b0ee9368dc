"""Build a folk base model (seqgan_music/base/folk-bars.pt or folk-tunes.pt, and its .json) from the built-in collections.

    python3 scripts/build_base_model.py [--preset demo|tune] [--work runs/base-build] [--units 40]
        [--unit-batches 500] [--patience 3] [--batch-size 64] [--out PATH]

Prepares music21's Essen, O'Neill's, Ryan's and Aird's collections as the app does (bars encoding,
tunes moved to C; 5 % of the tunes held out) in the windows of ``--preset`` (demo: 4 bars, for the
``demo`` and ``cpu`` presets; tune: 8 bars, for the whole-tune preset), pre-trains that preset's
generator by maximum likelihood (units of ``--unit-batches`` batches, ending after ``--patience``
units without a lower validation NLL, keeping the best unit) and writes the slim checkpoint beside
a JSON with the data, the figures, the command and the commit. On a 2-core CPU: about 15 minutes
(demo), about 9 (tune, with the settings its .json names: 10 units of 400 batches).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import torch

from seqgan_music.base_model import BASE_COLLECTIONS, BASE_FILES, base_state
from seqgan_music.checkpoint import MLE, read_checkpoint, save_checkpoint, saved_run_config
from seqgan_music.dataset import load_dataset

WINDOW_TOKENS = {"demo": 68, "tune": 136}  # T of each preset's windows: 4 and 8 bars of 4/4 (16 steps and a bar line each)


def run(cmd: list[str]) -> None:
    subprocess.run([sys.executable, "-m", "seqgan_music", *cmd], check=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", choices=list(BASE_FILES), default="demo", help="whose generator and windows")
    ap.add_argument("--work", default="runs/base-build", help="folder for the dataset and the training run")
    ap.add_argument("--units", type=int, default=40)
    ap.add_argument("--unit-batches", type=int, default=500)
    ap.add_argument("--patience", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--out", help="default: the package's file for the preset")
    args = ap.parse_args()
    args.out = args.out or BASE_FILES[args.preset]
    seq_len = WINDOW_TOKENS[args.preset]
    data, run_dir = os.path.join(args.work, "data"), os.path.join(args.work, "run")
    started = time.time()
    if not os.path.exists(os.path.join(data, "manifest.json")):
        run(["prepare", *(f"builtin:{c}" for c in BASE_COLLECTIONS), "--encoding", "bars", "--seq-len", str(seq_len),
             "--hop", str(seq_len // 2), "--valid-fraction", "0.05", "--out", data])
    settings = {"mle_epochs": args.units, "mle_unit_batches": args.unit_batches, "mle_patience": args.patience,
                "batch_size": args.batch_size, "d_pretrain_rounds": 0, "adv_rounds": 0}
    run(["train", data, "--out", run_dir, "--preset", args.preset, *sum((["--set", f"{k}={v}"] for k, v in settings.items()), []),
         *(["--resume"] if os.path.exists(os.path.join(run_dir, "last.pt")) else [])])
    ds = load_dataset(data)
    state = read_checkpoint(os.path.join(run_dir, MLE))
    cfg = saved_run_config(state, run_dir)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    save_checkpoint(args.out, base_state(state, cfg, ds.tokenizer))
    with open(os.path.join(run_dir, "metrics.jsonl"), encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    best = min(rows, key=lambda r: r["valid_nll"])
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    info = {"collections": [f"builtin:{c}" for c in BASE_COLLECTIONS], "tunes": len(ds.pieces),
            "train_windows": len(ds.train), "valid_windows": len(ds.valid), "units_run": len(rows),
            "best_unit": best["unit"], "valid_nll": round(best["valid_nll"], 4), "preset": args.preset, "seq_len": seq_len,
            "batches_per_unit": args.unit_batches,
            "batch_size": args.batch_size, "torch": torch.__version__,
            "command": "python3 scripts/build_base_model.py " + " ".join(sys.argv[1:]), "commit": commit}
    with open(args.out[: -len(".pt")] + ".json", "w", encoding="utf-8") as fh:
        json.dump(info, fh, indent=1)
    print(f"{args.out}: {os.path.getsize(args.out) / 1e6:.2f} MB; {info['tunes']} tunes, best unit {best['unit']} "
          f"of {len(rows)}, validation NLL {best['valid_nll']:.4f}, {time.time() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
