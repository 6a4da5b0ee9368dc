"""The ``seqgan-music`` command line. Progress bars live here; the library never prints.

Exit codes: 0 ok, 2 bad input or usage (one clear line on stderr), 1 internal error.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings

from seqgan_music.config import DEFAULT_DRAFTS, ENCODING_NAMES, PRESETS
from seqgan_music.errors import UserError, printable
from seqgan_music.fileio import check_writable_dir

# the few figures the progress bar shows after each unit of a phase (metrics.jsonl has them all)
BAR_METRICS = {"mle": ("valid_nll",), "d_pretrain": ("d_acc_real", "d_acc_fake"),
               "adversarial": ("mean_reward", "d_real_unseen")}


class _TrainingProgress:
    """Trainer events -> one tqdm bar over the run's units, named after the phase under way, with
    the latest metrics and the time left of the whole run (:class:`Clock`)."""

    def __init__(self, clock, units_done: int, units: int):
        from tqdm import tqdm

        self.clock, self.since = clock, time.time()
        self.bar = tqdm(total=units, initial=units_done, unit="unit", leave=False, file=sys.stderr, disable=None)

    def __call__(self, event: dict) -> None:
        if event["event"] == "progress":
            self.bar.set_description(event["phase"], refresh=False)
        elif event["event"] == "metrics":
            self.clock.observe(event, event["time"] - self.since)
            self.since = event["time"]
            self.bar.update(event["next_unit"] - self.bar.n)
            shown = {k: round(event[k], 3) for k in BAR_METRICS[event["phase"]] if isinstance(event.get(k), float)}
            self.bar.set_postfix(shown | {"left": f"{self.clock.left(event['next_unit']):.0f}s"}, refresh=True)
        elif event["event"] == "notice":
            print(f"\n{event['message']}", file=sys.stderr)


def _run_with_progress(trainer, resume: bool) -> tuple[str, float]:
    """Run ``trainer`` (from its last checkpoint with ``resume``) under one progress bar on the
    main process. -> (its status, seconds)."""
    from seqgan_music.clock import Clock

    if resume and os.path.exists(trainer.last_path):
        trainer.load_state(trainer.last_path)
    progress = _TrainingProgress(Clock.for_run(trainer.cfg, len(trainer.windows.train)), trainer.units_done,
                                 len(trainer.units)) if trainer.dist.is_main else None
    trainer.callbacks.extend([progress] if progress else [])
    start = time.perf_counter()
    try:
        status = trainer.run()
    finally:
        if progress is not None:
            progress.bar.close()
    return status, time.perf_counter() - start


KEPT_MLE = "the adversarial phase did not improve on the MLE model: kept the MLE model as best.pt"

# ---------------------------------------------------------------- prepare


def cmd_prepare(args: argparse.Namespace) -> int:
    from seqgan_music.sources import list_builtin

    if args.list:
        for name, desc in list_builtin():
            print(f"{name:18s} {desc}")
        return 0
    if not args.sources or not args.out:
        raise UserError("prepare needs SOURCE... and --out DIR (or --list)")
    from tqdm import tqdm

    from seqgan_music.config import TokenizerConfig
    from seqgan_music.dataset import prepare
    from seqgan_music.sources import Limits
    from seqgan_music.tokenizer import window_config

    if args.report:  # before the work, not after it
        if os.path.isdir(args.report):
            raise UserError(f"--report {args.report}: is a folder; give a file name")
        check_writable_dir(os.path.dirname(os.path.abspath(args.report)))
    seq_len = args.seq_len or (32 if args.encoding == "paper" else window_config(args.encoding).seq_len)
    cfg = TokenizerConfig(
        encoding=args.encoding, seq_len=seq_len, hop=args.hop or max(1, seq_len // 2), steps_per_quarter=args.steps_per_quarter, track=args.track,
        skyline_all=args.skyline_all, transpose=args.transpose, tune_end=args.encoding == "bars",
        key_to_c=(args.keys or ("c" if args.encoding == "bars" else "keep")) == "c", repeat_marks=args.repeat_marks or [],
    )
    bar = tqdm(desc="reading", unit="file", file=sys.stderr, leave=False, disable=None, mininterval=0.5)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    limits = Limits(max_file_bytes=int(args.max_file_mb * 1e6), max_files=args.max_files, max_notes=args.max_notes,
                    max_seconds=args.max_seconds)
    report = prepare(args.sources, args.out, cfg, valid_fraction=args.valid_fraction, seed=args.seed, limits=limits,
                     workers=args.workers, progress=progress, cache_dir=None if args.no_cache else "default")
    bar.close()
    for skip in report.skipped[:20]:
        print(printable(f"warning: skipped {skip['source']}: {skip['reason']}"), file=sys.stderr)
    if len(report.skipped) > 20:
        print(f"warning: ... {len(report.skipped) - 20} more skipped (see {args.out}/manifest.json)", file=sys.stderr)
    print(f"{args.out}: {report.pieces} pieces ({report.train_pieces} train, {report.valid_pieces} valid), "
          f"{report.train_windows} train windows, {report.valid_windows} valid windows of {cfg.seq_len} tokens, "
          f"{len(report.skipped)} skipped; {report.parsed_files} files parsed, {report.cached_files} from cache, "
          f"{report.seconds:.1f} s")
    if args.report:
        from dataclasses import asdict

        with open(args.report, "w", encoding="utf-8") as fh:
            json.dump(asdict(report), fh, indent=1)
    return 0


# ---------------------------------------------------------------- train


def cmd_train(args: argparse.Namespace) -> int:
    """Single process, or one rank of ``torchrun --nproc_per_node=K -m seqgan_music train``."""
    from seqgan_music.base_model import describe, starting_generator
    from seqgan_music.checkpoint import LAST, read_checkpoint, saved_run_config
    from seqgan_music.config import apply_overrides, make_run_config
    from seqgan_music.dataset import load_dataset
    from seqgan_music.distributed import barrier, init_from_env
    from seqgan_music.threads import share_cores
    from seqgan_music.trainer import Trainer

    info = init_from_env(args.device)
    share_cores(int(os.environ.get("LOCAL_WORLD_SIZE", "1")))  # torchrun's ranks on this machine share its cores
    ds = load_dataset(args.data_dir)
    check_writable_dir(args.out)
    last = os.path.join(args.out, LAST)
    if os.path.exists(last) and not args.resume:
        raise UserError(f"{args.out}: already holds a run; pass --resume to continue it or choose another --out")
    barrier(info)  # no rank may see rank 0's first checkpoint in the check above
    if args.resume and os.path.exists(last):
        cfg = saved_run_config(read_checkpoint(last), last)
    else:
        cfg = make_run_config(args.preset, ds.tokenizer.vocab_size, ds.seq_len, ds.tokenizer.start_token,
                              ds.tokenizer.bar_tokens)
    cfg = apply_overrides(cfg, args.set)
    if args.estimate:
        return _print_estimate(cfg, ds, info.device)
    trainer = Trainer(cfg, ds.train, ds.valid, args.out, info.device, ds.tokenizer, dist_info=info,
                      places=(ds.train_place, ds.valid_place))
    if args.start_from and not (args.resume and os.path.exists(last)):
        trainer.start_from(starting_generator(args.start_from, cfg, ds.tokenizer))
        if info.is_main:
            print(f"G starts from {describe(args.start_from, cfg)}", file=sys.stderr)
    status, seconds = _run_with_progress(trainer, args.resume)
    if info.is_main:
        ranks = f" x {info.world} processes" if info.enabled else ""
        print(f"{args.out}: training {status} after {trainer.units_done}/{len(trainer.units)} units "
              f"in {seconds:.1f} s on {info.device}{ranks}; checkpoint {last}; "
              f"best model {os.path.join(args.out, 'best.pt')} ({trainer.best.description()})")
        if status == "done" and trainer.best.kept_mle(trainer.units_done):
            print(KEPT_MLE)
    if info.enabled:
        import torch.distributed

        torch.distributed.destroy_process_group()
    return 0


def _print_estimate(cfg, ds, device) -> int:
    """``train --estimate``: time one unit of each phase on this machine and print the run's time."""
    from seqgan_music.clock import Clock, probe

    estimate = probe(cfg, ds, device)
    clock = Clock.for_run(cfg, len(ds.train), estimate)
    cost, probed = clock.unit_seconds(), estimate.unit_seconds
    tc = cfg.train
    print(f"about {clock.total():.0f} s on this machine ({device}): start-up {estimate.startup:.1f} s, "
          f"{clock.expected_mle} of up to {tc.mle_epochs} MLE units of {cost['mle']:.1f} s, "
          f"{tc.d_pretrain_rounds} D rounds of {cost['d_pretrain']:.1f} s, "
          f"{tc.adv_rounds} adversarial rounds of about {cost['adversarial']:.1f} s ({probed['adversarial']:.1f} s "
          f"with D's steps, less without)")
    return 0


