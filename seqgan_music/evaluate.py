"""``seqgan-music evaluate``: the run's MLE checkpoint and its SeqGAN checkpoint side by side.

For each model and sampling temperature: BLEU-4 against the training windows (the paper's music
metric), MSE (defined in :func:`seqgan_music.metrics.pitch_mse`), self-BLEU (diversity), NLL of
the validation windows, and music statistics of generated vs validation melodies with the
overlap of their distributions.
"""

from __future__ import annotations

import os
import time

import numpy as np
import torch

from seqgan_music.checkpoint import LAST, MLE
from seqgan_music.dataset import load_dataset
from seqgan_music.errors import UserError
from seqgan_music.generate import generate_tokens, load_run
from seqgan_music.metrics import STAT_NAMES, bleu, histogram_overlap, music_stats, pitch_mse, self_bleu

DEFINITIONS = {
    "bleu4": "mean sentence BLEU-4 of each generated window against all training windows (uniform weights, no smoothing)",
    "mse": "mean over generated windows of the mean squared sounding-pitch difference (semitones^2) to the nearest training window",
    "self_bleu4": "BLEU-4 of 200 generated windows against the other generated ones (lower = more diverse)",
    "valid_nll": "mean per-token NLL (nats) of the validation windows under the generator",
    "overlap": "mean over the music statistics of the overlap of generated vs validation histograms (1 = same distribution)",
}


def stats_table(tokenizer, windows: np.ndarray) -> dict[str, np.ndarray]:
    """Music statistics of (N, T) windows -> {name: (N,) values}."""
    rows = [music_stats(tokenizer.decode_notes(w), w, len(w)) for w in windows]
    return {name: np.array([r[name] for r in rows]) for name in STAT_NAMES}


def evaluate_run(run_dir: str, data_dir: str, num: int = 1000, temperatures=(0.8, 0.9, 1.0, 1.1),
                 max_refs: int = 10000, seed: int = 0, device: str | torch.device = "cpu") -> dict:
    """Metrics for the MLE and SeqGAN checkpoints of ``run_dir`` on the dataset ``data_dir``."""
    ds = load_dataset(data_dir)
    tok = ds.tokenizer
    rng = np.random.default_rng(seed)
    train = ds.train.numpy()
    refs = train[rng.choice(len(train), min(max_refs, len(train)), replace=False)]
    valid = ds.valid.numpy() if len(ds.valid) else refs[: min(1000, len(refs))]
    valid_stats = stats_table(tok, valid)
    ref_pitch = tok.sounding_pitch(refs)
    models = [("MLE", MLE), ("SeqGAN", LAST)]
    if not os.path.exists(os.path.join(run_dir, MLE)):
        raise UserError(f"{run_dir}: no {MLE} (the end of MLE pre-training); train this run first")
    rows = []
    for label, which in models:
        run = load_run(run_dir, device, which)
        if run.tokenizer != tok:
            raise UserError(f"{run_dir}: trained with another tokenizer than {data_dir}")
        T = run.config.discriminator.seq_len
        with torch.no_grad():
            valid_nll = float(run.generator.nll(torch.from_numpy(valid).to(device))) if len(valid) else float("nan")
        for temp in temperatures:
            start = time.perf_counter()
            samples = generate_tokens(run, num, T, temp, seed=seed).numpy()
            gen_stats = stats_table(tok, samples)
            overlaps = {k: histogram_overlap(gen_stats[k], valid_stats[k]) for k in STAT_NAMES}
            rows.append({
                "model": label, "temperature": temp, "bleu4": float(bleu(samples, refs, 4, tok.vocab_size).mean()),
                "mse": pitch_mse(tok.sounding_pitch(samples), ref_pitch), "self_bleu4": self_bleu(samples),
                "valid_nll": valid_nll, "overlap": float(np.mean(list(overlaps.values()))),
                "stats_mean": {k: float(v.mean()) for k, v in gen_stats.items()}, "stats_overlap": overlaps,
                "seconds": time.perf_counter() - start,
            })
    return {"run": run_dir, "data": data_dir, "num": num, "references": len(refs), "definitions": DEFINITIONS,
            "valid_stats_mean": {k: float(v.mean()) for k, v in valid_stats.items()}, "rows": rows}


def format_report(result: dict) -> str:
    head = f"{'model':7s} {'temp':>5s} {'BLEU-4':>7s} {'MSE':>8s} {'selfBLEU':>8s} {'validNLL':>8s} {'overlap':>7s}"
    lines = [f"evaluate {result['run']} on {result['data']}: {result['num']} samples per row, "
             f"{result['references']} reference windows", head]
    for r in result["rows"]:
        lines.append(f"{r['model']:7s} {r['temperature']:5.2f} {r['bleu4']:7.4f} {r['mse']:8.2f} {r['self_bleu4']:8.4f} "
                     f"{r['valid_nll']:8.4f} {r['overlap']:7.3f}")
    lines.append("")
    names = list(result["valid_stats_mean"])
    lines.append("music statistics (means; overlap with validation in brackets):")
    lines.append(f"{'':13s}" + "".join(f"{n[:12]:>14s}" for n in names))
    lines.append(f"{'validation':13s}" + "".join(f"{result['valid_stats_mean'][n]:14.3f}" for n in names))
    for r in result["rows"]:
        label = f"{r['model']} {r['temperature']:.2f}"
        lines.append(f"{label:13s}" + "".join(f"{r['stats_mean'][n]:8.3f} ({r['stats_overlap'][n]:.2f})" for n in names))
    lines.append("")
    lines += [f"{k}: {v}" for k, v in result["definitions"].items()]
    return "\n".join(lines)
