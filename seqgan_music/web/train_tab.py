"""2 · Train: the preset, its settings and where G starts from, the expected time, and the live
view of a training run (progress, time left, charts, rewards, the newest sample)."""

from __future__ import annotations

import dataclasses
import os
import shutil

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st
import torch

from seqgan_music.base_model import BASE, base_info, check_fits, describe, start_path
from seqgan_music.checkpoint import LoadedRun, load_checkpoint
from seqgan_music.clock import Clock, Estimate
from seqgan_music.config import PRESETS as RUN_PRESETS
from seqgan_music.config import make_run_config
from seqgan_music.dataset import read_report
from seqgan_music.errors import UserError
from seqgan_music.generate import to_home_keys
from seqgan_music.jobs import TrainingJob, estimate_later, running_trainings
from seqgan_music.plots import reward_heatmap
from seqgan_music.run_folder import new_run_folder
from seqgan_music.threads import available_cores
from seqgan_music.tokenizer import Tokenizer
from seqgan_music.web.page import (
    RUN_NAME,
    TABS,
    current_job,
    dataset_dir,
    device,
    manifest_entries,
    melody_view,
)

PRESET_LABELS = {"demo": "Fast demo", "tiny": "Tiny (tests)", "cpu": "CPU", "tune": "Whole tunes (CPU)",
                 "paper": "Paper (GPU)"}  # the presets as the page names them; the default first
PRESETS = {label: name for name, label in PRESET_LABELS.items()}  # label -> preset name
CHARTS = [  # (title, y axis, {legend: metrics key})
    ("Generator loss", "nats per token", {"MLE loss (training)": "mle_loss", "NLL on validation tunes": "valid_nll"}),
    ("Discriminator accuracy", "share correct (0-1)", {"D accuracy on real tunes": "d_acc_real",
                                                       "D accuracy on generated": "d_acc_fake",
                                                       # measured every round; D's steps are skipped above d_max_acc
                                                       "D accuracy on the round's samples": "d_acc_check",
                                                       # real tunes D never trains on: below its accuracy on training tunes by what it learnt by heart
                                                       "D accuracy on held-out real tunes": "d_real_unseen"}),
    ("Adversarial reward", "mean (0-1)", {"mean reward of G's samples": "mean_reward",
                                          # the "Whole tunes" preset: the form critic's reward and what it judges
                                          "form critic's reward": "form_reward",
                                          "phrase repetition of G's samples": "sample_phrase_rep"}),
]
PHASE_NAMES = {"mle": "learning your songs", "d_pretrain": "training the critic", "adversarial": "adversarial training"}
PHASE_HELP = ("Learning your songs: maximum-likelihood (MLE) pre-training of the generator G, in parts of a few hundred "
              "batches. Training the critic: pre-training the discriminator D on your songs against G's melodies. "
              "Adversarial training: SeqGAN's rounds, G updated by policy gradient with D's rewards, then D updated.")
UNIT_WORDS = {"mle": "part", "d_pretrain": "round", "adversarial": "round"}  # what one unit of each phase is called
START_BASE, START_SCRATCH = "The folk base model", "Scratch"  # the Train tab's Start from
FEW_SONGS = 200  # below this many songs the Train tab recommends the folk base model
KNOBS = [  # (label, train config key, minimum, help)
    ("MLE units", "mle_epochs", 0, "maximum-likelihood pre-training: at most this many units of the preset's batches "
     "(one pass over the data when it sets none); ends sooner when validation stops improving"),
    ("D pre-training rounds", "d_pretrain_rounds", 0, "rounds of fresh generated negatives before the GAN phase"),
    ("Adversarial rounds", "adv_rounds", 0, "rounds of policy gradient (G) and discriminator (D) updates"),
    ("Rollouts per prefix (N)", "rollout_num", 1, "Monte Carlo completions that estimate each token's reward"),
    ("Batch size", "batch_size", 1, "sequences per step"),
    ("Seed", "seed", 0, "makes the run reproducible"),
]