# ---------------------------------------------------------------- generate


def cmd_generate(args: argparse.Namespace) -> int:
    from seqgan_music.checkpoint import read_checkpoint
    from seqgan_music.device import resolve_device
    from seqgan_music.drafts import can_judge
    from seqgan_music.generate import FORMATS, load_run, primer_tokens, write_melodies
    from seqgan_music.melody_request import MelodyRequest, melodies_for

    formats = tuple(dict.fromkeys(f.strip() for f in args.formats.split(",")))
    if not formats or not set(formats) <= set(FORMATS):
        raise UserError(f"--formats {args.formats!r}: choose from {', '.join(FORMATS)} (comma-separated)")
    run = load_run(args.run_dir, resolve_device(args.device), args.model)
    check_writable_dir(args.out)
    tokenizer = run.tokenizer
    if tokenizer.steps_per_bar is None and set(formats) - {"mid"}:
        raise UserError(f"{args.run_dir}: MusicXML and ABC need the melody encoding (this run uses the paper encoding)")
    primer = primer_tokens(args.primer, tokenizer) if args.primer else None
    melodies = melodies_for(run, MelodyRequest(
        num=args.num, bars=args.bars, steps=args.steps, qpm=args.qpm, meter=args.meter, key=args.key, primer=primer,
        temperature=args.temperature, top_k=args.top_k, seed=args.seed, drafts=args.drafts,
        end_on_tonic=args.end_on_tonic, model_ends=args.model_ends))
    tokens, steps, meter, primer_steps = melodies.tokens, melodies.steps, melodies.meter, melodies.primer_steps
    if args.drafts > 1 and not can_judge(run):
        print(f"note: {args.run_dir} was trained before drafts were judged (it has no phrase statistics of its "
              "training tunes), so each melody is its first draft", file=sys.stderr)
    paths = write_melodies(tokens, tokenizer, args.out, qpm=args.qpm, program=args.program, formats=formats)
    length = f"{args.bars} new bars" + (f" of {meter}" if meter and tokenizer.bar_tokens else "") + f" ({steps} steps)" \
        if args.bars is not None else f"{steps} new steps"
    print(f"wrote {len(paths)} melodies ({', '.join(formats)}) to {args.out} ({'at most ' * args.model_ends}{length} "
          "each" + (f" after a primer of {primer_steps} steps)" if primer_steps else ")"))
    last = os.path.join(args.run_dir, "last.pt")  # the run's progress, not that of best.pt saved mid-run
    state = read_checkpoint(last) if args.model != "mle" and os.path.isfile(last) else {}
    done, units = int(state.get("progress", 0)), int(state.get("units", 0))
    if done < units:
        print(f"note: {args.run_dir} was trained for {done} of its {units} units only (a stopped run), so this "
              "model is barely trained; resume it with train --resume", file=sys.stderr)
    if args.model_ends:
        bars = sorted(tokenizer.bars_in(row[primer_steps:]) for row in tokens.numpy())
        print(f"the model ended them after {bars[0]} to {bars[-1]} new bars (median {bars[len(bars) // 2]})")
    silent = [os.path.basename(p) for p, row in zip(paths, tokens) if not tokenizer.decode_notes(row[primer_steps:])]
    if silent:
        print(f"warning: {len(silent)} of {len(paths)} melodies have no notes ({', '.join(silent[:5])}"
              f"{', ...' if len(silent) > 5 else ''}); try --model mle or a lower temperature", file=sys.stderr)
    return 0


