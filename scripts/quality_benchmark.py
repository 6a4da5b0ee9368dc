"""Does the adversarial phase make melodies better? Train and evaluate a grid of runs and print
each run's MLE, best and last generators beside the Markov baseline and the real floor.

    python3 scripts/quality_benchmark.py DATA_DIR... --preset demo --seeds 0 1 2 --out runs/quality
        [--set key=value ...] [--num 1000] [--temperature 1.0]

Each (dataset, seed) trains ``--preset`` into OUT/<dataset>-<preset>-s<seed> (reused when it
already finished) and evaluates it at ``--temperature``. The summary gives, per run, the fresh
critic's accuracy (lower = closer to real), the statistics overlap (higher), the silent rate and
the validation NLL of each model, then the mean and spread over seeds per dataset, and one JSON
line per run for the README's tables.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import numpy as np

from seqgan_music.checkpoint import read_checkpoint
from seqgan_music.evaluate import evaluate_run

KEYS = ("critic", "overlap", "silent", "valid_nll")


def finished(last_path: str) -> bool:
    """Whether the run of this checkpoint completed its schedule (a killed run resumes)."""
    if not os.path.exists(last_path):
        return False
    state = read_checkpoint(last_path)
    return state["progress"] == state["units"]


def run_one(data: str, preset: str, seed: int, out: str, sets: list[str], num: int, temp: float) -> dict:
    name = f"{os.path.basename(data.rstrip('/'))}-{preset}-s{seed}"
    run_dir = os.path.join(out, name)
    last_path = os.path.join(run_dir, "last.pt")
    if not finished(last_path):
        cmd = [sys.executable, "-m", "seqgan_music", "train", data, "--out", run_dir, "--preset", preset,
               "--set", f"seed={seed}", *sum((["--set", s] for s in sets), [])]
        if os.path.exists(last_path):
            cmd.append("--resume")
        subprocess.run(cmd, check=True, stderr=subprocess.DEVNULL)
    result = evaluate_run(run_dir, data, num=num, temperatures=(temp,), seed=seed)
    rows = {r["model"].split("-")[0]: {k: r[k] for k in KEYS} for r in result["rows"]}
    with open(os.path.join(run_dir, "metrics.jsonl"), encoding="utf-8") as fh:
        last = [json.loads(line) for line in fh][-1]
    return {"run": name, "data": data, "seed": seed, "best_unit": last.get("best_unit"),
            "notice": last.get("notice"), "rows": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", nargs="+")
    ap.add_argument("--preset", default="demo")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", default="runs/quality")
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--num", type=int, default=1000)
    ap.add_argument("--temperature", type=float, default=1.0)
    args = ap.parse_args()
    results = []
    for data in args.data:
        for seed in args.seeds:
            res = run_one(data, args.preset, seed, args.out, args.set, args.num, args.temperature)
            results.append(res)
            print(json.dumps(res), flush=True)
    print(f"\npreset {args.preset}, temperature {args.temperature}, {args.num} windows per row; "
          "critic: lower is better (0.5 = indistinguishable), overlap: higher is better")
    models = ("MLE", "best", "last", "Markov", "real")
    print(f"{'dataset':12s} {'measure':10s}" + "".join(f"{m:>16s}" for m in models))
    for data in args.data:
        mine = [r for r in results if r["data"] == data]
        for key in KEYS:
            cells = []
            for m in models:
                v = np.array([r["rows"][m][key] for r in mine])
                cells.append(f"{v.mean():8.3f} ±{v.std():.3f}" if np.isfinite(v).all() else f"{'-':>14s}")
            print(f"{os.path.basename(data.rstrip('/')):12s} {key:10s}" + "".join(f"{c:>16s}" for c in cells))
        wins = sum(r["rows"]["best"]["critic"] <= r["rows"]["MLE"]["critic"] for r in mine)
        print(f"{'':12s} best beats or equals MLE on the critic in {wins}/{len(mine)} runs")


if __name__ == "__main__":
    main()