def train_tab(ws: str) -> None:
    st.subheader("Train")
    job = current_job(ws)
    data = dataset_dir(ws)
    if data is None and job is None:
        st.info("Prepare a dataset in the Songs tab first.")
        return
    tokenizer = Tokenizer.load(os.path.join(job.data_dir if job else data, "tokenizer.json"))
    label = st.selectbox("Preset", list(PRESETS), key="preset")
    fits = window_note(tokenizer, RUN_PRESETS[PRESETS[label]].get("window_bars"), can_prepare=data is not None)
    default_name = f"{dataset_name(data)} · {label}" if data else ""
    run_name = st.text_input("Run name", default_name, key=f"run_name_{default_name}",  # follows the preset
                             help="shown in the Generate and Models tabs")
    cfg = run_settings(tokenizer, PRESETS[label])
    start_from = start_choice(cfg, tokenizer, read_report(data).pieces if data else 0)
    state = job.snapshot() if job else None
    running = state is not None and state.status in ("starting", "running", "paused", "stopping")
    if data is not None and not running and fits:  # (a timing of the wrong windows would mislead)
        pending = estimate_later(data, cfg, device()) is None and not running_trainings()
        st.fragment(run_every=1.0 if pending else None)(estimate_view)(data, cfg, read_report(data).train_windows, pending)
    cols = st.columns(4)
    start = cols[0].button("Start training", key="start", disabled=running or data is None, type="primary")
    pause = cols[1].button("Pause", key="pause", disabled=not running or state.status == "paused")
    resume = cols[2].button("Resume", key="resume", disabled=job is None or (running and state.status != "paused"))
    stop = cols[3].button("Stop", key="stop", disabled=not running)
    clicked = True
    if start:
        run_dir = new_run_folder(os.path.join(ws, "runs"))
        with open(os.path.join(run_dir, RUN_NAME), "w", encoding="utf-8") as fh:
            fh.write(run_name.strip() or os.path.basename(run_dir))
        estimate = estimate_later(data, cfg, device())
        clicked = _start_job(TrainingJob(data, run_dir, cfg, device(), estimate=estimate
                                         if isinstance(estimate, Estimate) else None, start_from=start_from))
        if not clicked:  # refused (server busy): leave no empty run behind
            shutil.rmtree(run_dir, ignore_errors=True)
    elif pause:
        job.pause()
    elif resume and running:
        job.resume()
    elif resume:  # continue a stopped run from its last checkpoint
        clicked = _start_job(TrainingJob(job.data_dir, job.run_dir, job.cfg, job.device, resume=True,
                                         start_from=job.start_from))
    elif stop:
        job.stop()
    else:
        clicked = False
    if clicked:
        st.rerun()  # redraw the buttons for the new state
    if (job := current_job(ws)) is not None:
        state = job.snapshot()
        st.session_state.milestone = _milestone(job, state)
        live = state.status in ("starting", "running", "paused", "stopping")
        st.fragment(run_every=1.0 if live else None)(live_view)(job, tokenizer)


def run_settings(tokenizer: Tokenizer, preset: str):
    """The run config of ``preset`` for the dataset's tokenizer, with the user's training settings."""
    base = make_run_config(preset, tokenizer.vocab_size, tokenizer.config.seq_len, tokenizer.start_token,
                           tokenizer.bar_tokens)
    settings: dict[str, int | float] = {}
    with st.expander("Training settings"):
        for text, field, low, help_text in KNOBS:
            settings[field] = int(st.number_input(text, low, 100000, getattr(base.train, field),
                                                  key=f"{field}_{preset}", help=help_text))
        settings["g_lr"] = float(st.number_input("Generator learning rate", 1e-5, 1.0, base.train.g_lr, format="%.4f",
                                                 key=f"g_lr_{preset}"))
    return dataclasses.replace(base, train=dataclasses.replace(base.train, **settings))  # validated on creation


def window_note(tokenizer: Tokenizer, wanted: int | None, can_prepare: bool) -> bool:
    """The dataset's window length beside the preset; where the preset is made for another, a
    warning and a button that sets the Songs tab up to prepare those windows. -> whether the
    windows fit the preset."""
    have = tokenizer.config.seq_len / tokenizer.steps_for(1)
    st.caption(f"Windows: {have:g} bars of 4/4 (what the model sees at once; set in the Songs tab)")
    if wanted and round(have) != wanted:
        st.warning(f"This preset is made for {wanted}-bar windows, and the dataset has {have:g}-bar windows: it would "
                   f"train on those. Prepare the songs again with {wanted}-bar windows first.")
        st.button(f"Prepare {wanted}-bar windows", key="prepare_windows", disabled=not can_prepare,
                  on_click=_ask_windows, args=(wanted,))
        return False
    return True


def _ask_windows(bars: int) -> None:
    """Set the Songs tab's window length to ``bars`` and open it (the user presses Prepare there)."""
    st.session_state.window_bars = bars
    st.session_state.tab = TABS[0]
    st.session_state.windows_asked = bars


@st.cache_resource
def base_model(path: str) -> LoadedRun | UserError:
    """The folk base model at ``path``, loaded once per server (or why it cannot be)."""
    try:
        return load_checkpoint(path)
    except UserError as exc:
        return exc


