"""``seqgan-music bench rollout``: the batched reward computation against the sequential reference.

Both run the same algorithm on the same models in one process: seconds per reward computation,
their ratio, and the FLOP/s that generator rollout and discriminator scoring reach against a
float32 matmul peak measured in the same run. The batched side uses the fused C kernels on a
CPU when they build; its PyTorch path is then timed beside it.
"""

from __future__ import annotations

import time

import torch

from seqgan_music import native
from seqgan_music.config import PRESETS, DiscriminatorConfig, GeneratorConfig, make_run_config, paper_filter_table
from seqgan_music.models import Discriminator, Generator
from seqgan_music.rollout import batched_completions, rollout_rewards, score, score_completions
from seqgan_music.tokenizer import window_config

CPU_G, CPU_D, TUNE_G = PRESETS["cpu"]["generator"], PRESETS["cpu"]["discriminator"], PRESETS["tune"]["generator"]
CONFIGS = {  # the models each rollout benchmark times (sizes read from the presets they stand for)
    # the paper's synthetic experiment: B 64, T 20, V 5000, E = H = 32, N 16, the full D filter table
    "oracle": dict(batch=64, seq_len=20, vocab=5000, embed=32, hidden=32, rollouts=16, d_embed=64, table="paper"),
    # the cpu preset's melody model (V 39: C3..C6 + REST/HOLD, T 32) at the paper's B and N
    "music": dict(batch=64, seq_len=32, vocab=39, embed=CPU_G["embed_dim"], hidden=CPU_G["hidden_dim"], rollouts=16,
                  d_embed=CPU_D["embed_dim"], table="cpu"),
    # the paper's music experiment as scripts/reproduce_nottingham.sh trains it: paper encoding
    # (88 keys + silence), T 32, the paper's G and D sizes
    "nottingham": dict(batch=64, seq_len=32, vocab=89, embed=32, hidden=32, rollouts=16, d_embed=64, table="paper"),
    # whole strains: the music config at 8 bars of 4/4 (T 128), the length the whole-tune work needs
    "tune": dict(batch=64, seq_len=128, vocab=39, embed=CPU_G["embed_dim"], hidden=CPU_G["hidden_dim"], rollouts=16,
                 d_embed=CPU_D["embed_dim"], table="cpu"),
    # the tune preset's model on the bars encoding: 8 bars of 4/4 with bar lines (T 136, V 52 with
    # 13 BAR tokens from id 39), G with the bar features (position, bar number, bars left, lookback
    # 1/2/4/8 bars with copy runs) and the copy path
    "bars": dict(batch=64, seq_len=136, vocab=52, embed=TUNE_G["embed_dim"], hidden=TUNE_G["hidden_dim"], rollouts=16,
                 d_embed=CPU_D["embed_dim"], table="cpu", bar_tokens=list(range(39, 52)),
                 lookback=TUNE_G["lookback_bars"], copy=TUNE_G["copy_bars"], bars_left=True,
                 copy_runs=TUNE_G["copy_runs"]),
}


def build_models(spec: dict, device: torch.device) -> tuple[Generator, Discriminator]:
    torch.manual_seed(0)
    gen = Generator(GeneratorConfig(vocab_size=spec["vocab"], embed_dim=spec["embed"], hidden_dim=spec["hidden"],
                                    bar_tokens=spec.get("bar_tokens", []), lookback_bars=spec.get("lookback", []),
                                    copy_bars=spec.get("copy", False), bars_left=spec.get("bars_left", False),
                                    copy_runs=spec.get("copy_runs", False)))
    if spec["table"] == "paper":
        widths, nums = paper_filter_table(spec["seq_len"])
        dcfg = DiscriminatorConfig(vocab_size=spec["vocab"], seq_len=spec["seq_len"], embed_dim=spec["d_embed"],
                                   filter_widths=widths, num_filters=nums)
    else:
        dcfg = make_run_config("cpu", spec["vocab"], spec["seq_len"]).discriminator
    return gen.to(device).eval(), Discriminator(dcfg).to(device)


def rollout_flops(spec: dict) -> float:
    """Generator FLOPs of one batched reward computation as the CPU kernels do it: output layer and
    recurrence per row-step, the joining rows' first step once per sample (not per rollout), the
    last step without the recurrence. (The PyTorch path multiplies the joining rows' recurrent
    gates in full: about 6 % more.)"""
    B, T, N, V, H = spec["batch"], spec["seq_len"], spec["rollouts"], spec["vocab"], spec["hidden"]
    full_rows = sum((j - 1) * N * B + B for j in range(1, T - 1))
    last_rows = (T - 2) * N * B + B
    return full_rows * (2 * H * V + 2 * H * 4 * H) + last_rows * 2 * H * V


