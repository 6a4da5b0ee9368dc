"""Does the adversarial phase make the melodies a user gets better? Train a grid of runs and judge
each run's MLE, best and last generators with the listening test (seqgan_music/listening_test.py),
beside the Markov baseline and the real floor, over training seeds.

    python3 scripts/quality_benchmark.py DATA_DIR... --preset demo --seeds 0 1 2 --out runs/quality
        [--set key=value ...] [--melodies 200] [--critic-runs 3]

Each (dataset, seed) trains ``--preset`` into OUT/<dataset>-<preset>-s<seed> (reused when it
already finished) and runs the listening test on it. Printed per dataset: each row's critic
(mean over seeds, their spread, and the mean spread over critic seeds), the rhythm and form
statistics beside the held-out tunes', the difference best - MLE per seed with its call (a
difference counts only beyond both spreads), and D through the adversarial phase: its mean
accuracy on unseen real windows and on the round's fresh fakes, and the share of rounds where its
accuracy on unseen real windows moved by less than 0.3. One JSON line per run comes first.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import numpy as np

from seqgan_music.checkpoint import read_checkpoint
from seqgan_music.dataset import load_dataset
from seqgan_music.device import resolve_device
from seqgan_music.evaluate import listening_rows

STATS = ("modal_duration", "phrase_rep", "notes_per_bar")


def finished(last_path: str) -> bool:
    """Whether the run of this checkpoint completed its schedule (a killed run resumes)."""
    if not os.path.exists(last_path):
        return False
    state = read_checkpoint(last_path)
    return state["progress"] == state["units"]


def d_stability(run_dir: str) -> dict:
    """D through the adversarial rounds of a run (metrics.jsonl): mean share of unseen real windows
    it calls real, mean share of the round's fakes it calls fake, and the share of rounds whose
    unseen-real share moved by less than 0.3 from the round before."""
    with open(os.path.join(run_dir, "metrics.jsonl"), encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh]
    adv = [r for r in rows if r.get("phase") == "adversarial" and "d_real_unseen" in r]
    if not adv:
        return {}
    unseen = np.array([r["d_real_unseen"] for r in adv])
    fake = np.array([2 * r["d_acc_check"] - r["d_real_seen"] for r in adv])
    steady = float(np.mean(np.abs(np.diff(unseen)) < 0.3)) if len(unseen) > 1 else float("nan")
    return {"d_real_unseen": float(unseen.mean()), "d_fake": float(fake.mean()), "d_steady": steady,
            "best_model": rows[-1].get("best_model")}


def run_one(data: str, args: argparse.Namespace, seed: int) -> dict:
    name = f"{os.path.basename(data.rstrip('/'))}-{args.preset}-s{seed}"
    run_dir = os.path.join(args.out, name)
    last_path = os.path.join(run_dir, "last.pt")
    if not finished(last_path):
        cmd = [sys.executable, "-m", "seqgan_music", "train", data, "--out", run_dir, "--preset", args.preset,
               "--set", f"seed={seed}", *sum((["--set", s] for s in args.set), [])]
        if os.path.exists(last_path):
            cmd.append("--resume")
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    listening = listening_rows(run_dir, load_dataset(data), args.melodies, args.critic_runs, seed,
                               resolve_device("cpu"))
    rows = {r["model"].split("-")[0]: {k: r[k] for k in ("critic", "critic_sd", *STATS)} for r in listening["rows"]}
    return {"run": name, "data": data, "seed": seed, "held_out": listening["held_out_stats"], "rows": rows,
            "d": d_stability(run_dir)}


def summary(data: str, mine: list[dict]) -> list[str]:
    """The per-dataset table over seeds."""
    models = [m for m in ("MLE", "best", "last", "Markov", "real") if all(m in r["rows"] for r in mine)]
    lines = [f"{os.path.basename(data.rstrip('/'))}: {len(mine)} seeds; critic mean ±seed sd (mean critic sd)"]
    for m in models:
        c = np.array([r["rows"][m]["critic"] for r in mine])
        sd = np.mean([r["rows"][m]["critic_sd"] for r in mine])
        st = "  ".join(f"{k} {np.mean([r['rows'][m][k] for r in mine]):.3f}" for k in STATS)
        lines.append(f"  {m:7s} critic {c.mean():.3f} ±{c.std(ddof=1) if len(c) > 1 else 0:.3f} ({sd:.3f})  {st}")
    held = "  ".join(f"{k} {np.mean([r['held_out'][k] for r in mine]):.3f}" for k in STATS)
    lines.append(f"  {'held-out':7s} {'':29s}{held}")
    diffs = np.array([r["rows"]["best"]["critic"] - r["rows"]["MLE"]["critic"] for r in mine])
    mle = np.array([r["rows"]["MLE"]["critic"] for r in mine])
    noise = max(float(mle.std(ddof=1)) if len(mle) > 1 else 0.0,
                float(np.mean([r["rows"][m]["critic_sd"] for r in mine for m in ("MLE", "best")])))
    call = "closer to the held-out tunes" if diffs.mean() < -noise else \
        "further from them" if diffs.mean() > noise else "no different"
    lines.append(f"  best - MLE per seed {' '.join(f'{d:+.3f}' for d in diffs)}; mean {diffs.mean():+.3f} against "
                 f"the larger spread {noise:.3f}: best is {call}")
    ds = [r["d"] for r in mine if r["d"]]
    if ds:
        lines.append(f"  D over the adversarial rounds: {d_summary(ds)}")
    return lines


def d_summary(ds: list[dict]) -> str:
    """:func:`d_stability` of several runs in one line (means, the lowest unseen-real share, best models)."""
    return (f"unseen real called real {np.mean([d['d_real_unseen'] for d in ds]):.2f} (lowest run "
            f"{min(d['d_real_unseen'] for d in ds):.2f}), fakes called fake {np.mean([d['d_fake'] for d in ds]):.2f}, "
            f"rounds moving < 0.3 {np.mean([d['d_steady'] for d in ds]):.2f}; "
            f"best models: {', '.join(d['best_model'] for d in ds)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", nargs="+")
    ap.add_argument("--preset", default="demo")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", default="runs/quality")
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--melodies", type=int, default=200)
    ap.add_argument("--critic-runs", type=int, default=3)
    args = ap.parse_args()
    results = []
    for data in args.data:
        for seed in args.seeds:
            res = run_one(data, args, seed)
            results.append(res)
            print(json.dumps(res), flush=True)
    print(f"\npreset {args.preset} {' '.join(args.set)}; listening test, {args.melodies} melodies of 8 bars per row; "
          "critic: lower is better (0.5 = indistinguishable from the held-out tunes)")
    for data in args.data:
        print("\n".join(summary(data, [r for r in results if r["data"] == data])))


if __name__ == "__main__":
    main()