# ---------------------------------------------------------------- evaluate


def cmd_evaluate(args: argparse.Namespace) -> int:
    from seqgan_music.device import resolve_device
    from seqgan_music.evaluate import evaluate_run, format_report

    result = evaluate_run(args.run_dir, args.data, num=args.num, temperatures=args.temperature or [0.8, 0.9, 1.0, 1.1],
                          max_refs=args.max_refs, seed=args.seed, device=resolve_device(args.device),
                          critic_runs=args.critic_runs, drafts=args.drafts, melodies=args.melodies,
                          calibrate=args.calibrate)
    print(json.dumps(result, indent=1) if args.json else format_report(result))
    return 0


# ---------------------------------------------------------------- oracle


def cmd_oracle(args: argparse.Namespace) -> int:
    import numpy as np

    from seqgan_music.checkpoint import LAST
    from seqgan_music.config import apply_overrides
    from seqgan_music.device import resolve_device
    from seqgan_music.oracle import nll_oracle, oracle_generator, oracle_run_config, read_oracle_params, sample_many
    from seqgan_music.trainer import Trainer

    if os.path.exists(os.path.join(args.out, LAST)) and not args.resume:
        raise UserError(f"{args.out}: already holds a run; pass --resume to continue it or choose another --out")
    check_writable_dir(args.out)
    device = resolve_device(args.device)
    oracle = oracle_generator(read_oracle_params(args.params) if args.params else None, args.seed).to(device)
    train = sample_many(oracle, args.num_train, seed=args.seed)
    cfg = apply_overrides(oracle_run_config(args.preset), args.set)
    eval_samples = args.eval_samples

    def nll(gen):
        gen.eval()
        return nll_oracle(oracle, sample_many(gen, eval_samples, seed=12345))

    trainer = Trainer(cfg, train, train[:0], args.out, device, None, evaluators={"nll_oracle": nll})
    status, seconds = _run_with_progress(trainer, args.resume)
    final = nll(trainer.G)
    print(f"{args.out}: oracle experiment {status} after {trainer.units_done}/{len(trainer.units)} units in "
          f"{seconds:.0f} s; NLL-oracle of G {final:.3f} "
          f"(oracle's own samples {nll_oracle(oracle, train):.3f})")
    if args.samples_out:
        np.save(args.samples_out, sample_many(trainer.G, 10000, seed=args.seed + 1).cpu().numpy().astype(np.int32))
    return 0


