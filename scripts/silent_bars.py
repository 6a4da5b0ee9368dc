"""Whole bars of rest in tunes generated to a length: forbidding END against tunes after tunes.

Usage: python scripts/silent_bars.py RUN_DIR --bars N [--num 100] [--seeds 4] [--meter M]
For each of the run's generators (mle, best, last): N-bar tunes sampled at temperature 1.0 (a
model trained on data with tune ends), ``--num`` per seed, two ways: with END forbidden (the
model writes on past any end it would choose; what ``generate --bars`` did before) and as
``generate --bars`` writes them now (a tune the model ends is followed by the next it writes).
Prints the share of tunes with a bar in which no note sounds, and such bars per tune; real
tunes almost never have one (1-2 of the 1,000-2,000 tunes of each built-in collection).
"""

import argparse
import os

import numpy as np
import torch

from seqgan_music.checkpoint import MODELS
from seqgan_music.generate import asked_place, choose_meter, generate_tokens, load_run


def silent_bars(tokenizer, tokens: np.ndarray) -> int:
    """Bars of a bars-encoding token row (between its bar lines) in which no note sounds."""
    is_step = tokenizer.is_step(tokens) & (tokens != tokenizer.end_token)
    sounding = np.zeros(int(is_step.sum()), dtype=bool)
    for _, on, off in tokenizer.decode_notes(tokens):
        sounding[on:off] = True
    bar_of_step = np.cumsum(~tokenizer.is_step(tokens))[is_step]  # bar lines so far, per grid step
    return sum(not sounding[bar_of_step == b].any() for b in np.unique(bar_of_step))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir")
    ap.add_argument("--bars", type=int, required=True)
    ap.add_argument("--num", type=int, default=100)
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--meter", default=None)
    args = ap.parse_args()
    print(f"{args.run_dir}: {args.bars}-bar tunes, {args.num} x {args.seeds} seeds; tunes with a silent bar "
          "(silent bars per tune)")
    print(f"{'model':6s}  {'END forbidden':>16s}  {'tunes after tunes':>18s}")
    for name in ("mle", "best", "last"):
        if not os.path.exists(os.path.join(args.run_dir, MODELS[name])):
            continue
        run = load_run(args.run_dir, "cpu", name)
        tok = run.tokenizer
        if tok.end_token is None:
            raise SystemExit(f"{args.run_dir}: trained on data without tune ends (prepare --encoding bars)")
        meter = choose_meter(run, None, args.meter)
        steps = tok.steps_for(args.bars, meter=meter)
        bar_line = (tok.bar_line_choices(meter), tok.steps_for(1, meter=meter))
        cells = []
        for forbidden in (True, False):
            counts = []
            for seed in range(args.seeds):
                if forbidden:
                    rows = run.generator.sample(args.num, steps, generator=torch.Generator().manual_seed(seed),
                                                bar_line=bar_line, end_token=tok.end_token, may_end=False,
                                                place=asked_place(run, args.num, steps, None, bar_line))
                else:
                    rows = generate_tokens(run, args.num, steps, seed=seed, meter=meter)
                counts += [silent_bars(tok, row) for row in rows.numpy()]
            cells.append(f"{np.mean(np.array(counts) > 0):.2f} ({np.mean(counts):.2f})")
        print(f"{name:6s}  {cells[0]:>16s}  {cells[1]:>18s}")


if __name__ == "__main__":
    main()