def start_choice(cfg, tokenizer, songs: int) -> str | None:
    """The Train tab's *Start from*: the folk base model (the default, where one fits the preset and
    the dataset) or scratch -> :class:`TrainingJob`'s ``start_from``."""
    try:
        path = start_path(BASE, cfg)
        loaded = base_model(path)
        if isinstance(loaded, UserError):
            raise loaded
        check_fits(path, loaded, cfg, tokenizer)
    except UserError as exc:
        st.caption(f"Starts from scratch: the folk base model does not fit this run ({str(exc).split(': ', 1)[-1]})")
        return None
    tunes = base_info(path).get("tunes", 0)
    choice = st.radio("Start from", [START_BASE, START_SCRATCH], key="start_from", horizontal=True,
                      help=f"{START_BASE}: a generator that learnt melody from {tunes:,} tunes of the built-in folk "
                           "collections, fine-tuned on your songs (the discriminator starts fresh). "
                           f"{START_SCRATCH}: a generator that learns from your songs alone.")
    if choice == START_BASE:
        st.caption(f"The generator starts from what {tunes:,} folk tunes taught it and learns your {songs} songs on top.")
        return BASE
    if songs < FEW_SONGS:
        st.caption(f"{songs} songs are few to learn melody from; the folk base model usually helps them.")
    return None


def estimate_view(data: str, cfg, train_windows: int, polling: bool) -> None:
    """How long the run will take on this machine: the probe's estimate, timed in the background
    (the fragment polls while it is timed, then redraws the page once to stop)."""
    estimate = estimate_later(data, cfg, device())
    if polling and estimate is not None:
        st.rerun(scope="app")
    if estimate is None:
        st.caption("Timing this run on this machine ..." if not running_trainings() else
                   "The time this run takes is measured when no training runs.")
    elif isinstance(estimate, UserError):
        st.caption(str(estimate))
    else:
        seconds = Clock.for_run(cfg, train_windows, estimate).total()
        st.caption(f"Expected time on this machine: about {duration(seconds)} (timed on this collection; "
                   "MLE pre-training may end sooner when validation stops improving).")


def duration(seconds: float) -> str:
    """'45 s', '3 min', '1 h 5 min'."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


def _start_job(job: TrainingJob) -> bool:
    """Start ``job``; on refusal show why and return False."""
    try:
        job.start()
    except UserError as exc:
        st.error(str(exc))
        return False
    return True


def _milestone(job: TrainingJob, state) -> tuple:
    """What, when it changes, needs a whole-page rerun: another job, a first checkpoint, a status."""
    return id(job), state.unit > 0, state.status


def time_left(state) -> str:
    """'about N s left' of the whole run, with the phases not measured yet named; 'estimating'
    before any data."""
    seconds, unmeasured = state.eta()
    later = ", ".join(PHASE_NAMES[p] for p in unmeasured)
    if not state.metrics and (state.clock is None or state.clock.estimate is None):
        return "time left: estimating"
    if unmeasured:
        return f"about {duration(seconds)} left, plus the {later} phase (not measured yet)"
    return f"about {duration(seconds)} left"


def discriminator_notices(state, semitones: int) -> None:
    """What D's check says about your songs: it learns them by heart; the trainer moves its windows."""
    if (unseen := state.memorising()) is not None:
        st.warning(f"The discriminator calls most of your held-out songs fake (accuracy {unseen:.2f} over the last "
                   "rounds): it is learning your songs by heart, so its reward says little about music. The best "
                   "model is chosen by validation, not by the reward; more songs help.")
    if (moved := state.pitch_moved()) is not None:
        st.caption(f"The discriminator was learning your songs by heart, so the trainer now moves {moved:.0%} of the "
                   f"windows it trains on (yours and the generator's alike) by up to {semitones} semitones: it "
                   "cannot recognise your songs by their exact pitches and has to judge the music.")