# ---------------------------------------------------------------- fuzz


def cmd_fuzz(args: argparse.Namespace) -> int:
    from seqgan_music.fuzz import KINDS, run_fuzz

    kinds = tuple(k.strip() for k in args.kinds.split(",") if k.strip())
    if not kinds or not set(kinds) <= set(KINDS):
        raise UserError(f"--kinds must name some of {', '.join(KINDS)}, not {args.kinds!r}")
    result = run_fuzz(args.cases, args.seed, kinds=kinds)
    print(f"fuzz: {result['cases']} cases (seed {result['seed']}): {result['outcomes']}; "
          f"{len(result['findings'])} findings")
    for finding in result["findings"]:
        print(f"  {finding}")
    return 1 if result["findings"] else 0


# ---------------------------------------------------------------- bench


def cmd_bench(args: argparse.Namespace) -> int:
    from seqgan_music.bench import format_result, run_bench
    from seqgan_music.device import resolve_device

    result = run_bench(args.config, resolve_device(args.device), reps=args.reps, sequential=not args.no_sequential)
    print(json.dumps(result, indent=1) if args.json else format_result(result))
    return 0


def cmd_bench_first_melody(args: argparse.Namespace) -> int:
    import tempfile

    from seqgan_music.bench import first_melody

    with tempfile.TemporaryDirectory() as work:
        r = first_melody(args.files, work, args.preset)
    print(f"bench first-melody: {r['files']} files -> {r['pieces']} pieces, {r['train_windows']} windows; "
          f"prepare {r['prepare_s']:.1f} s, first generated melody {r['first_melody_after_train_s']:.1f} s after "
          f"Train ({r['preset']} preset); {r['first_melody_s']:.1f} s from upload to first melody")
    return 0


