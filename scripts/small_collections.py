"""A few dozen songs: does starting from the folk base model beat training from scratch? Draw K songs
of a collection by seed, train on them as the app does from each start, and judge 8-bar melodies
against the collection's *other* songs with the listening test (seqgan_music/listening_test.py).

    python3 scripts/small_collections.py SOURCE... --songs 25 --seeds 0 1 2 --out runs/small
        [--starts scratch base] [--preset demo] [--others 300] [--melodies 200] [--critic-runs 3] [--set k=v ...]
        [--base-tunes BASE_DATA]

SOURCE is anything ``prepare`` reads (a folder of MIDI files, ``builtin:NAME``). Each collection is
prepared once whole (app encoding); per seed, K of its tunes are drawn and written as MIDI files
(a user's upload), prepared as the app prepares an upload, and trained with ``--preset`` from each
start (``train --from base`` for base); runs and datasets are kept in OUT and reused. Judged against
up to ``--others`` of the tunes not drawn: the MLE and best models of each start, an order-4 Markov
chain fitted on the same songs, and the K songs themselves (the floor). Printed: one JSON line per
(collection, seed), then per collection each row's critic (mean ±spread over seeds; lower is
better, 0.5 = indistinguishable from the other songs), rhythm and form beside the other songs',
and D through the adversarial phase (unseen real windows called real, rounds moving < 0.3). With
``--base-tunes``, each row is judged against the base model's collection too: melodies closer to
the other songs than to the base collection sound like the user's songs, not like the base's.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

import numpy as np
from quality_benchmark import d_stability, d_summary, finished

from seqgan_music.config import PRESETS
from seqgan_music.dataset import load_dataset
from seqgan_music.generate import load_run
from seqgan_music.listening_test import ListeningTest, meter_counts, midi_bytes, openings_of, user_melodies
from seqgan_music.markov import MarkovChain

APP_PREPARE = ["--encoding", "bars", "--seq-len", "68", "--hop", "34"]  # the app's default: 4-bar windows


def upload_prepare(preset: str) -> list[str]:
    """``prepare``'s options for an upload trained with ``preset``: the app's, in the windows the preset is made for."""
    bars = PRESETS[preset].get("window_bars", 4)
    return ["--encoding", "bars", "--seq-len", str(17 * bars), "--hop", str(17 * bars // 2)]  # 16 steps and a bar line per bar
STATS = ("modal_duration", "phrase_rep", "notes_per_bar")


def cli(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "seqgan_music", *args], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def collection(source: str, out: str):
    """The whole collection, prepared once without a validation split."""
    name = "-".join(source.rstrip("/").split("/")[-2:]).replace("builtin:", "").lstrip(".-")
    folder = os.path.join(out, name, "all")
    if not os.path.exists(os.path.join(folder, "manifest.json")):
        cli("prepare", source, *APP_PREPARE, "--valid-fraction", "0", "--out", folder)
    return name, load_dataset(folder)


def user_dataset(whole, songs: np.ndarray, folder: str, preset: str):
    """``songs`` (piece indices of ``whole``) written as MIDI files and prepared as the app prepares an upload
    for ``preset``."""
    data = os.path.join(folder, "data" if upload_prepare(preset) == APP_PREPARE else f"data-{preset}")
    if not os.path.exists(os.path.join(data, "manifest.json")):
        os.makedirs(os.path.join(folder, "songs"), exist_ok=True)
        for i in songs:
            with open(os.path.join(folder, "songs", f"song{i:05d}.mid"), "wb") as fh:
                fh.write(midi_bytes(whole.tokenizer, whole.pieces[i]))
        cli("prepare", os.path.join(folder, "songs"), *upload_prepare(preset), "--out", data)
    return data, load_dataset(data)


def train(data: str, run_dir: str, start: str, args: argparse.Namespace, seed: int) -> None:
    if finished(os.path.join(run_dir, "last.pt")):
        return
    resume = ["--resume"] if os.path.exists(os.path.join(run_dir, "last.pt")) else []
    cli("train", data, "--out", run_dir, "--preset", args.preset, "--set", f"seed={seed}",
        *sum((["--set", s] for s in args.set), []), *(["--from", start] if start != "scratch" else []), *resume)


def run_one(source: str, args: argparse.Namespace, seed: int) -> dict:
    name, whole = collection(source, args.out)
    order = np.random.default_rng(seed).permutation(len(whole.pieces))
    songs, others = order[: args.songs], order[args.songs: args.songs + args.others]
    folder = os.path.join(args.out, name, f"k{args.songs}-s{seed}")
    data, ds = user_dataset(whole, songs, folder, args.preset)
    test = ListeningTest(openings_of(whole.tokenizer, [whole.pieces[i] for i in others]), args.critic_runs, seed)
    meters = meter_counts(ds.tokenizer, ds.train_tunes(), args.melodies)
    sets, d = {}, {}  # row -> the openings of its melodies
    for start in args.starts:
        run_dir = os.path.join(folder, f"{start}-{args.preset}")
        train(data, run_dir, start, args, seed)
        for which in ("mle", "best"):
            melodies = user_melodies(load_run(run_dir, "cpu", which), meters, 4, seed)
            sets[f"{start} {which}"] = openings_of(ds.tokenizer, melodies)
        d[start] = d_stability(run_dir)
    chain = MarkovChain(4, ds.tokenizer.vocab_size).fit(ds.train.numpy())
    sets["Markov-4"] = openings_of(ds.tokenizer, chain.sample(args.melodies, ds.tokenizer.steps_for(8), seed))
    sets["the K songs"] = openings_of(whole.tokenizer, [whole.pieces[i] for i in songs])
    rows = {label: test.judge(label, openings) for label, openings in sets.items()}
    keep = ("critic", "critic_sd", *STATS)
    out = {"collection": name, "seed": seed, "songs": args.songs, "others": len(others), "train_windows": len(ds.train),
           "rows": {k: {f: r[f] for f in keep} for k, r in rows.items()}, "others_stats": test.real_stats, "d": d}
    if args.base_tunes:
        out["against_base"] = against_base(args.base_tunes, args.others, seed, args.critic_runs, sets)
    return out


def against_base(data: str, count: int, seed: int, critic_runs: int, sets: dict[str, list]) -> dict[str, float]:
    """Each row's melodies (openings) judged against ``count`` tunes of the base model's collection
    (the prepared dataset ``data``) instead of the user's other songs: a row closer to the other
    songs than to the base collection sounds like the user's songs, not like the base's."""
    base = load_dataset(data)
    pick = np.random.default_rng(seed).permutation(len(base.pieces))[:count]
    test = ListeningTest(openings_of(base.tokenizer, [base.pieces[i] for i in pick]), critic_runs, seed)
    return {label: test.judge(label, openings)["critic"] for label, openings in sets.items()}


def summary(mine: list[dict]) -> list[str]:
    head = mine[0]
    lines = [f"{head['collection']}: {head['songs']} songs, {len(mine)} seeds, judged against {head['others']} other "
             "tunes; critic mean ±seed sd (mean critic sd)"]
    for row in head["rows"]:
        c = np.array([r["rows"][row]["critic"] for r in mine])
        sd = np.mean([r["rows"][row]["critic_sd"] for r in mine])
        stats = "  ".join(f"{k} {np.mean([r['rows'][row][k] for r in mine]):.3f}" for k in STATS)
        lines.append(f"  {row:14s} critic {c.mean():.3f} ±{c.std(ddof=1) if len(c) > 1 else 0:.3f} ({sd:.3f})  "
                     f"per seed {' '.join(f'{v:.3f}' for v in c)}  {stats}")
    lines.append(f"  {'other tunes':14s} {'':45s}" + "  ".join(f"{k} {np.mean([r['others_stats'][k] for r in mine]):.3f}"
                                                          for k in STATS))
    if "against_base" in head:
        lines.append("  against the base collection instead (lower: sounds more like the base's tunes): " + "  ".join(
            f"{row} {np.mean([r['against_base'][row] for r in mine]):.3f}" for row in head["against_base"]))
    for start in head["d"]:
        ds = [r["d"][start] for r in mine if r["d"].get(start)]
        if ds:
            lines.append(f"  D from {start}: {d_summary(ds)}")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sources", nargs="+")
    ap.add_argument("--songs", type=int, default=25)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--starts", nargs="+", default=["scratch", "base"])
    ap.add_argument("--preset", default="demo")
    ap.add_argument("--out", default="runs/small")
    ap.add_argument("--others", type=int, default=300)
    ap.add_argument("--melodies", type=int, default=200)
    ap.add_argument("--critic-runs", type=int, default=3)
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--base-tunes", help="a dataset prepared from the base model's collections (prepare builtin:essen "
                                         "builtin:oneills builtin:ryans builtin:airds --valid-fraction 0 ...): each row "
                                         "is judged against --others of its tunes too")
    args = ap.parse_args()
    results = []
    for source in args.sources:
        for seed in args.seeds:
            results.append(run_one(source, args, seed))
            print(json.dumps(results[-1]), flush=True)
    print(f"\npreset {args.preset} {' '.join(args.set)}; listening test, {args.melodies} melodies of 8 bars per row")
    for name in dict.fromkeys(r["collection"] for r in results):
        print("\n".join(summary([r for r in results if r["collection"] == name])))


if __name__ == "__main__":
    main()