def live_view(job: TrainingJob, tokenizer) -> None:
    """Polled once a second while training runs: progress, losses, rewards, the newest sample."""
    state = job.snapshot()
    if _milestone(job, state) != st.session_state.get("milestone"):
        st.rerun(scope="app")  # first checkpoint or a new status: redraw the buttons and the other tabs
    at, phase_units = state.phase_position()
    where = f"{PHASE_NAMES[state.phase]}, {UNIT_WORDS[state.phase]} {at} of {phase_units}" if phase_units else "-"
    st.markdown(f"**Status:** {state.status} · **phase:** {where} · unit {state.unit}/{state.units} overall"
                + (f" · {time_left(state)}" if state.status == "running" else ""), help=PHASE_HELP)
    if state.error:
        st.error(state.error)
    if job.start_from:
        st.caption(f"The generator started from {describe(job.start_from, job.cfg)}, fine-tuned on your songs.")
    if state.status == "running" and (sharing := running_trainings()) > 1:
        st.caption(f"{sharing} trainings share this machine's {available_cores()} cores (this one runs on "
                   f"{state.threads or '?'} threads), so each runs slower than it would alone.")
    for notice in state.notices:
        st.warning(notice)
    discriminator_notices(state, job.cfg.train.d_transpose)
    best = next((m["best_model"] for m in reversed(state.metrics) if "best_model" in m), None)
    if best is not None:
        st.caption(f"Best model so far (lowest validation NLL without worse melodies): {best}")
        if state.status == "done" and best in ("the end of MLE pre-training", "the start of the adversarial phase"):
            st.info("The adversarial phase did not improve on the MLE model: kept the MLE model as the best model.")
    done = state.status == "done"
    st.progress(1.0 if done else state.unit / max(state.units, 1), text="Overall")
    st.progress(1.0 if done else min(state.phase_done / max(state.phase_total, 1), 1.0),
                text=f"Current unit ({PHASE_NAMES.get(state.phase, 'starting')})")
    if state.first_sample_at is not None:
        st.caption(f"First generated melody after {state.first_sample_at:.1f} s")
    metrics = pd.DataFrame(state.metrics)
    cols = st.columns(3)
    for col, (title, y_label, series) in zip(cols, CHARTS):
        col.markdown(f"**{title}**")
        present = {name: key for name, key in series.items() if key in metrics}
        data = metrics[list(present.values())].rename(columns={v: k for k, v in present.items()}) if present else None
        if data is not None:
            data.index = metrics["unit_index"] + 1
            data = data.dropna(how="all")
        if data is None or len(data) < 2:
            col.caption("drawn from the second measurement on")
        else:
            col.altair_chart(metrics_chart(data, y_label), width="stretch")
    if "d_skipped" in metrics and metrics["d_skipped"].fillna(0).gt(0).any():
        st.caption("D's accuracy on real and generated tunes is measured only in rounds where D trains: it skips its "
                   "steps while it already tells the round's samples apart (its accuracy on them is still drawn).")
    sample = state.sample
    if sample and sample.get("rewards"):
        st.markdown("**Per-timestep rewards of the latest batch**: each row one generated sequence, each column "
                    "one token; the colour is D's Monte Carlo reward for that token (red: D judged the sequence "
                    "fake, green: real).")
        st.image(reward_heatmap(np.array(sample["rewards"])))
    if sample:
        st.markdown(f"**Newest sample** ({PHASE_NAMES[sample['phase']]}, {UNIT_WORDS[sample['phase']]} "
                    f"{sample['unit'] + 1})")
        in_home_key = to_home_keys(torch.tensor([sample["tokens"]]), tokenizer, np.random.default_rng(sample["unit"]))
        melody_view(tokenizer, in_home_key[0].tolist())  # a model of tunes moved to C: in one of the songs' keys


def metrics_chart(data: pd.DataFrame, y_label: str) -> alt.Chart:
    """Lines of ``data`` (one column per legend name, indexed by training unit), the legend under
    the plot one name per row, so that long names stay readable in a narrow column."""
    long = data.rename_axis("unit").reset_index().melt("unit", var_name="series").dropna()
    legend = alt.Legend(orient="bottom", direction="vertical", title=None, labelLimit=0)
    fit_width = alt.AutoSizeParams(type="fit-x", contains="padding")  # the plot keeps its height; the legend adds to it
    return alt.Chart(long, height=160, autosize=fit_width).mark_line().encode(
        x=alt.X("unit:Q", title="training unit (epoch or round)", axis=alt.Axis(tickMinStep=1, format="d")), y=alt.Y("value:Q", title=y_label),
        color=alt.Color("series:N", legend=legend, sort=list(data.columns)))


def dataset_name(path: str) -> str:
    """A short name of what a dataset was prepared from: the collection, the one file, or a count."""
    sources = [e["source"] for e in manifest_entries(path) if "split" in e]
    builtins = {src.split("/")[0] for src in sources if src.startswith("builtin:")}
    if len(builtins) == 1 and len(builtins) == len({src.split("/")[0] for src in sources}):
        return builtins.pop().removeprefix("builtin:")
    return os.path.basename(sources[0]) if len(sources) == 1 else f"{len(sources)} songs"