def cmd_bench_shared_machine(args: argparse.Namespace) -> int:
    import tempfile

    from seqgan_music.bench import shared_machine

    with tempfile.TemporaryDirectory() as work:
        r = shared_machine(args.data_dir, work, args.preset, tuple(args.set))
    print(f"bench shared-machine ({r['preset']} preset{', ' + ' '.join(r['overrides']) if r['overrides'] else ''}, "
          f"{r['train_windows']} windows): alone {r['alone_s']:.1f} s; two side by side "
          f"{' and '.join(f'{t:.1f}' for t in r['side_by_side_s'])} s; ratio {r['ratio']:.2f}x")
    return 0


def cmd_bench_train_time(args: argparse.Namespace) -> int:
    from seqgan_music.bench_training import format_rows, train_time
    from seqgan_music.device import resolve_device

    rows = train_time(args.data_dirs, args.preset, args.set, args.against, resolve_device(args.device))
    print(format_rows(rows, args.preset, args.against))
    return 0


def cmd_bench_hostile(args: argparse.Namespace) -> int:
    import tempfile

    from seqgan_music.hostile_inputs import CASES, MAX_MB, MAX_SECONDS, format_row, run_case

    names = [name for name in CASES if not args.only or any(word.lower() in name.lower() for word in args.only)]
    if not names:
        raise UserError(f"--only {' '.join(args.only)}: no case's name contains these words; the cases: "
                        + "; ".join(CASES))
    rows = []
    with tempfile.TemporaryDirectory() as work:
        for name in names:
            rows.append(run_case(name, work))
            print(format_row(rows[-1]), flush=True)
    passed = sum(r["ok"] for r in rows)
    print(f"bench hostile: {passed}/{len(rows)} files refused or read within {MAX_SECONDS:.0f} s and {MAX_MB:.0f} MB, "
          "the good file beside each prepared")
    return 0 if passed == len(rows) else 1


# ---------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="seqgan-music", description="Train SeqGAN on melodies and generate new ones.")
    sub = p.add_subparsers(dest="command", required=True)
    _add_prepare(sub)
    _add_train(sub)
    _add_generate(sub)
    _add_evaluate(sub)
    _add_oracle(sub)
    _add_fuzz(sub)
    _add_bench(sub)
    return p


