"""``seqgan-music evaluate``: a run's MLE, best and last generators side by side, with a Markov
baseline and real held-out tunes as the floor.

For each model and sampling temperature: a fresh critic's two-sample accuracy against held-out
real windows (:mod:`seqgan_music.critic`; 0.5 = indistinguishable), BLEU-4 against the training
windows (the paper's music metric), MSE (defined in :func:`seqgan_music.metrics.pitch_mse`),
self-BLEU (diversity), the NLL of the validation windows, the silent-melody rate, note-duration
entropy, phrase repetition, the pitch-class distance to the validation windows, and music
statistics of generated vs validation melodies with the overlap of their distributions.

Extra rows: ``Markov``, an order-k chain fitted to the same training windows
(:mod:`seqgan_music.markov`), and ``real``, windows of the training tunes themselves (the critic's
floor: what it scores on real against real).

The listening test (:mod:`seqgan_music.listening_test`, on by default) judges what a user gets:
8-bar melodies drawn as ``generate`` draws them, written as MIDI and read back, against the
held-out tunes' openings; its rows come first in the report.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from collections.abc import Callable
from functools import partial

import numpy as np
import torch

from seqgan_music.checkpoint import BEST, LAST, MLE, LoadedRun
from seqgan_music.config import DEFAULT_DRAFTS
from seqgan_music.critic import two_sample_accuracy
from seqgan_music.dataset import load_dataset, windows_of
from seqgan_music.drafts import keep_drafts
from seqgan_music.errors import UserError
from seqgan_music.generate import MAX_DRAFTS, MAX_MELODIES, load_run
from seqgan_music.listening_test import (
    ListeningTest,
    copied_bars,
    meter_counts,
    openings_of,
    reading,
    shuffled_bars,
    user_melodies,
)
from seqgan_music.markov import MarkovChain
from seqgan_music.metrics import (
    STAT_NAMES,
    STRUCTURE_NAMES,
    bleu,
    duration_entropy,
    ends_on_tonic,
    histogram_overlap,
    phrase_repetition,
    pitch_class_distance,
    pitch_mse,
    self_bleu,
    silent_rate,
    structure_stats,
)
from seqgan_music.models import eval_mode, never_drawing
from seqgan_music.selection import stats_table
from seqgan_music.tokenizer import METERS

MAX_TUNE_BARS = 128  # whole tunes sampled for the tune-length statistic stop here if the model has not ended them
MAX_CRITIC_RUNS = 20  # fresh critics trained per evaluation
DEFINITIONS = {
    "critic": "held-out accuracy of a fresh GRU classifier telling generated from validation windows "
              "(split by tune, 2 folds; 0.5 = indistinguishable, lower is better; nan with fewer than 2 validation tunes); "
              "with --critic-runs K the mean of K critics of different seeds on the same windows, critic_sd their "
              "standard deviation",
    "bleu4": "mean sentence BLEU-4 of each generated window against all training windows (uniform weights, no smoothing)",
    "mse": "mean over generated windows of the mean squared sounding-pitch difference (semitones^2) to the nearest training window",
    "self_bleu4": "BLEU-4 of 200 generated windows against the other generated ones (lower = more diverse)",
    "valid_nll": "mean per-token NLL (nats) of the validation windows under the generator",
    "silent": "share of generated windows without a note",
    "dur_entropy": "entropy (bits) of note durations in steps, pooled over the windows",
    "phrase_rep": "mean share of a window's 4-note pitch patterns that recur within it",
    "pc_dist": "total variation distance (0..1) of the pooled pitch-class histogram to the validation windows'",
    "overlap": "mean over the music statistics of the overlap of generated vs validation histograms (1 = same distribution)",
    "tonic_ending": "structure: share of melodies whose last note is the tonic of their estimated key (Krumhansl-Schmuckler)",
    "downbeat_share": "structure: share of note onsets on the first step of a 4/4 bar (bars counted from step 0)",
    "on_beat_share": "structure: share of note onsets on a beat (a quarter note)",
    "key_agreement": "structure: mean over bars of the share of sounding steps whose pitch class is in the estimated key's scale",
    "tune_bars": "tune length: bars before the END token of whole tunes sampled freely from the start (at most "
                 f"{MAX_TUNE_BARS}; data with tune ends only), against the validation tunes' lengths (one bin per "
                 "bar; the training tunes' lengths are the floor); a model with the bars-left feature is asked for "
                 "lengths drawn from the training tunes' ('as asked': the share it ended at the asked bar); 'on "
                 "the tonic': the share of those whole tunes whose last note is their estimated key's tonic",
}
MODELS = (("MLE", MLE), ("best", BEST), ("last", LAST))


def piece_windows(pieces: list[np.ndarray], which: np.ndarray, tokenizer) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Windows of the pieces where ``which`` is True -> ((N, T) windows, (N,) piece index of each,
    (N,) number of each one's first bar in its tune); windows that reach a tune's end are left
    out (the samples compared with them never end a tune)."""
    wins, groups, places = [], [], []
    seq_len = tokenizer.config.seq_len
    for i in np.flatnonzero(which):
        w, place = windows_of(tokenizer, pieces[i], ends=False)
        wins.append(w)
        groups.append(np.full(len(w), i))
        places.append(place)
    if not wins:
        return np.zeros((0, seq_len), np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(wins).astype(np.int64), np.concatenate(groups), np.concatenate(places).astype(np.int64)


def structure_table(tokenizer, windows: np.ndarray, melodies: list) -> dict[str, np.ndarray]:
    """{name: (N,) values} of :func:`structure_stats` of (N, T) ``windows`` (in each window's
    metre; ``melodies``: their decoded notes) plus phrase repetition; {} without a beat grid."""
    if tokenizer.steps_per_bar is None:
        return {}
    rows = [dict(structure_stats(n, *tokenizer.bar_and_beat_steps(w)), phrase_rep=phrase_repetition(n))
            for w, n in zip(windows, melodies)]
    return {name: np.array([r[name] for r in rows]) for name in ("phrase_rep", *STRUCTURE_NAMES)}


class _Reference:
    """What every row is compared with: references, validation windows and their statistics."""

    def __init__(self, ds, max_refs: int, rng: np.random.Generator, critic_runs: int = 1):
        tok = ds.tokenizer
        self.critic_runs = critic_runs
        self.tokenizer = tok
        train = ds.train.numpy()
        self.refs = train[rng.choice(len(train), min(max_refs, len(train)), replace=False)]
        self.ref_pitch = tok.sounding_pitch(self.refs)
        self.valid, self.valid_groups, self.valid_place = piece_windows(ds.pieces, ds.piece_is_valid, tok)
        if len(self.valid) == 0:
            raise UserError(f"{ds.path}: no validation tunes to compare with; prepare more pieces")
        self.critic_possible = len(np.unique(self.valid_groups)) >= 2  # the critic's folds split tunes
        self.valid_notes = tok.decode_all(self.valid)
        self.valid_stats = stats_table(self.valid_notes, self.valid, tok)
        self.valid_structure = structure_table(tok, self.valid, self.valid_notes)

    def row(self, label: str, temperature: float | None, samples: np.ndarray, valid_nll: float,
            sample_groups: np.ndarray | None = None, seed: int = 0) -> dict:
        start = time.perf_counter()
        tok = self.tokenizer
        notes = tok.decode_all(samples)
        gen_stats = stats_table(notes, samples, tok)
        overlaps = {k: histogram_overlap(gen_stats[k], self.valid_stats[k]) for k in STAT_NAMES}
        structure = structure_table(tok, samples, notes)
        critics = [two_sample_accuracy(self.valid, self.valid_groups, samples, tok.vocab_size, sample_groups, seed=seed + i)
                   if self.critic_possible else float("nan") for i in range(self.critic_runs)]
        present = {k: (v[np.isfinite(v)], self.valid_structure[k][np.isfinite(self.valid_structure[k])])
                   for k, v in structure.items()}
        return {
            "model": label, "temperature": temperature,
            "critic": float(np.mean(critics)) if critics else float("nan"),
            "critic_sd": float(np.std(critics, ddof=1)) if len(critics) > 1 else float("nan"),
            "bleu4": float(bleu(samples, self.refs, 4, tok.vocab_size).mean()),
            "mse": pitch_mse(tok.sounding_pitch(samples), self.ref_pitch), "self_bleu4": self_bleu(samples),
            "valid_nll": valid_nll, "silent": silent_rate(notes), "dur_entropy": duration_entropy(notes),
            "phrase_rep": float(np.mean([phrase_repetition(n) for n in notes])),
            "pc_dist": pitch_class_distance(notes, self.valid_notes),
            "overlap": float(np.mean(list(overlaps.values()))),
            "stats_mean": {k: float(v.mean()) for k, v in gen_stats.items()}, "stats_overlap": overlaps,
            "structure_mean": {k: float(g.mean()) if len(g) else float("nan") for k, (g, _) in present.items()},
            "structure_overlap": {k: histogram_overlap(g, v) if len(g) and len(v) else float("nan")
                                  for k, (g, v) in present.items()},
            "seconds": time.perf_counter() - start,
        }


def evaluate_run(run_dir: str, data_dir: str, num: int = 1000, temperatures=(0.8, 0.9, 1.0, 1.1),
                 max_refs: int = 10000, seed: int = 0, device: str | torch.device = "cpu",
                 markov_order: int = 4, critic_runs: int = 1, drafts: int = 1, melodies: int = 200,
                 calibrate: bool = False, progress: Callable[[str], None] | None = None) -> dict:
    """Metrics for the MLE, best and last checkpoints of ``run_dir`` on the dataset ``data_dir``
    (those the run has: one stopped during pre-training has only its last state), then the Markov
    baseline and the real floor (at temperature None); each row's critic is the mean of
    ``critic_runs`` critics (seeds ``seed``, ``seed + 1``, ...; 0: none, the listening test keeps
    its 2). With ``drafts`` K > 1, each model
    row is followed by one of windows kept from K drafts each (:mod:`seqgan_music.drafts`). With
    ``melodies`` > 0 the listening test comes first (:func:`listening_rows`). ``progress`` is
    called with the name of each row before it is judged."""
    if not all(math.isfinite(t) and t > 0 for t in temperatures) or max_refs < 1:
        raise UserError(f"--temperature must be positive numbers and --max-refs at least 1, not "
                        f"{list(temperatures)} and {max_refs}")
    if not (0 <= critic_runs <= MAX_CRITIC_RUNS and 1 <= drafts <= MAX_DRAFTS and 1 <= num <= MAX_MELODIES
            and 0 <= melodies <= MAX_MELODIES):
        raise UserError(f"--critic-runs must lie in 0..{MAX_CRITIC_RUNS}, --drafts in 1..{MAX_DRAFTS}, --num in "
                        f"1..{MAX_MELODIES} and --melodies in 0..{MAX_MELODIES}, not {critic_runs}, {drafts}, {num} "
                        f"and {melodies}")
    ds = load_dataset(data_dir)
    tok = ds.tokenizer
    if not any(os.path.exists(os.path.join(run_dir, which)) for _, which in MODELS):
        raise UserError(f"{run_dir}: no {MLE}, {BEST} or {LAST}; train this run first")
    report = progress or (lambda stage: None)
    models = run_models(run_dir, device, tok)
    listening = listening_rows(run_dir, ds, melodies, max(critic_runs, 2), seed, device, markov_order, calibrate,
                               report, models) if melodies and tok.steps_per_bar else None
    ref = _Reference(ds, max_refs, np.random.default_rng(seed), critic_runs)
    real_bars, train_bars = (np.array([tok.bars_in(p) for p, v in zip(ds.pieces, ds.piece_is_valid) if v == side])
                             for side in (True, False))
    real_tonic, train_tonic = (float(np.mean([ends_on_tonic(tok.decode_notes(p)) for p, v in zip(ds.pieces, ds.piece_is_valid)
                                              if v == side])) for side in (True, False))
    rows, lengths, done = [], {}, {}
    for label, run, twin in models:
        report(f"{label}: windows" + (f" (the same model as {twin})" if twin else ""))
        if twin:
            model_rows = [{**r, "model": label + r["model"][len(twin):]} for r in done[twin]]
        else:
            model_rows = _model_rows(run, label, ref, ds, temperatures, num, drafts, seed)
        done[label] = model_rows
        rows += model_rows
        if tok.end_token is not None:
            lengths[label] = lengths[twin] if twin else tune_lengths(run, num, seed, real_bars, train_bars)
    report(f"Markov-{markov_order}: windows")
    chain = MarkovChain(markov_order, tok.vocab_size).fit(ds.train.numpy())
    rows.append(ref.row(f"Markov-{markov_order}", 1.0, chain.sample(num, tok.config.seq_len, seed), float("nan"), seed=seed))
    report("real: windows")
    real, real_groups, _ = piece_windows(ds.pieces, ~ds.piece_is_valid, tok)
    pick = np.random.default_rng(seed).permutation(len(real))[:num]
    rows.append(ref.row("real", None, real[pick], float("nan"), real_groups[pick], seed=seed))
    return {"run": run_dir, "data": data_dir, "num": num, "critic_runs": critic_runs, "drafts": drafts, "references": len(ref.refs),
            "listening": listening,
            "valid_windows": len(ref.valid),
            "definitions": DEFINITIONS, "valid_stats_mean": {k: float(v.mean()) for k, v in ref.valid_stats.items()},
            "valid_structure_mean": {k: float(np.nanmean(v)) for k, v in ref.valid_structure.items()},
            "rows": rows, "tune_bars": lengths and {"valid": {**length_summary(real_bars), "tonic": real_tonic}, **lengths,
                                                    "real": length_row(train_bars, 1.0, real_bars, train_tonic)}}


def run_models(run_dir: str, device, tokenizer) -> list[tuple[str, LoadedRun, str | None]]:
    """(label, loaded run, twin) for each of the run's models present (MLE, best, last): twin is the
    label of an earlier one with the same generator weights (best.pt is often the MLE model or the
    last state), whose rows it shares, or None."""
    out, digests = [], {}
    for label, which in MODELS:
        if not os.path.exists(os.path.join(run_dir, which)):
            continue  # a run stopped during pre-training has only last.pt
        run = load_run(run_dir, device, which)
        if run.tokenizer != tokenizer:
            raise UserError(f"{run_dir}: trained with another tokenizer than the dataset")
        digest = hashlib.sha1(b"".join(t.cpu().numpy().tobytes() for t in run.generator.state_dict().values())).digest()
        out.append((label, run, digests.get(digest)))
        digests.setdefault(digest, label)
    return out


def _model_rows(run, label: str, ref: _Reference, ds, temperatures, num: int, drafts: int, seed: int) -> list[dict]:
    """The window rows of one model: one per temperature, each followed by one of windows kept
    from ``drafts`` drafts when ``drafts`` > 1."""
    device = next(run.generator.parameters()).device
    with torch.no_grad():
        valid_nll = float(run.generator.nll(ds.valid.to(device), ds.valid_place.to(device)))
    rows = []
    for temp in temperatures:
        rows.append(ref.row(label, temp, model_windows(run, ref, num, temp, seed), valid_nll, seed=seed))
        if drafts > 1:
            windows = torch.from_numpy(model_windows(run, ref, num * drafts, temp, seed))
            kept = keep_drafts(run, windows, drafts, partial(fresh_windows, run, ref, temp, seed + 1), seed).numpy()
            rows.append(ref.row(f"{label} x{drafts}", temp, kept, valid_nll, seed=seed))
    return rows


def listening_rows(run_dir: str, ds, melodies: int, critic_runs: int, seed: int, device, markov_order: int = 4,
                   calibrate: bool = False, report: Callable[[str], None] = lambda stage: None,
                   models: list[tuple[str, LoadedRun, str | None]] | None = None) -> dict:
    """The listening test of a run: ``melodies`` 8-bar melodies of each model (MLE, best, last)
    drawn as ``generate`` draws them by default (drafts, temperature 1.0, metres as often as the
    training tunes start in them), an order-``markov_order`` Markov chain's, and the training tunes'
    openings (the floor), each judged against the held-out tunes' openings by ``critic_runs``
    critics. With ``calibrate``, known damage too: MLE at temperature 1.4, training tunes with
    their bars shuffled and with every second bar a copy of the first; ``report`` is called with
    each row's name before it is drawn; ``models``: :func:`run_models` of the run, when loaded
    already. -> {rows, readings, ...}."""
    tok = ds.tokenizer
    held_out = openings_of(tok, [p for p, v in zip(ds.pieces, ds.piece_is_valid) if v])
    train_tunes = ds.train_tunes()
    if len(held_out) < 2:
        raise UserError(f"{ds.path}: the listening test needs at least 2 held-out tunes, not {len(held_out)}; "
                        "prepare more pieces or pass --melodies 0")
    rng = np.random.default_rng(seed)
    floor = openings_of(tok, [train_tunes[i] for i in rng.permutation(len(train_tunes))[:melodies]])
    test = ListeningTest(held_out, critic_runs, seed)
    meters = meter_counts(tok, train_tunes, melodies)
    rows = {}
    for label, run, twin in models or run_models(run_dir, device, tok):
        report(f"{label}: listening test" + (f" (the same model as {twin})" if twin else ""))
        if twin:
            rows[label] = {**rows[twin], "model": label}
            continue
        rows[label] = test.judge(label, openings_of(tok, user_melodies(run, meters, DEFAULT_DRAFTS, seed)))
        if calibrate and label == "MLE":
            hot = openings_of(tok, user_melodies(run, meters, DEFAULT_DRAFTS, seed, temperature=1.4))
            rows["MLE at 1.4"] = test.judge("MLE at 1.4", hot)
    report(f"Markov-{markov_order}: listening test")
    chain = MarkovChain(markov_order, tok.vocab_size).fit(ds.train.numpy())
    steps = tok.steps_for(8)
    rows[f"Markov-{markov_order}"] = test.judge(f"Markov-{markov_order}", openings_of(tok, chain.sample(melodies, steps, seed)))
    report("real: listening test")
    rows["real"] = test.judge("real", floor)
    if calibrate:
        rows["shuffled bars"] = test.judge("shuffled bars", [shuffled_bars(o, rng) for o in floor])
        rows["copied bars"] = test.judge("copied bars", [copied_bars(o) for o in floor])
    readings = [reading(rows[a], rows[b]) for a, b in (("best", "MLE"), ("last", "MLE")) if a in rows and b in rows]
    return {"melodies": melodies, "held_out": len(held_out), "drafts": DEFAULT_DRAFTS, "meters": meters,
            "held_out_stats": test.real_stats, "held_out_histograms": test.real_histograms, "rows": list(rows.values()), "readings": readings}


def model_windows(run, ref: _Reference, count: int, temperature: float, seed: int) -> np.ndarray:
    """(count, T) windows the run's generator samples at ``temperature``: with bar lines it places
    them itself, in the metres it picks; from the bar numbers of random validation windows, and
    never ending a tune, as those."""
    device = run.generator.out.weight.device
    gen = torch.Generator(device=device).manual_seed(seed)
    place = None
    if run.generator.context is not None:
        pick = np.random.default_rng(seed).integers(len(ref.valid_place), size=count)
        place = torch.from_numpy(ref.valid_place[pick]).to(device)
    with eval_mode(run.generator), never_drawing(run.generator, ref.tokenizer.end_token):
        return run.generator.sample(count, run.config.seq_len, temperature, generator=gen,
                                    place=place).cpu().numpy()


def fresh_windows(run, ref: _Reference, temperature: float, seed: int, count: int, length: int) -> torch.Tensor:
    """:func:`model_windows` as (count, length) ids: the sampler :func:`keep_drafts` tops G's
    histogram up with (``length`` is T, as the windows judged)."""
    return torch.from_numpy(model_windows(run, ref, count, temperature, seed))[:, :length]


def tune_lengths(run, num: int, seed: int, real_bars: np.ndarray, train_bars: np.ndarray) -> dict:
    """Bars of ``num`` whole tunes the generator samples from its start state at temperature 1.0
    until it writes END (at most MAX_TUNE_BARS bars): their :func:`length_summary` and the overlap
    of their histogram (one bin per bar) with the validation tunes' ``real_bars``. A generator with
    the bars-left feature is asked for lengths drawn from the training tunes' ``train_bars``; the
    row then says which share it ended where asked."""
    tok, device = run.tokenizer, run.generator.out.weight.device
    longest = max(tok.steps_for(1, meter=m) for m in METERS)
    gen = torch.Generator(device=device).manual_seed(seed)
    asked = np.random.default_rng(seed).choice(train_bars, num) if run.generator.context and run.generator.context.bars_left \
        else None
    place = None if asked is None else torch.from_numpy(np.stack([np.zeros(num, np.int64), asked], 1)).to(device)
    with eval_mode(run.generator):
        tunes = run.generator.sample(num, MAX_TUNE_BARS * longest, generator=gen, end_token=tok.end_token,
                                     place=place).cpu().numpy()
    bars = np.array([min(tok.bars_in(t), MAX_TUNE_BARS) for t in tunes])
    tonic = float(np.mean([ends_on_tonic(tok.decode_notes(t)) for t in tunes]))
    row = length_row(bars, float(np.mean((tunes == tok.end_token).any(1))), real_bars, tonic)
    return row if asked is None else {**row, "as_asked": float(np.mean(bars == asked))}


def length_row(bars: np.ndarray, ended: float, real_bars: np.ndarray, tonic: float) -> dict:
    """:func:`length_summary` of tune lengths ``bars``, the share ``ended`` of tunes that ended,
    the overlap of their histogram (one bin per bar) with the validation tunes' ``real_bars``, and
    the share ``tonic`` of tunes whose last note is their key's tonic."""
    top = int(max(bars.max(), real_bars.max()))
    return {**length_summary(bars), "ended": ended, "overlap": histogram_overlap(bars, real_bars, bins=max(top, 1)),
            "tonic": tonic}


def length_summary(bars: np.ndarray) -> dict:
    """Mean, median, 10th and 90th percentile of tune lengths in bars."""
    return {"mean": float(bars.mean()), "median": float(np.median(bars)),
            "p10": float(np.percentile(bars, 10)), "p90": float(np.percentile(bars, 90))}


def listening_report(listening: dict) -> list[str]:
    """The listening test's table and readings as lines."""
    stats = listening["held_out_stats"]
    lines = [f"listening test: {listening['melodies']} melodies of 8 bars per row as generate writes them "
             f"({listening['drafts']} drafts, metres {listening['meters']}), read back from MIDI, against the "
             f"openings of {listening['held_out']} held-out tunes",
             f"{'model':14s} {'critic':>6s} {'+-':>6s} {'melodies':>8s} {'modalDur':>8s} {'phrRep':>6s} {'notes/bar':>9s}",
             f"{'held-out':14s} {'':>6s} {'':>6s} {'':>8s} {stats['modal_duration']:8.3f} {stats['phrase_rep']:6.3f} "
             f"{stats['notes_per_bar']:9.2f}"]
    for r in listening["rows"]:
        lines.append(f"{r['model']:14s} {r['critic']:6.3f} {r['critic_sd']:6.3f} {r['melodies']:8d} "
                     f"{r['modal_duration']:8.3f} {r['phrase_rep']:6.3f} {r['notes_per_bar']:9.2f}")
    return lines + listening["readings"] + [
        "critic: a fresh critic's accuracy telling the row's 4-bar windows from the held-out tunes' (0.5 = it "
        "cannot tell them apart; real: the training tunes' openings, the floor); +-: its spread over critic seeds; "
        "modalDur: share of a melody's notes with its most common duration; phrRep: share of its 4-note pitch "
        "patterns that recur in it", ""]


def format_report(result: dict) -> str:
    spread = (("critic_sd", 6, ".3f"),) if result.get("critic_runs", 1) > 1 else ()
    cols = (("critic", 6, ".3f"), *spread, ("bleu4", 7, ".4f"), ("mse", 7, ".2f"), ("self_bleu4", 8, ".4f"),
            ("valid_nll", 8, ".4f"), ("silent", 6, ".3f"), ("dur_entropy", 6, ".3f"), ("phrase_rep", 6, ".3f"),
            ("pc_dist", 6, ".3f"), ("overlap", 7, ".3f"))
    names = {"critic_sd": "+-", "bleu4": "BLEU-4", "self_bleu4": "selfBLEU", "valid_nll": "validNLL",
             "dur_entropy": "durH", "phrase_rep": "phrRep", "pc_dist": "pcDist"}
    head = f"{'model':8s} {'temp':>5s} " + " ".join(f"{names.get(c, c):>{w}s}" for c, w, _ in cols)
    lines = listening_report(result["listening"]) if result.get("listening") else []
    lines += [f"evaluate {result['run']} on {result['data']}: {result['num']} samples per row, "
              f"{result['references']} reference windows, {result['valid_windows']} validation windows", head]

    def temp(r):
        return "-" if r["temperature"] is None else f"{r['temperature']:.2f}"

    for r in result["rows"]:
        lines.append(f"{r['model']:8s} {temp(r):>5s} " + " ".join(f"{r[c]:{w}{f}}" for c, w, f in cols))
    lines.append("")
    stat_names = list(result["valid_stats_mean"])
    lines.append("music statistics (means; overlap with validation in brackets):")
    lines.append(f"{'':14s}" + "".join(f"{n[:12]:>14s}" for n in stat_names))
    lines.append(f"{'validation':14s}" + "".join(f"{result['valid_stats_mean'][n]:14.3f}" for n in stat_names))
    for r in result["rows"]:
        label = f"{r['model']} {temp(r)}"
        lines.append(f"{label:14s}" + "".join(f"{r['stats_mean'][n]:8.3f} ({r['stats_overlap'][n]:.2f})" for n in stat_names))
    if result["valid_structure_mean"]:
        names = list(result["valid_structure_mean"])
        lines.append("")
        lines.append("structure (means; overlap with validation in brackets; melodies laid out in 4/4 bars from step 0):")
        lines.append(f"{'':14s}" + "".join(f"{n[:14]:>16s}" for n in names))
        lines.append(f"{'validation':14s}" + "".join(f"{result['valid_structure_mean'][n]:16.3f}" for n in names))
        for r in result["rows"]:
            label = f"{r['model']} {temp(r)}"
            lines.append(f"{label:14s}" + "".join(f"{r['structure_mean'][n]:9.3f} ({r['structure_overlap'][n]:.2f})"
                                                  for n in names))
    if result.get("tune_bars"):
        lines.append("")
        lines.append("tune length in bars (whole tunes sampled until END, real: the training tunes; "
                     "overlap with validation in brackets):")
        for label, v in result["tune_bars"].items():
            extra = f"  ended {v['ended']:.2f} ({v['overlap']:.2f})" if "overlap" in v else ""
            extra += f"  as asked {v['as_asked']:.2f}" if "as_asked" in v else ""
            extra += f"  on the tonic {v['tonic']:.2f}" if "tonic" in v else ""
            lines.append(f"{label:14s} mean {v['mean']:5.1f}  median {v['median']:4.0f}  "
                         f"10-90% {v['p10']:.0f}-{v['p90']:.0f}{extra}")
    lines.append("")
    lines += [f"{k}: {v}" for k, v in result["definitions"].items()]
    return "\n".join(lines)