def disc_flops_per_sequence(disc: Discriminator) -> float:
    cfg = disc.cfg
    conv = sum(2 * cfg.embed_dim * w * n * (cfg.seq_len - w + 1) for w, n in zip(cfg.filter_widths, cfg.num_filters))
    feats = sum(cfg.num_filters)
    return conv + 2 * 2 * feats * feats + 2 * feats * 2


def matmul_peak(device: torch.device, n: int = 2048, reps: int = 8) -> float:
    """Best float32 FLOP/s of single n x n matmuls (the best of several, as a peak should be)."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    a @ b
    best = float("inf")
    for _ in range(reps):
        _sync(device)
        start = time.perf_counter()
        a @ b
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn, reps: int, device: torch.device, warm_up: bool = True) -> float:
    """Median seconds of ``reps`` calls (after one warm-up call)."""
    if warm_up:
        fn()
    times = []
    for _ in range(reps):
        _sync(device)
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def run_bench(config: str, device: torch.device, reps: int = 3, sequential: bool = True) -> dict:
    """Measure one configuration; returns a dict of figures (seconds, ratios, GFLOP/s)."""
    spec = CONFIGS[config]
    gen, disc = build_models(spec, device)
    rng = torch.Generator(device=device).manual_seed(0)
    samples = gen.sample(spec["batch"], spec["seq_len"], generator=rng)
    N = spec["rollouts"]
    peak = matmul_peak(device)
    batched_s = _timed(lambda: rollout_rewards(samples, gen, disc, N, generator=rng), reps, device)
    complete_s = _timed(lambda: batched_completions(samples, gen, N, rng), reps, device)
    comps = batched_completions(samples, gen, N, rng)
    shared_s = _timed(lambda: score_completions(disc, samples, comps), reps, device)
    dense_s = _timed(lambda: score(disc, comps), reps, device)
    d_flops = disc_flops_per_sequence(disc) * comps[..., 0].numel()
    kernels = native.available(device, spec["vocab"])
    result = {
        "config": config, "device": str(device), **spec,
        "engine": "native C kernels" if kernels else "PyTorch ops",
        "batched_s": batched_s, "rollout_sampling_s": complete_s, "d_shared_s": shared_s, "d_dense_s": dense_s,
        "matmul_peak_gflops": peak / 1e9,
        "rollout_gflops": rollout_flops(spec) / complete_s / 1e9,
        "d_dense_gflops": d_flops / dense_s / 1e9,
        "d_shared_dense_equivalent_gflops": d_flops / shared_s / 1e9,
        "d_mflop_per_sequence": disc_flops_per_sequence(disc) / 1e6,
    }
    if kernels:
        with native.switched_off():
            result["batched_pytorch_ops_s"] = _timed(
                lambda: rollout_rewards(samples, gen, disc, N, generator=rng), reps, device)
    result["rollout_fraction_of_peak"] = result["rollout_gflops"] / result["matmul_peak_gflops"]
    result["d_dense_fraction_of_peak"] = result["d_dense_gflops"] / result["matmul_peak_gflops"]
    if sequential:
        result.update(_side_by_side(lambda: rollout_rewards(samples, gen, disc, N, generator=rng),
                                    lambda: rollout_rewards(samples, gen, disc, N, generator=rng, sequential=True),
                                    reps, device))
    return result


def _side_by_side(batched, sequential, pairs: int, device: torch.device) -> dict:
    """Speedup of ``batched`` over ``sequential`` as the median of ``pairs`` ratios, each of one
    sequential run and the median of three batched runs just before it, so that a slow spell of
    a shared machine slows both sides of a ratio. Also the median sequential seconds and the range."""
    sequential()
    ratios, seconds = [], []
    for _ in range(pairs):
        fast = _timed(batched, 3, device, warm_up=False)
        seconds.append(_timed(sequential, 1, device, warm_up=False))
        ratios.append(seconds[-1] / fast)
    ratios.sort()
    return {"sequential_s": sorted(seconds)[len(seconds) // 2], "speedup": ratios[len(ratios) // 2],
            "speedup_min": ratios[0], "speedup_max": ratios[-1], "speedup_pairs": pairs}


def format_result(r: dict) -> str:
    lines = [
        f"bench rollout --config {r['config']} on {r['device']}: B={r['batch']} T={r['seq_len']} V={r['vocab']} "
        f"E={r['embed']} H={r['hidden']} N={r['rollouts']}, D {r['d_mflop_per_sequence']:.2f} MFLOP/sequence",
        f"  batched reward computation   {r['batched_s']:.3f} s  ({r['engine']})",
    ]
    if "batched_pytorch_ops_s" in r:
        lines.append(f"  the same, PyTorch ops only    {r['batched_pytorch_ops_s']:.3f} s   kernels "
                     f"{r['batched_pytorch_ops_s'] / r['batched_s']:.1f}x faster")
    if "sequential_s" in r:
        lines.append(f"  sequential reference         {r['sequential_s']:.3f} s   speedup {r['speedup']:.1f}x "
                     f"(median of {r['speedup_pairs']} side-by-side pairs, {r['speedup_min']:.1f}-{r['speedup_max']:.1f}x)")
    lines += [
        f"  matmul peak (fp32)           {r['matmul_peak_gflops']:.1f} GFLOP/s",
        f"  G rollout sampling           {r['rollout_sampling_s']:.3f} s  {r['rollout_gflops']:.1f} GFLOP/s "
        f"({100 * r['rollout_fraction_of_peak']:.0f}% of peak)",
        f"  D scoring, shared prefixes   {r['d_shared_s']:.3f} s  (dense-equivalent "
        f"{r['d_shared_dense_equivalent_gflops']:.1f} GFLOP/s: the CNN work it skips counted as done)",
        f"  D scoring, dense (reference) {r['d_dense_s']:.3f} s  {r['d_dense_gflops']:.1f} GFLOP/s "
        f"({100 * r['d_dense_fraction_of_peak']:.0f}% of peak)",
    ]
    return "\n".join(lines)


def first_melody(paths: list[str], work_dir: str, preset: str = "demo", timeout: float = 600.0) -> dict:
    """The app's path from uploaded files to the first generated melody: prepare the files as
    uploads with the app's default tokenizer, start a background TrainingJob, wait for its first
    sample. Seconds for each part."""
    import os

    from seqgan_music.dataset import load_dataset, prepare
    from seqgan_music.jobs import TrainingJob

    uploads = []
    for path in paths:
        with open(path, "rb") as fh:
            uploads.append((os.path.basename(path), fh.read()))
    start = time.perf_counter()
    data_dir = os.path.join(work_dir, "dataset")
    report = prepare([], data_dir, window_config(), uploads=uploads, cache_dir=None)  # the app's defaults
    prepared = time.perf_counter() - start
    ds = load_dataset(data_dir)
    cfg = make_run_config(preset, ds.tokenizer.vocab_size, ds.seq_len, ds.tokenizer.start_token, ds.tokenizer.bar_tokens)
    job = TrainingJob(data_dir, os.path.join(work_dir, "run"), cfg, torch.device("cpu"))
    job.start()
    while job.snapshot().first_sample_at is None and job.alive() and time.perf_counter() - start < timeout:
        time.sleep(0.05)
    state = job.snapshot()
    job.stop()
    job.join()
    if state.first_sample_at is None:
        raise RuntimeError(f"no sample within {timeout} s (status {state.status}: {state.error})")
    return {"files": len(paths), "pieces": report.pieces, "train_windows": report.train_windows, "preset": preset,
            "prepare_s": prepared, "first_melody_after_train_s": state.first_sample_at,
            "first_melody_s": prepared + state.first_sample_at}


def shared_machine(data_dir: str, work_dir: str, preset: str = "demo", overrides: tuple[str, ...] = ()) -> dict:
    """One training alone, then two side by side, each started as the app starts it (a background
    :class:`~seqgan_music.jobs.TrainingJob` in this process, sharing the cores): seconds of each
    and the ratio of the slower pair member to the one alone."""
    import os

    from seqgan_music.config import apply_overrides
    from seqgan_music.dataset import load_dataset
    from seqgan_music.jobs import TrainingJob

    ds = load_dataset(data_dir)
    tok = ds.tokenizer
    cfg = apply_overrides(make_run_config(preset, tok.vocab_size, ds.seq_len, tok.start_token, tok.bar_tokens),
                          list(overrides))

    def train(names: list[str]) -> list[float]:
        jobs = [TrainingJob(data_dir, os.path.join(work_dir, name), cfg, torch.device("cpu")) for name in names]
        start = time.perf_counter()
        for job in jobs:
            job.start()
        took = [0.0] * len(jobs)
        while not all(took):
            for i, job in enumerate(jobs):
                if not took[i] and not job.alive():
                    took[i] = time.perf_counter() - start
            time.sleep(0.05)
        failed = [j.snapshot() for j in jobs if j.snapshot().status != "done"]
        if failed:
            raise RuntimeError(f"a training ended {failed[0].status}: {failed[0].error}")
        return took

    alone = train(["alone"])[0]
    pair = train(["left", "right"])
    return {"preset": preset, "overrides": list(overrides), "train_windows": len(ds.train), "alone_s": alone,
            "side_by_side_s": pair, "ratio": max(pair) / alone}