def _add_prepare(sub) -> None:
    pp = sub.add_parser("prepare", help="turn MIDI files, folders, zips or builtin:NAME into a dataset folder")
    pp.add_argument("sources", nargs="*", help="files, folders, .zip archives, builtin:essen|oneills|ryans|airds")
    pp.add_argument("--out", help="dataset folder to write")
    pp.add_argument("--list", action="store_true", help="list the built-in collections")
    pp.add_argument("--encoding", choices=ENCODING_NAMES, default="bars",
                    help="bars (the default, as the app): a beat grid with bar lines, the metre and tune ends; "
                         "melody: the beat grid alone; paper: a pitch every 0.4 s, as the SeqGAN paper")
    pp.add_argument("--seq-len", type=int, default=None,
                    help="tokens per window T (default: 4 bars of 4/4 on the beat grid, as the app; 32 for paper)")
    pp.add_argument("--hop", type=int, default=None, help="tokens between windows (default T/2)")
    pp.add_argument("--steps-per-quarter", type=int, default=4)
    pp.add_argument("--track", default=None, help="melody track index or name (default: best melody track)")
    pp.add_argument("--skyline-all", action="store_true", help="skyline over all non-drum tracks")
    pp.add_argument("--transpose", type=int, default=0, help="augment training windows by +-K semitones")
    pp.add_argument("--keys", choices=["c", "keep"], default=None,
                    help="c: move every tune to tonic C (its estimated key; generated tunes go back to the keys "
                         "the tunes came in); keep: leave keys alone (default: c for --encoding bars, else keep)")
    pp.add_argument("--repeat-marks", type=int, nargs="+", metavar="K",
                    help="bars encoding: bar lines that say the bar repeats the bar K back (e.g. 1 2 4), so a "
                         "model decides a tune's form bar by bar (default: none)")
    pp.add_argument("--valid-fraction", type=float, default=0.1)
    pp.add_argument("--seed", type=int, default=0)
    pp.add_argument("--workers", type=int, default=None, help="parsing processes (default: all cores)")
    pp.add_argument("--no-cache", action="store_true", help="ignore and do not fill the parse cache")
    pp.add_argument("--report", help="also write the full report as JSON to this file")
    pp.add_argument("--max-file-mb", type=float, default=20.0, help="skip MIDI files larger than this")
    pp.add_argument("--max-files", type=int, default=100_000, help="refuse sources with more files")
    pp.add_argument("--max-notes", type=int, default=200_000, help="skip files with more note events")
    pp.add_argument("--max-seconds", type=float, default=3600.0, help="skip pieces longer than this")
    pp.set_defaults(func=cmd_prepare)


def _add_train(sub) -> None:
    tp = sub.add_parser("train", help="train SeqGAN on a prepared dataset")
    tp.add_argument("data_dir")
    tp.add_argument("--out", required=True, help="run folder (checkpoints, metrics.jsonl)")
    tp.add_argument("--preset", choices=list(PRESETS), default="cpu")
    tp.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a setting, e.g. --set mle_epochs=5 --set generator.hidden_dim=64")
    tp.add_argument("--resume", action="store_true", help="continue the run in --out")
    tp.add_argument("--from", dest="start_from", metavar="MODEL", default=None,
                    help="start G from a trained model and fine-tune it: 'base' (the folk base model, learnt from "
                         "the built-in collections; presets demo and cpu) or a checkpoint file or run folder "
                         "(default: from scratch)")
    tp.add_argument("--estimate", action="store_true",
                    help="time one unit of each phase on this machine, print how long the run would take, and stop")
    tp.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    tp.set_defaults(func=cmd_train)


