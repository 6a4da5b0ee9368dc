"""What the structure overlaps of ``evaluate`` reach for real tunes: the ceiling of its targets.

Usage: python scripts/structure_floor.py DATA_DIR... [--num 300] [--draws 10]
Per dataset and structure statistic: the histogram overlap of ``--num`` windows of the training
tunes with the validation windows (``evaluate``'s ``real`` row), mean and lowest over ``--draws``
draws, and the overlap of two disjoint draws of training windows, one as large as the validation
set (what the statistic's sampling noise alone leaves). A gap between the two is the validation
tunes themselves: few tunes, many windows each.
"""

import argparse

import numpy as np

from seqgan_music.dataset import load_dataset
from seqgan_music.evaluate import piece_windows, structure_table
from seqgan_music.metrics import histogram_overlap


def finite(values: np.ndarray) -> np.ndarray:
    return values[np.isfinite(values)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data_dirs", nargs="+")
    ap.add_argument("--num", type=int, default=300, help="training windows per draw (evaluate --num)")
    ap.add_argument("--draws", type=int, default=10)
    args = ap.parse_args()
    for data_dir in args.data_dirs:
        ds = load_dataset(data_dir)
        tok = ds.tokenizer
        tables = []
        for side in (ds.piece_is_valid, ~ds.piece_is_valid):
            windows = piece_windows(ds.pieces, side, tok)[0]
            tables.append(structure_table(tok, windows, tok.decode_all(windows)))
        valid, train = tables
        if not valid:
            raise SystemExit(f"{data_dir}: no beat grid, so no structure statistics")
        print(f"{data_dir}: {int(ds.piece_is_valid.sum())} validation tunes, {len(valid['phrase_rep'])} windows; "
              f"overlap of {args.num} training windows with them, mean (lowest) over {args.draws} draws; "
              "training vs training")
        for name in valid:
            target, pool = finite(valid[name]), finite(train[name])
            against_valid, against_train = [], []
            for draw in range(args.draws):
                order = np.random.default_rng(draw).permutation(len(pool))
                against_valid.append(histogram_overlap(pool[order[: args.num]], target))
                against_train.append(histogram_overlap(pool[order[: args.num]],
                                                       pool[order[args.num : args.num + len(target)]]))
            print(f"  {name:15s} {np.mean(against_valid):.2f} ({min(against_valid):.2f})   {np.mean(against_train):.2f}")


if __name__ == "__main__":
    main()
