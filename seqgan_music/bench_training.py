"""``seqgan-music bench train-time``: how long a preset trains on each collection, and how honest
its clock is.

Each collection is probed (:func:`clock.probe`) and then trained from scratch in this process (a
temporary run folder), with a :class:`~seqgan_music.clock.Clock` fed as the app feeds it. Per run:
the seconds of the training, the probe's estimate beside them, and the clock's largest error on
the time left once a tenth of the run has passed (while at least a twentieth of it remains: the
last seconds of a run make any relative error large). ``against`` trains a second setting of the
same preset on each collection, side by side in the same table, with the ratio of the times.
"""

from __future__ import annotations

import tempfile
import time

import torch

from seqgan_music.clock import D_SKIPPED, Clock, probe
from seqgan_music.config import apply_overrides, make_run_config
from seqgan_music.dataset import PreparedDataset, load_dataset
from seqgan_music.trainer import Trainer

CLOCK_FROM = 0.10  # the clock is judged once this share of the run has passed ...
CLOCK_UNTIL = 0.05  # ... while at least this share of it remains


def time_training(ds: PreparedDataset, preset: str, overrides: list[str], device: torch.device) -> dict:
    """Probe, then train ``preset`` with ``overrides`` on ``ds``: the seconds, the estimate and
    the clock's largest relative error on the time left."""
    tok = ds.tokenizer
    cfg = apply_overrides(make_run_config(preset, tok.vocab_size, ds.seq_len, tok.start_token, tok.bar_tokens),
                          overrides)
    probed = time.perf_counter()
    estimate = probe(cfg, ds, device)
    probe_s = time.perf_counter() - probed
    clock = Clock.for_run(cfg, len(ds.train), estimate)
    predicted = clock.total()
    forecasts: list[tuple[float, float]] = []  # (seconds since the start, time left the clock said then)
    phases: list[str] = []  # of the units run
    with tempfile.TemporaryDirectory(prefix="seqgan-bench-") as folder:
        start = time.time()
        since = [start]

        def observe(event: dict) -> None:
            if event["event"] == "metrics":
                clock.observe(event, event["time"] - since[0])
                since[0] = event["time"]
                forecasts.append((event["time"] - start, clock.left(event["next_unit"])))
                phases.append(event["phase"])

        trainer = Trainer(cfg, ds.train, ds.valid, folder, device, tok, callbacks=[observe],
                          places=(ds.train_place, ds.valid_place))
        since[0] = time.time()
        trainer.run()
        total = time.time() - start
    errors = [abs(left - (total - at)) / (total - at) for at, left in forecasts
              if at >= CLOCK_FROM * total and total - at >= CLOCK_UNTIL * total]
    with_d, without_d = clock.measured.get("adversarial", []), clock.measured.get(D_SKIPPED, [])
    return {"seconds": total, "probe_s": probe_s, "estimate_s": predicted, "clock_error": max(errors, default=0.0),
            "mle_units": phases.count("mle"), "best": trainer.best.description(),
            "round_probed_s": estimate.unit_seconds["adversarial"], "round_s": sum(with_d) / max(len(with_d), 1),
            "rounds_without_d": len(without_d), "round_without_d_s": sum(without_d) / max(len(without_d), 1)}


def train_time(data_dirs: list[str], preset: str, overrides: list[str], against: list[str] | None,
               device: torch.device) -> list[dict]:
    """One row per collection (and setting): its windows and :func:`time_training`'s figures."""
    rows = []
    for data_dir in data_dirs:
        ds = load_dataset(data_dir)
        for label, sets in [("now", overrides)] + ([("against", overrides + against)] if against else []):
            rows.append({"data": data_dir, "windows": len(ds.train), "setting": label,
                         **time_training(ds, preset, sets, device)})
    return rows


def format_rows(rows: list[dict], preset: str, against: list[str] | None) -> str:
    lines = [f"bench train-time --preset {preset}" + (f" (against: {' '.join(against)})" if against else ""),
             f"{'collection':28s} {'windows':>8s} {'setting':8s} {'seconds':>8s} {'probe est.':>10s} "
             f"{'clock err':>9s} {'MLE units':>9s} {'round: probed':>13s} {'run':>5s} {'without D (rounds)':>18s}"
             "  best model"]
    for r in rows:
        lines.append(f"{r['data'][-28:]:28s} {r['windows']:8d} {r['setting']:8s} {r['seconds']:8.1f} "
                     f"{r['estimate_s']:10.1f} {100 * r['clock_error']:8.0f}% {r['mle_units']:9d} "
                     f"{r['round_probed_s']:13.2f} {r['round_s']:5.2f} {r['round_without_d_s']:13.2f} ({r['rounds_without_d']:2d})"
                     f"  {r['best']}")
    if against:
        for now, then in zip(rows[::2], rows[1::2]):
            lines.append(f"{now['data'][-28:]}: {then['seconds'] / now['seconds']:.2f}x faster than against")
    return "\n".join(lines)