def _add_generate(sub) -> None:
    gp = sub.add_parser("generate", help="sample melodies from a run and write .mid (and .musicxml, .abc) files")
    gp.add_argument("run_dir", help="run folder or checkpoint file")
    gp.add_argument("--num", type=int, default=8)
    gp.add_argument("--out", required=True)
    gp.add_argument("--steps", type=int, default=None, help="new tokens per melody (default 4 T)")
    gp.add_argument("--bars", type=int, default=None,
                    help="new bars per melody; after a primer, its last bar is completed first so the tune "
                         "ends at a bar line")
    gp.add_argument("--meter", default=None,
                    help="time signature such as 4/4, 3/4, 6/8 (bars encoding; default: the primer's, else the one "
                         "the model starts most tunes in)")
    gp.add_argument("--key", default=None,
                    help="key such as G, D major, Em, F# minor: melodies the model writes in that mode, transposed "
                         "to that tonic (default: the model's own keys)")
    gp.add_argument("--formats", default="mid", help="comma-separated: mid, musicxml, abc (default mid)")
    gp.add_argument("--model-ends", action="store_true",
                    help="let the model end each tune at a bar line of its choice; --bars (or --steps) is then "
                         "the most (models trained on data with tune ends: the bars encoding; a model that knows "
                         "its tune's length (the bars-left feature) is asked for that length and ends there)")
    gp.add_argument("--end-on-tonic", action="store_true",
                    help="draw 4 candidates per melody and prefer those whose last note is the tonic of their key")
    gp.add_argument("--drafts", type=int, default=DEFAULT_DRAFTS,
                    help=f"melodies drawn per melody kept, the keeper picked by the form critic: likelier the more "
                         f"its phrase repetition and its count of notes outside its key are like the training "
                         f"tunes' than like the model's (default {DEFAULT_DRAFTS}; 1: every melody as drawn)")
    gp.add_argument("--temperature", type=float, default=1.0)
    gp.add_argument("--top-k", type=int, default=0)
    gp.add_argument("--seed", type=int, default=0)
    gp.add_argument("--primer", help="MIDI file whose melody the generator continues")
    gp.add_argument("--qpm", type=float, default=120.0, help="tempo in quarter notes per minute")
    gp.add_argument("--program", type=int, default=0, help="General MIDI program (0 = piano)")
    gp.add_argument("--model", choices=("best", "mle", "last"), default="best",
                    help="which generator of a run folder: best (model selection, the default), mle (end of MLE "
                         "pre-training) or last (end of training)")
    gp.add_argument("--device", default="auto")
    gp.set_defaults(func=cmd_generate)


def _add_evaluate(sub) -> None:
    ep = sub.add_parser("evaluate", help="MLE vs SeqGAN: BLEU-4, MSE, self-BLEU, NLL, music statistics")
    ep.add_argument("run_dir")
    ep.add_argument("--data", required=True, help="the dataset folder the run was trained on")
    ep.add_argument("--num", type=int, default=1000, help="generated windows per model and temperature")
    ep.add_argument("--temperature", type=float, action="append", help="repeatable; default 0.8 0.9 1.0 1.1")
    ep.add_argument("--max-refs", type=int, default=10000, help="training windows used as BLEU/MSE references")
    ep.add_argument("--seed", type=int, default=0)
    ep.add_argument("--critic-runs", type=int, default=1,
                    help="critics of different seeds per window row, averaged (their spread: critic_sd); 0: the window "
                         "rows go without a critic (the listening test keeps its own); default 1")
    ep.add_argument("--drafts", type=int, default=1,
                    help="with K > 1, each model's rows are followed by rows of melodies kept from K drafts each, "
                         "as generate --drafts K keeps them (label 'MODEL xK'); default 1: none")
    ep.add_argument("--melodies", type=int, default=200,
                    help="the listening test: melodies of 8 bars per model, drawn as generate draws them and read "
                         "back from MIDI, judged against the held-out tunes (at least 2 critic seeds); 0: off")
    ep.add_argument("--calibrate", action="store_true",
                    help="the listening test also judges known damage: MLE at temperature 1.4, training tunes with "
                         "shuffled bars and with every second bar a copy of the first")
    ep.add_argument("--json", action="store_true")
    ep.add_argument("--device", default="auto")
    ep.set_defaults(func=cmd_evaluate)


