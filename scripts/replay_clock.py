"""Replay a finished run's metrics through the clock: the time left it would have said after each
unit, against the true time left, and its largest relative error once a tenth of the run had
passed (while a twentieth remained), as `bench train-time` judges it.

    python3 scripts/replay_clock.py RUN_DIR --windows N --probe MLE D_ROUND ROUND STARTUP
        [--prior SHARE ROUNDS ...] [--verbose]

RUN_DIR: a run folder (its last.pt and metrics.jsonl); N: its training windows; the probe's
figures as `train --estimate` prints them (seconds per MLE unit, D round, adversarial round with
D's steps, start-up). Each --prior replays with that D_SHARE_PRIOR and D_SHARE_PRIOR_ROUNDS.
The run's start is taken as its first unit's end less the probe's MLE unit and start-up.
"""

from __future__ import annotations

import argparse
import json
import os

import seqgan_music.clock as clock_module
from seqgan_music.bench_training import CLOCK_FROM, CLOCK_UNTIL
from seqgan_music.checkpoint import LAST, load_checkpoint
from seqgan_music.clock import Clock, Estimate


def replay(rows: list[dict], clock: Clock, estimate: Estimate, verbose: bool) -> tuple[float, str]:
    """-> the largest error and the unit it came after."""
    start = rows[0]["time"] - estimate.unit_seconds["mle"] - estimate.startup
    end = rows[-1]["time"]
    total, previous, worst = end - start, start + estimate.startup, (0.0, "")
    for row in rows:
        clock.observe(row, row["time"] - previous)
        previous = row["time"]
        said, true = clock.left(row["next_unit"]), end - row["time"]
        if row["time"] - start >= CLOCK_FROM * total and true >= CLOCK_UNTIL * total:
            where = f"{row['phase']} {row['unit']}" + (" (D skipped)" if row.get("d_skipped") else "")
            if verbose:
                print(f"  after {where}: said {said:.0f} s left, {true:.0f} s were")
            worst = max(worst, (abs(said - true) / true, where))
    return worst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir")
    ap.add_argument("--windows", type=int, required=True)
    ap.add_argument("--probe", type=float, nargs=4, required=True, metavar=("MLE", "D_ROUND", "ROUND", "STARTUP"))
    ap.add_argument("--prior", type=float, nargs=2, action="append", metavar=("SHARE", "ROUNDS"))
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    cfg = load_checkpoint(os.path.join(args.run_dir, LAST)).config
    with open(os.path.join(args.run_dir, "metrics.jsonl")) as fh:
        rows = [json.loads(line) for line in fh]
    mle, d_round, adversarial, startup = args.probe
    estimate = Estimate({"mle": mle, "d_pretrain": d_round, "adversarial": adversarial}, startup)
    print("adversarial rounds that skipped D's steps:",
          "".join(str(int(r.get("d_skipped", 0))) for r in rows if r["phase"] == "adversarial"))
    for share, rounds in args.prior or [(clock_module.D_SHARE_PRIOR, clock_module.D_SHARE_PRIOR_ROUNDS)]:
        clock_module.D_SHARE_PRIOR, clock_module.D_SHARE_PRIOR_ROUNDS = share, rounds
        error, where = replay(rows, Clock.for_run(cfg, args.windows, estimate), estimate, args.verbose)
        print(f"prior {share} x {rounds:g} rounds: largest error {100 * error:.0f}% (after {where})")


if __name__ == "__main__":
    main()