def _add_oracle(sub) -> None:
    op = sub.add_parser("oracle", help="the paper's synthetic experiment (Table 1): NLL-oracle of MLE and SeqGAN")
    op.add_argument("--params", help="oracle parameters (.npz, or the original .pkl read numpy-only); default N(0,1)")
    op.add_argument("--out", required=True, help="run folder")
    op.add_argument("--preset", choices=[p for p in PRESETS if p != "demo"], default="cpu",
                    help="demo is the app's melody schedule; the oracle has its own cpu schedule")
    op.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    op.add_argument("--samples-out", help="write 10,000 final generator samples (10000 x 20 int32) to this .npy")
    op.add_argument("--num-train", type=int, default=10000, help="oracle sequences to train on")
    op.add_argument("--eval-samples", type=int, default=2000, help="G samples per NLL-oracle estimate")
    op.add_argument("--seed", type=int, default=0)
    op.add_argument("--resume", action="store_true")
    op.add_argument("--device", default="auto")
    op.set_defaults(func=cmd_oracle)


def _add_fuzz(sub) -> None:
    fp = sub.add_parser("fuzz", help="fuzz the readers and tokenizer with damaged and extreme MIDI, ABC and "
                                     "MusicXML files and random bytes")
    fp.add_argument("--cases", type=int, default=3000)
    fp.add_argument("--kinds", default="midi,abc,musicxml", help="comma-separated: midi, abc, musicxml (default all)")
    fp.add_argument("--seed", type=int, default=0)
    fp.set_defaults(func=cmd_fuzz)


def _add_bench(sub) -> None:
    bp = sub.add_parser("bench", help="benchmarks that print figures and ratios")
    bsub = bp.add_subparsers(dest="bench", required=True)
    br = bsub.add_parser("rollout", help="batched vs sequential Monte Carlo reward computation")
    br.add_argument("--config", choices=["music", "nottingham", "oracle", "tune", "bars"], default="oracle")
    br.add_argument("--json", action="store_true")
    br.add_argument("--reps", type=int, default=3,
                    help="timed repetitions of the batched path, and side-by-side pairs for the speedup (medians)")
    br.add_argument("--no-sequential", action="store_true", help="skip the slow sequential reference")
    br.add_argument("--device", default="auto")
    br.set_defaults(func=cmd_bench)
    bf = bsub.add_parser("first-melody", help="upload -> Train -> first generated melody, as the app does it")
    bf.add_argument("files", nargs="+", help="MIDI files to 'upload'")
    bf.add_argument("--preset", choices=list(PRESETS), default="demo")
    bf.set_defaults(func=cmd_bench_first_melody)
    bs = bsub.add_parser("shared-machine", help="one training alone, then two side by side as the app runs them")
    bs.add_argument("data_dir", help="a prepared dataset folder")
    bs.add_argument("--preset", choices=list(PRESETS), default="demo")
    bs.add_argument("--set", action="append", default=[], help="key=value overrides of the preset, repeatable")
    bs.set_defaults(func=cmd_bench_shared_machine)
    bh = bsub.add_parser("hostile", help="prepare each hostile input beside a good file: seconds, peak memory, the line")
    bh.add_argument("--only", nargs="*", default=[], help="cases whose names contain one of these words")
    bh.set_defaults(func=cmd_bench_hostile)

    bt = bsub.add_parser("train-time", help="a preset's training time on each collection, its estimate and its clock")
    bt.add_argument("data_dirs", nargs="+", help="prepared dataset folders")
    bt.add_argument("--preset", choices=list(PRESETS), default="demo")
    bt.add_argument("--set", action="append", default=[], help="key=value overrides of the preset, repeatable")
    bt.add_argument("--against", nargs="+", metavar="KEY=VALUE",
                    help="also train each collection with these overrides, side by side (e.g. an older schedule)")
    bt.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    bt.set_defaults(func=cmd_bench_train_time)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", module="pretty_midi")
    try:
        status = args.func(args)
        sys.stdout.flush()  # so that a reader gone away (``| head``) shows up here, not at exit
        return status
    except BrokenPipeError:  # stop quietly, as Unix tools do, with the status of SIGPIPE
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + 13
    except UserError as exc:
        print(printable(f"seqgan-music: error: {exc}"), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("seqgan-music: interrupted; the last checkpoint is kept", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
