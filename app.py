"""seqgan-music in the browser: bring songs, train a SeqGAN, listen to new melodies, export MIDI.

Run with ``streamlit run app.py``. The page holds no model logic: it calls the seqgan_music
package. Each browser session works in its own folder (``runs/app/<workspace id>``, the id kept in
the page address so a reload finds its runs again); training runs in a background thread that
never calls Streamlit, and the page polls it once a second.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import shutil
import time
import uuid
import zipfile

import altair as alt
import numpy as np
import pandas as pd
import streamlit as st
import torch

from seqgan_music.base_model import BASE, BASE_PATH, base_info, check_fits, describe, start_path
from seqgan_music.checkpoint import LAST, MODELS, LoadedRun, check_progress, load_checkpoint, read_checkpoint
from seqgan_music.clock import Clock, Estimate
from seqgan_music.config import DEFAULT_DRAFTS, make_run_config
from seqgan_music.config import PRESETS as RUN_PRESETS
from seqgan_music.dataset import load_dataset, prepare, read_report
from seqgan_music.device import describe_device, resolve_device
from seqgan_music.errors import UserError
from seqgan_music.evaluation_job import SETTINGS, EvaluationJob, evaluation_job, stored_evaluation, verdict
from seqgan_music.generate import load_run, primer_tokens, to_home_keys, token_rewards
from seqgan_music.jobs import TrainingJob, estimate_later, latest_job, running_trainings
from seqgan_music.melody_request import MelodyRequest, melodies_for
from seqgan_music.metrics import KEYS
from seqgan_music.plots import piano_roll, reward_heatmap
from seqgan_music.run_folder import new_run_folder
from seqgan_music.score import abc_text, musicxml_bytes, score_svg
from seqgan_music.sign_in import PasswordGate
from seqgan_music.sources import BUILTIN
from seqgan_music.synth import fluidsynth_available, midi_to_wav
from seqgan_music.threads import available_cores
from seqgan_music.tokenizer import METERS, Tokenizer, window_config

APP_ROOT = os.environ.get("SEQGAN_MUSIC_APP_DIR", os.path.join("runs", "app"))
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
MELODY_FILES = {"midi": "mid", "wav": "wav", "musicxml": "musicxml", "abc": "abc", "svg": "svg"}  # key -> suffix
COMPARE_FOLDERS = ("generated_a", "generated_b")  # in a workspace: the two sides of the newest comparison
PICKS_FILE = "picks.json"  # in a run folder: the user's blind picks, {model: count}
SONGS_FOLDER = "songs"  # in a workspace: the uploaded files the dataset was prepared from
TABS = ["1 · Songs", "2 · Train", "3 · Generate", "4 · Evaluate", "Models"]
RUN_NAME = "name.txt"  # in a run folder: the name its user gave the run
PHASE_NAMES = {"mle": "learning your songs", "d_pretrain": "training the critic", "adversarial": "adversarial training"}
PHASE_HELP = ("Learning your songs: maximum-likelihood (MLE) pre-training of the generator G, in parts of a few hundred "
              "batches. Training the critic: pre-training the discriminator D on your songs against G's melodies. "
              "Adversarial training: SeqGAN's rounds, G updated by policy gradient with D's rewards, then D updated.")
UNIT_WORDS = {"mle": "part", "d_pretrain": "round", "adversarial": "round"}  # what one unit of each phase is called
APP_ENCODINGS = {"Bar lines": "bars", "Grid only": "melody"}  # the Songs tab's encodings, label -> name
STRUCTURE = [("tonic_ending", "tonic endings"), ("downbeat_share", "downbeats"), ("key_agreement", "in key")]
AS_LEARNT = "as learnt"  # the Generate tab's metre and key choice: the primer's or the model's own
START_BASE, START_SCRATCH = "The folk base model", "Scratch"  # the Train tab's Start from
FEW_HELD_OUT = 10  # below this many held-out songs the Evaluate tab calls its figures rough
FEW_SONGS = 200  # below this many songs the Train tab recommends the folk base model
GENERATORS = {("MLE" if name == "mle" else name.capitalize()): name for name in MODELS}  # label -> model name
INSTRUMENTS = {"Piano": 0, "Electric piano": 4, "Vibraphone": 11, "Organ": 19, "Nylon guitar": 24, "Violin": 40,
               "Strings": 48, "Trumpet": 56, "Alto sax": 65, "Flute": 73, "Ocarina": 79, "Synth lead": 80}
KNOBS = [  # (label, train config key, minimum, help)
    ("MLE units", "mle_epochs", 0, "maximum-likelihood pre-training: at most this many units of the preset's batches "
     "(one pass over the data when it sets none); ends sooner when validation stops improving"),
    ("D pre-training rounds", "d_pretrain_rounds", 0, "rounds of fresh generated negatives before the GAN phase"),
    ("Adversarial rounds", "adv_rounds", 0, "rounds of policy gradient (G) and discriminator (D) updates"),
    ("Rollouts per prefix (N)", "rollout_num", 1, "Monte Carlo completions that estimate each token's reward"),
    ("Batch size", "batch_size", 1, "sequences per step"),
    ("Seed", "seed", 0, "makes the run reproducible"),
]


@st.cache_resource
def device() -> torch.device:
    return resolve_device("auto")


def server_password() -> str | None:
    """The optional server password: ``password`` in Streamlit secrets, else $SEQGAN_MUSIC_PASSWORD."""
    try:
        secret = st.secrets.get("password")
    except FileNotFoundError:  # no secrets file at all
        secret = None
    return secret or os.environ.get("SEQGAN_MUSIC_PASSWORD") or None


def signed_in() -> bool:
    """True when the server has no password or this session gave it; else shows the sign-in form."""
    password = server_password()
    if password is None or st.session_state.get("signed_in"):
        return True
    given = st.text_input("Password", type="password", key="password")
    if st.button("Sign in", key="sign_in"):
        gate = password_gate(str(password))
        if gate.attempt(given):
            st.session_state.signed_in = True
            st.rerun()
        st.error(f"Wrong password. The next attempt is judged after {gate.delay():.0f} s.")
    return False


@st.cache_resource
def password_gate(password: str) -> PasswordGate:
    """One gate per server (and password): failures in any session slow every next attempt."""
    return PasswordGate(password)


def failure_line(exc: UserError | MemoryError, doing: str) -> str:
    """The one line the page shows for a refused input or for running out of memory ``doing`` it."""
    if isinstance(exc, MemoryError):
        return f"The server ran out of memory {doing}; try fewer or smaller files."
    return str(exc)


def workspace() -> str:
    """This session's folder; its id lives in the page address (?ws=...)."""
    if "ws" not in st.session_state:
        ws = st.query_params.get("ws", "")
        st.session_state.ws = ws if re.fullmatch(r"[0-9a-f]{32}", ws or "") else uuid.uuid4().hex
    st.query_params["ws"] = st.session_state.ws
    tidy_workspaces()
    return os.path.join(APP_ROOT, st.session_state.ws)  # created by the first thing stored in it


@st.cache_resource(ttl=3600)
def tidy_workspaces() -> None:
    """At most once an hour: remove workspaces that hold no model and were not touched for
    $SEQGAN_MUSIC_EMPTY_WORKSPACE_DAYS days (default 7). A workspace with a run is only ever
    removed by its user (Models tab)."""
    max_age = float(os.environ.get("SEQGAN_MUSIC_EMPTY_WORKSPACE_DAYS", "7")) * 86400
    if not os.path.isdir(APP_ROOT):
        return
    for name in os.listdir(APP_ROOT):
        path = os.path.join(APP_ROOT, name)
        runs = os.path.join(path, "runs")
        if (re.fullmatch(r"[0-9a-f]{32}", name) and time.time() - os.path.getmtime(path) > max_age
                and not (os.path.isdir(runs) and os.listdir(runs)) and latest_job(runs) is None):
            shutil.rmtree(path, ignore_errors=True)


@st.cache_data(max_entries=64, show_spinner=False)
def _melody_media(tokenizer_json: str, tokens: tuple[int, ...]) -> tuple[np.ndarray, bytes]:
    """Piano roll image and WAV of a token sequence; cached, so reruns do not synthesize again."""
    tokenizer = Tokenizer.from_dict(json.loads(tokenizer_json))
    return roll(tokenizer, tokens), midi_to_wav(tokenizer.decode(tokens))


def roll(tokenizer: Tokenizer, tokens, rewards: np.ndarray | None = None, primer_tokens: int = 0) -> bytes:
    """The piano roll (PNG) of a token sequence, in bars where the encoding has a beat grid;
    ``rewards`` per token, the first ``primer_tokens`` tokens a primer."""
    tokens = np.asarray(tokens)
    timed = tokenizer.is_step(tokens)  # BAR tokens take no time: rewards and the primer in grid steps
    grid = tokenizer.bar_and_beat_steps(tokens)
    return piano_roll(tokenizer.decode_notes(tokens), int(timed.sum()), grid and grid[0],
                      None if rewards is None else np.asarray(rewards)[timed], int(timed[:primer_tokens].sum()),
                      tokenizer.config.sample_seconds)


def melody_view(tokenizer: Tokenizer, tokens) -> None:
    """Piano roll and an audio player for one token sequence (120 qpm, piano)."""
    image, wav = _melody_media(json.dumps(tokenizer.to_dict()), tuple(int(t) for t in tokens))
    st.image(image)
    st.audio(wav, format="audio/wav")


# ---------------------------------------------------------------- 1. songs


def songs_tab(ws: str) -> None:
    st.subheader("Bring songs")
    kind = st.radio("Songs", ["Upload songs", "Built-in collection"], horizontal=True, key="source_kind")
    uploads, source = [], []
    if kind == "Upload songs":
        files = st.file_uploader("Songs: MIDI (.mid, .midi), ABC (.abc, many tunes per file), MusicXML "
                                 "(.musicxml, .xml, .mxl), or .zip archives of them",
                                 type=["mid", "midi", "abc", "musicxml", "xml", "mxl", "zip"],
                                 accept_multiple_files=True, key="uploads")
        uploads = [(f.name, f.getvalue()) for f in files or []]
        if not uploads and (kept := stored_songs(ws)):
            st.caption(f"Prepare uses the {len(kept)} files you prepared before ({', '.join(n for n, _ in kept[:3])}"
                       f"{', ...' if len(kept) > 3 else ''}); upload files to replace them.")
            uploads = kept
    else:
        name = st.selectbox("Collection", list(BUILTIN), format_func=lambda n: f"{n}: {BUILTIN[n][1]}", key="builtin")
        source = [f"builtin:{name}"]
    with st.expander("Tokenizer options"):
        encoding = st.radio("Encoding", list(APP_ENCODINGS), key="encoding", horizontal=True,
                            help="Bar lines: a BAR token names each bar's time signature, so the model learns metre "
                                 "and phrases and writes whole bars. Grid only: the steps alone, read as 4/4.")
        spq = st.number_input("Steps per quarter note", 1, 12, 4, key="spq", help="grid resolution: 4 = sixteenth notes")
        window_bars = st.selectbox("Window length in bars of 4/4 (what the model sees at once)", [1, 2, 4, 8], index=2,
                                   key="window_bars", help="longer windows hold whole phrases; training takes longer")
        transpose = st.slider("Transposition augmentation (+- semitones)", 0, 6, 0, key="transpose")
    if (asked := st.session_state.pop("windows_asked", None)) is not None:
        st.info(f"Window length set to {asked} bars: press Prepare dataset to cut the songs into those windows.")
    if st.button("Prepare dataset", key="prepare", type="primary"):
        if not uploads and not source:
            st.error("Upload at least one song file or .zip archive first.")
            return
        cfg = window_config(APP_ENCODINGS[encoding], int(window_bars), int(spq), int(transpose))
        out = os.path.join(ws, "dataset")  # a new dataset replaces the old one only once it is complete
        bar = st.progress(0.0, text="Reading songs")
        try:
            prepare(source, out, cfg, uploads=uploads,
                    progress=lambda d, t: bar.progress(d / max(t, 1), text=f"Reading songs {d}/{t}"))
            keep_songs(ws, uploads)
        except (UserError, MemoryError) as exc:  # the dataset prepared before stays, shown below
            st.error(failure_line(exc, "reading these songs (the dataset prepared before is kept)"))
    if (data := dataset_dir(ws)) is not None:
        show_dataset(data, read_report(data))


def stored_songs(ws: str) -> list[tuple[str, bytes]]:
    """The files of the workspace's last prepared upload (name, bytes), so that a reloaded page can
    prepare them again with other options."""
    folder = os.path.join(ws, SONGS_FOLDER)
    if not os.path.isdir(folder):
        return []
    songs = []
    for slot in sorted(os.listdir(folder)):  # one folder per file: two uploads may share a name
        for name in os.listdir(os.path.join(folder, slot)):
            with open(os.path.join(folder, slot, name), "rb") as fh:
                songs.append((name, fh.read()))
    return songs


def keep_songs(ws: str, uploads: list[tuple[str, bytes]]) -> None:
    """Keep the files a dataset was just prepared from in the workspace, replacing those kept before."""
    folder = os.path.join(ws, SONGS_FOLDER)
    if not uploads or uploads == stored_songs(ws):
        return
    tmp = folder + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    for i, (name, data) in enumerate(uploads):
        os.makedirs(os.path.join(tmp, f"{i:05d}"))
        safe = os.path.basename(name) if os.path.basename(name) not in ("", ".", "..") else "song"
        with open(os.path.join(tmp, f"{i:05d}", safe), "wb") as fh:
            fh.write(data)
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)


def dataset_dir(ws: str) -> str | None:
    """The workspace's prepared dataset (kept in its folder, so a reload finds it), or None."""
    path = os.path.join(ws, "dataset")
    return path if os.path.exists(os.path.join(path, "manifest.json")) else None


def current_job(ws: str) -> TrainingJob | None:
    """The newest training started in this workspace (by this page, an earlier load of it, or another tab)."""
    return latest_job(os.path.join(ws, "runs"))


def show_dataset(path: str, report) -> None:
    ds = load_dataset(path)
    usable = [e for e in _manifest_entries(path) if "split" in e]  # in the order of ds.pieces
    notes = sum(int(e.get("notes", 0)) for e in usable)
    cols = st.columns(4)
    cols[0].metric("Pieces", report.pieces)
    cols[1].metric("Notes", notes)
    cols[2].metric("Training windows", report.train_windows)
    cols[3].metric("Skipped", len(report.skipped))
    if report.skipped:
        st.warning(f"{len(report.skipped)} file(s) or tune(s) skipped; the others are kept.")
        st.dataframe(pd.DataFrame(report.skipped), hide_index=True, width="stretch")
    moved = " moved to C major or C minor, as the model learns them (melodies it writes go back to your songs' keys)" \
        if ds.tokenizer.config.key_to_c else ""
    st.markdown(f"**What the model will learn** (the extracted melodies of a few songs{moved}):")
    for index in preview_pieces(ds):
        st.caption(usable[index]["source"])
        melody_view(ds.tokenizer, ds.pieces[index][: 4 * ds.seq_len])


def preview_pieces(ds, count: int = 3) -> list[int]:
    """Indices of up to ``count`` pieces worth hearing: at least 8 notes and 3 pitches in the excerpt
    shown (never a single note or a silent stretch); others only if nothing else qualifies."""
    def lively(piece) -> bool:
        pitches = ds.tokenizer.token_pitch(piece[: 4 * ds.seq_len])
        return int((pitches >= 0).sum()) >= 8 and len(set(pitches[pitches >= 0].tolist())) >= 3

    good = [i for i, piece in enumerate(ds.pieces) if lively(piece)]
    return (good or list(range(len(ds.pieces))))[:count]


def _manifest_entries(path: str) -> list[dict]:
    with open(os.path.join(path, "manifest.json"), encoding="utf-8") as fh:
        return json.load(fh)["entries"]


# ---------------------------------------------------------------- 2. train


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
def base_model() -> LoadedRun | UserError:
    """The folk base model, loaded once per server (or why it cannot be)."""
    try:
        return load_checkpoint(start_path(BASE))
    except UserError as exc:
        return exc


def start_choice(cfg, tokenizer, songs: int) -> str | None:
    """The Train tab's *Start from*: the folk base model (the default, where it fits the preset and
    the dataset) or scratch -> :class:`TrainingJob`'s ``start_from``."""
    loaded = base_model()
    try:
        if isinstance(loaded, UserError):
            raise loaded
        check_fits(BASE_PATH, loaded, cfg, tokenizer)
    except UserError as exc:
        st.caption(f"Starts from scratch: the folk base model does not fit this run ({str(exc).split(': ', 1)[-1]})")
        return None
    tunes = base_info().get("tunes", 0)
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
        st.caption(f"The generator started from {describe(job.start_from)}, fine-tuned on your songs.")
    if state.status == "running" and (sharing := running_trainings()) > 1:
        st.caption(f"{sharing} trainings share this machine's {available_cores()} cores (this one runs on "
                   f"{state.threads or '?'} threads), so each runs slower than it would alone.")
    for notice in state.notices:
        st.warning(notice)
    if (unseen := state.memorising()) is not None:
        st.warning(f"The discriminator calls most of your held-out songs fake (accuracy {unseen:.2f} over the last "
                   "rounds): it is learning your songs by heart, so its reward says little about music. The best "
                   "model is chosen by validation, not by the reward; more songs help.")
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


# ---------------------------------------------------------------- 3. generate


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
    sources = [e["source"] for e in _manifest_entries(path) if "split" in e]
    builtins = {src.split("/")[0] for src in sources if src.startswith("builtin:")}
    if len(builtins) == 1 and len(builtins) == len({src.split("/")[0] for src in sources}):
        return builtins.pop().removeprefix("builtin:")
    return os.path.basename(sources[0]) if len(sources) == 1 else f"{len(sources)} songs"


def run_label(ws: str, name: str) -> str:
    """The name its user gave a run (kept in the run folder), else the folder's name."""
    try:
        with open(os.path.join(ws, "runs", name, RUN_NAME), encoding="utf-8") as fh:
            return fh.read().strip() or name
    except OSError:
        return name


def list_runs(ws: str) -> list[str]:
    root = os.path.join(ws, "runs")
    if not os.path.isdir(root):
        return []
    return sorted((d for d in os.listdir(root) if os.path.exists(os.path.join(root, d, LAST))), reverse=True)


def generate_tab(ws: str) -> None:
    st.subheader("Generate")
    runs = list_runs(ws)
    if not runs:
        st.info("Train a model (or upload a checkpoint in the Models tab) first.")
        return
    current = os.path.basename(job.run_dir) if (job := current_job(ws)) else ""
    cols = st.columns([2, 1])
    name = cols[0].selectbox("Model", runs, index=runs.index(current) if current in runs else 0, key="gen_run",
                             format_func=lambda run: run_label(ws, run))
    which = cols[1].radio("Generator", list(GENERATORS), key="gen_which", horizontal=True,
                          help="Best: the state with the lowest validation NLL among those whose melodies are not worse "
                               "than the MLE model's (the MLE model unless a round beat it). MLE: the end of "
                               "pre-training. Last: the end of training.")
    warn_if_stopped(ws, name, training=job is not None and job.alive() and os.path.basename(job.run_dir) == name)
    settings = melody_settings()
    primer_file = st.file_uploader("Optional: a MIDI melody to continue", type=["mid", "midi"], key="primer")
    cols = st.columns(2)
    compare = cols[0].checkbox("Compare MLE and best", False, key="gen_compare",
                               help="the same seed and settings drawn from the MLE model (the end of pre-training) and "
                                    "the best model, side by side: hear what the adversarial phase changed")
    blind = cols[1].checkbox("Blind: shuffle them as A and B", False, key="gen_blind", disabled=not compare,
                             help="you pick the one that sounds better before you see which is which; the page "
                                  "counts your picks per run")
    if st.button("Generate", key="generate", type="primary"):
        program, colour = INSTRUMENTS[settings.pop("instrument")], settings.pop("colour")
        try:
            request = MelodyRequest(**settings)
            run_dir = os.path.join(ws, "runs", name)
            if compare:
                sides = {model: _generate(run_dir, model, request, program, primer_file, colour) for model in ("mle", "best")}
                order = list(np.random.default_rng().permutation(list(sides))) if blind else list(sides)
                save_comparison(ws, name, [(model, sides[model]) for model in order], blind)
            else:
                save_generated(ws, _generate(run_dir, GENERATORS[which], request, program, primer_file, colour))
        except (UserError, MemoryError) as exc:
            st.error(failure_line(exc, "generating (the melodies shown before are kept)"))
    if compare and (comparison := load_comparison(ws)) is not None:
        show_comparison(ws, comparison)
    elif not compare and (generated := load_generated(ws)) is not None:
        show_generated(generated)


def warn_if_stopped(ws: str, name: str, training: bool) -> None:
    """A warning when the run ``name`` (not ``training`` now) was stopped before its last unit."""
    last = os.path.join(ws, "runs", name, LAST)
    progress = re.fullmatch(r"(\d+)/(\d+)", _progress_text(last, os.path.getmtime(last)))
    done, units = progress.groups() if progress else ("", "")
    if done != units and not training:
        st.warning(f"This run was stopped after {done} of its {units} training units: its melodies are those of a "
                   "barely trained model. Resume it in the Train tab to train it to the end.")


def melody_settings() -> dict:
    """The Generate tab's settings: :class:`MelodyRequest`'s fields, and ``instrument`` and
    ``colour`` (notes coloured by D's reward)."""
    cols = st.columns(5)
    num = cols[0].number_input("Melodies", 1, 16, 4, key="gen_num")
    drafts = cols[0].number_input("Drafts per melody", 1, 16, DEFAULT_DRAFTS, key="gen_drafts",
                                  help="melodies drawn for each one shown; the one kept is likelier the more its "
                                       "phrase repetition and its count of notes outside its key are like the "
                                       "training tunes' than like the model's (runs that saved the training tunes' "
                                       "phrase statistics; 1: each melody as drawn)")
    bars = cols[1].number_input("Length in bars", 1, 32, 4, key="gen_bars",
                                help="with a primer: the length of the new part, after the primer")
    model_ends = cols[1].checkbox("The model ends the tune", False, key="gen_model_ends",
                                  help="the model may end each tune at a bar line of its choice; the length above is "
                                       "then the most (models trained on data prepared with bar lines). Models that "
                                       "know their tune's length (the bars-left feature) are asked for the length "
                                       "above and end their tunes there either way")
    meter = cols[2].selectbox("Metre", [AS_LEARNT, *METERS], key="gen_meter",
                              help="models trained on the bars encoding write whole bars of this time signature; "
                                   f"{AS_LEARNT}: the primer's, else the one the model starts most tunes in "
                                   "(other models write 4/4)")
    temperature = cols[3].slider("Temperature", 0.5, 1.5, 1.0, 0.05, key="gen_temp", help="lower = safer, higher = wilder")
    top_k = cols[4].number_input("Top-k (0 = off)", 0, 100, 0, key="gen_topk")
    cols = st.columns(5)
    key = cols[4].selectbox("Key", [AS_LEARNT, *KEYS], key="gen_key",
                            help="melodies the model writes in this mode, transposed to this tonic; "
                                 f"{AS_LEARNT}: the keys of the tunes it learnt from (a primer's key is kept)")
    seed = cols[0].number_input("Seed", 0, 10**6, 0, key="gen_seed")
    qpm = cols[1].number_input("Tempo (quarter notes per minute)", 30, 300, 120, key="gen_qpm")
    instrument = cols[2].selectbox("Instrument", list(INSTRUMENTS), key="gen_instrument")
    colour = cols[3].checkbox("Colour notes by D's reward", True, key="gen_colour")
    tonic = cols[3].checkbox("End on the tonic", False, key="gen_tonic",
                             help="draw 4 melodies per melody shown and prefer those whose last note is the tonic of their key")
    return {"num": int(num), "bars": int(bars), "qpm": float(qpm), "meter": None if meter == AS_LEARNT else meter,
            "key": None if key == AS_LEARNT else key, "temperature": float(temperature), "top_k": int(top_k),
            "seed": int(seed), "drafts": int(drafts), "end_on_tonic": tonic, "model_ends": model_ends,
            "instrument": instrument, "colour": colour}


def save_comparison(ws: str, run: str, sides: list[tuple[str, dict]], blind: bool) -> None:
    """Keep a comparison: each side's melodies (``generated_a``, ``generated_b``) and which model
    each side is (``comparison.json``)."""
    for (_, gen), folder in zip(sides, COMPARE_FOLDERS):
        save_generated(ws, gen, folder)
    with open(os.path.join(ws, "comparison.json"), "w", encoding="utf-8") as fh:
        json.dump({"run": run, "models": [which for which, _ in sides], "blind": blind, "picked": None}, fh)


def load_comparison(ws: str) -> dict | None:
    """{run, models, blind, picked, sides: [generated A, generated B]} or None."""
    try:
        with open(os.path.join(ws, "comparison.json"), encoding="utf-8") as fh:
            comparison = json.load(fh)
    except (OSError, ValueError):
        return None
    sides = [load_generated(ws, folder) for folder in COMPARE_FOLDERS]
    return {**comparison, "sides": sides} if all(sides) else None


def show_comparison(ws: str, comparison: dict) -> None:
    """Two columns, the same seed and settings from each model; in a blind comparison the names
    show only once the user picked the one that sounds better, and the picks are counted per run."""
    hidden = comparison["blind"] and comparison["picked"] is None
    names = ["A", "B"] if hidden else [{"mle": "MLE", "best": "Best"}[m] for m in comparison["models"]]
    if hidden:
        cols = st.columns(2)
        for col, side, which in zip(cols, "AB", comparison["models"]):
            if col.button(f"{side} sounds better", key=f"pick_{side}"):
                record_pick(ws, comparison, which)
                st.rerun()
    elif comparison["blind"]:
        picks = read_picks(os.path.join(ws, "runs", comparison["run"]))
        st.info(f"You picked {dict(mle='MLE', best='Best')[comparison['picked']]}. A was "
                f"{names[0]}, B was {names[1]}. Your blind picks for this run: Best {picks.get('best', 0)}, "
                f"MLE {picks.get('mle', 0)}.")
    for col, name, gen, prefix in zip(st.columns(2), names, comparison["sides"], ("a_", "b_")):
        with col:
            st.markdown(f"### {name}")
            show_generated(gen, prefix)


def read_picks(run_dir: str) -> dict[str, int]:
    """How often the user picked each model in blind comparisons of this run."""
    try:
        with open(os.path.join(run_dir, PICKS_FILE), encoding="utf-8") as fh:
            return {k: int(v) for k, v in json.load(fh).items()}
    except (OSError, ValueError, AttributeError):
        return {}


def record_pick(ws: str, comparison: dict, which: str) -> None:
    run_dir = os.path.join(ws, "runs", comparison["run"])
    picks = read_picks(run_dir)
    picks[which] = picks.get(which, 0) + 1
    if os.path.isdir(run_dir):
        with open(os.path.join(run_dir, PICKS_FILE), "w", encoding="utf-8") as fh:
            json.dump(picks, fh)
    stored = {k: v for k, v in comparison.items() if k != "sides"}
    with open(os.path.join(ws, "comparison.json"), "w", encoding="utf-8") as fh:
        json.dump({**stored, "picked": which}, fh)


def save_generated(ws: str, gen: dict, name: str = "generated") -> None:
    """Keep the newest generated melodies in the workspace (in the folder ``name``: MIDI, WAV,
    tokens and rewards as JSON), replacing the previous ones only once all are written."""
    folder = os.path.join(ws, name)
    tmp = folder + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    for i, m in enumerate(gen["melodies"]):
        for key, ext in MELODY_FILES.items():
            if key in m:
                with open(os.path.join(tmp, f"melody_{i + 1:02d}.{ext}"), "wb") as fh:
                    fh.write(m[key])
    listing = {"tokenizer": gen["tokenizer"].to_dict(), "primer_steps": gen["primer_steps"],
               "melodies": [{"tokens": m["tokens"].tolist(),
                             "rewards": None if m["rewards"] is None else m["rewards"].tolist()} for m in gen["melodies"]]}
    with open(os.path.join(tmp, "melodies.json"), "w", encoding="utf-8") as fh:
        json.dump(listing, fh)
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)


def load_generated(ws: str, name: str = "generated") -> dict | None:
    """The melodies :func:`save_generated` kept, in :func:`_generate`'s shape; None if there are none."""
    folder = os.path.join(ws, name)
    try:
        with open(os.path.join(folder, "melodies.json"), encoding="utf-8") as fh:
            listing = json.load(fh)
        melodies = []
        for i, m in enumerate(listing["melodies"]):
            melody = {"tokens": np.array(m["tokens"]), "rewards": None if m["rewards"] is None else np.array(m["rewards"])}
            for key, ext in MELODY_FILES.items():
                path = os.path.join(folder, f"melody_{i + 1:02d}.{ext}")
                if key in ("midi", "wav") or os.path.exists(path):
                    with open(path, "rb") as fh:
                        melody[key] = fh.read()
            melodies.append(melody)
        return {"tokenizer": Tokenizer.from_dict(listing["tokenizer"]), "melodies": melodies,
                "primer_steps": int(listing["primer_steps"])}
    except (OSError, ValueError, KeyError, TypeError, UserError):
        return None


def _generate(run_dir: str, which: str, request: MelodyRequest, program: int, primer_file, colour: bool) -> dict:
    """The melodies ``request`` asks of the run's ``which`` model, after the uploaded primer, as
    MIDI, audio and (on a beat grid) scores, coloured by D's rewards when ``colour``."""
    run = load_run(run_dir, device(), which)
    tok = run.tokenizer
    primer = None
    if primer_file is not None:
        primer = primer_tokens(primer_file.name, tok, primer_file.getvalue())
    meter = request.meter if tok.bar_tokens else None  # a model without bar lines writes 4/4
    result = melodies_for(run, dataclasses.replace(request, primer=primer, meter=meter))
    qpm, seed, tokens = request.qpm, request.seed, result.tokens
    melodies = []
    for i, row in enumerate(tokens):
        row = torch.from_numpy(tok.tune_part(row.numpy()))  # a tune the model ended: up to its END
        pm = tok.decode(row, qpm=qpm, program=program)
        buf = io.BytesIO()
        pm.write(buf)
        rewards = token_rewards(run, row, seed=seed + i) if colour else None
        melody = {"tokens": row.numpy(), "midi": buf.getvalue(), "wav": midi_to_wav(pm), "rewards": rewards}
        if tok.steps_per_bar is not None:  # sheet music needs a beat grid
            title = f"Melody {i + 1}"
            melody["musicxml"] = musicxml_bytes(tok, row, qpm, title)
            melody["abc"] = abc_text(tok, row, qpm, title, number=i + 1).encode("utf-8")
            melody["svg"] = score_svg(melody["musicxml"]).encode("utf-8")
        melodies.append(melody)
    return {"tokenizer": tok, "melodies": melodies, "primer_steps": 0 if primer is None else len(primer)}


def show_generated(gen: dict, prefix: str = "") -> None:
    """The melodies with their piano rolls, audio, scores and downloads (widget keys start with ``prefix``)."""
    tok = gen["tokenizer"]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        for i, m in enumerate(gen["melodies"]):
            for key, ext in MELODY_FILES.items():
                if key in m and key not in ("wav", "svg"):
                    zf.writestr(f"melody_{i + 1:02d}.{ext}", m[key])
    new = gen["primer_steps"]  # the primer's tokens come first; length, silence and reward count the new part
    silent = [i + 1 for i, m in enumerate(gen["melodies"]) if not tok.decode_notes(m["tokens"][new:])]
    if silent:
        st.warning(f"{len(silent)} of {len(gen['melodies'])} melodies have no notes (melody "
                   f"{', '.join(map(str, silent))}): this model writes silence. Try the MLE or Best generator, "
                   "or a lower temperature.")
    st.download_button("Download all as .zip", archive.getvalue(), "melodies.zip", "application/zip", key=f"{prefix}dl_zip",
                       on_click="ignore")
    if any(m["rewards"] is not None for m in gen["melodies"]):
        st.caption("Note colours: D's reward for each note, from red (D judged the melody fake there) through yellow "
                   "to green (real).")
    for i, m in enumerate(gen["melodies"]):
        if i + 1 in silent:
            st.markdown(f"**Melody {i + 1}** · :red[silent: no notes]")
            continue
        reward = f" · mean reward of the new notes {m['rewards'][new:].mean():.2f}" if m["rewards"] is not None else ""
        st.markdown(f"**Melody {i + 1}**{reward}")
        st.image(roll(tok, m["tokens"], m["rewards"], new))
        st.audio(m["wav"], format="audio/wav")
        if "svg" in m:
            caption = f"score ({tok.meter_of(m['tokens'])}, key estimated from the notes)"
            st.image(m["svg"].decode("utf-8"), caption=caption)
        cols = st.columns(3)
        cols[0].download_button("Download MIDI", m["midi"], f"melody_{i + 1:02d}.mid", "audio/midi", key=f"{prefix}dl_{i}",
                                on_click="ignore")
        if "musicxml" in m:
            cols[1].download_button("Download MusicXML", m["musicxml"], f"melody_{i + 1:02d}.musicxml",
                                    "application/vnd.recordare.musicxml+xml", key=f"{prefix}dl_xml_{i}", on_click="ignore")
            cols[2].download_button("Download ABC", m["abc"], f"melody_{i + 1:02d}.abc", "text/vnd.abc",
                                    key=f"{prefix}dl_abc_{i}", on_click="ignore")


# ---------------------------------------------------------------- 4. evaluate


def evaluate_tab(ws: str) -> None:
    """Did training help? The listening test of a run's models against the held-out songs."""
    st.subheader("Did training help?")
    runs, data = list_runs(ws), dataset_dir(ws)
    if not runs or data is None:
        st.info("Train a model on a prepared dataset first.")
        return
    st.caption("A fresh critic, trained here and now, tries to tell 8-bar melodies from each model, written as "
               "Generate writes them, from the openings of the songs held out of training. Lower is better: "
               "0.5 means it cannot tell them from your songs.")
    name = st.selectbox("Model", runs, key="eval_run", format_func=lambda run: run_label(ws, run))
    run_dir = os.path.join(ws, "runs", name)
    if (held_out := read_report(data).valid_pieces) < 2:
        st.info(f"The evaluation needs at least 2 songs held out of training, and this dataset holds out {held_out} "
                "(one song in ten): prepare about 15 songs or more.")
        return
    job = evaluation_job(run_dir)
    training = (train := current_job(ws)) is not None and train.alive() and train.run_dir == run_dir
    busy = job is not None and job.alive()
    if st.button("Evaluate", key="evaluate", type="primary", disabled=busy or training,
                 help="wait for the training to end (or stop it)" if training else
                 f"{SETTINGS['melodies']} melodies per model, two critic seeds: about a minute for the Fast demo"):
        EvaluationJob(run_dir, data, device()).start()
        st.rerun()
    if job is not None and (busy or job.snapshot().status == "error"):
        st.fragment(run_every=1.0 if busy else None)(evaluation_progress)(job)
    if (stored := stored_evaluation(run_dir)) is not None:
        show_evaluation(stored)


def evaluation_progress(job: EvaluationJob) -> None:
    """Polled once a second while an evaluation runs; reruns the page when it ends."""
    state = job.snapshot()
    if state.status in ("done", "error") and not st.session_state.get(f"shown_{id(job)}"):
        st.session_state[f"shown_{id(job)}"] = True
        st.rerun(scope="app")
    if state.error:
        st.error(state.error)
    elif state.status == "waiting":
        st.caption("Waiting for another evaluation on this server to finish")
    else:
        st.progress(min(state.done / state.total, 1.0), text=f"Evaluating: {state.stage or 'loading'}")


def show_evaluation(stored: dict) -> None:
    """The stored evaluation: the reading, the critic per model, rhythm and form, note lengths and
    pitch classes against the held-out songs, and the validation NLL."""
    result = stored["result"]
    listening = result.get("listening")
    if not listening:
        st.info("This dataset has no bar lines: the listening test needs the Bar lines encoding.")
        return
    kind, sentence = verdict(listening)
    {"closer": st.success, "worse": st.warning}.get(kind, st.info)(sentence)
    if listening["held_out"] < FEW_HELD_OUT:
        st.warning(f"Only {listening['held_out']} songs are held out of training, so these figures are rough: a "
                   "critic learns little from so few. More songs make them firmer.")
    rows = pd.DataFrame(listening["rows"])
    real = float(rows.loc[rows["model"] == "real", "critic"].iloc[0])
    st.altair_chart(critic_chart(rows, real), width="stretch")
    st.caption(f"The dashed line is the floor: {real:.2f}, what your own training songs score against the held-out "
               "ones (about as low as a model can get). Whiskers: the spread over critic seeds. Markov-4: a "
               "simple chain that continues the last four notes, the baseline any model must beat. "
               f"{listening['held_out']} held-out songs; computed in {stored['seconds']:.0f} s by "
               f"`{stored['command']}`.")
    held = listening["held_out_stats"]
    windows = {r["model"]: r for r in result["rows"]}
    table = [{"": "held-out songs", "phrase repetition": held["phrase_rep"], "commonest note length's share":
              held["modal_duration"], "notes per bar": held["notes_per_bar"]}]
    for r in listening["rows"]:
        w = windows.get(r["model"], {})
        table.append({"": "training songs" if r["model"] == "real" else r["model"], "phrase repetition": r["phrase_rep"],
                      "commonest note length's share": r["modal_duration"], "notes per bar": r["notes_per_bar"],
                      **{f"{label} (overlap)": w.get("structure_overlap", {}).get(key) for key, label in STRUCTURE},
                      "validation NLL": w.get("valid_nll")})
    st.markdown("**Rhythm and form** (phrase repetition: the share of a melody's 4-note patterns that recur in it; "
                "overlaps: 1 = the same distribution as the held-out songs'; validation NLL: nats per token, lower "
                "is better)")
    st.dataframe(pd.DataFrame(table).set_index("").round(3), width="stretch")
    cols = st.columns(2)
    for col, key, title in zip(cols, ("durations", "pitch_classes"), ("Note lengths (quarter notes)",
                                                                         "Pitch classes (keys moved to C)")):
        col.markdown(f"**{title}**")
        col.altair_chart(histogram_chart(listening, key), width="stretch")


def critic_chart(rows: pd.DataFrame, real: float) -> alt.LayerChart:
    """Bars of the critic per model (whiskers: its spread), the real floor dashed, 0.5 dotted."""
    models = rows[rows["model"] != "real"].assign(low=lambda d: d.critic - d.critic_sd.fillna(0),
                                                  high=lambda d: d.critic + d.critic_sd.fillna(0))
    y = alt.Y("critic:Q", title="critic accuracy (lower is better)", scale=alt.Scale(domain=[0.0, 1.0]))
    x = alt.X("model:N", title=None, sort=list(models["model"]), axis=alt.Axis(labelAngle=0))
    bars = alt.Chart(models).mark_bar().encode(x=x, y=y, tooltip=["model", alt.Tooltip("critic:Q", format=".3f")])
    whiskers = alt.Chart(models).mark_rule().encode(x=x, y="low:Q", y2="high:Q")
    floor = alt.Chart(pd.DataFrame({"critic": [real]})).mark_rule(strokeDash=[6, 3], color="green").encode(y=y)
    chance = alt.Chart(pd.DataFrame({"critic": [0.5]})).mark_rule(strokeDash=[2, 2], color="grey").encode(y=y)
    return (bars + whiskers + floor + chance).properties(height=260)


def histogram_chart(listening: dict, key: str) -> alt.Chart:
    """Grouped bars of the held-out songs' and each model's shares in the histogram ``key``."""
    sides = {"held-out": listening["held_out_histograms"][key],
             **{r["model"]: r[key] for r in listening["rows"] if r["model"] in ("MLE", "best")}}
    order = list(listening["held_out_histograms"][key])
    data = pd.DataFrame([{"bin": b, "share": share, "melodies": side} for side, hist in sides.items()
                         for b, share in hist.items() if b in order])
    return alt.Chart(data, height=160).mark_bar().encode(
        x=alt.X("bin:N", sort=order, title=None, axis=alt.Axis(labelAngle=0)), xOffset="melodies:N", y=alt.Y("share:Q", title="share"),
        color=alt.Color("melodies:N", legend=alt.Legend(orient="bottom", title=None)))


# ---------------------------------------------------------------- models


@st.cache_data(max_entries=256, show_spinner=False)
def _progress_text(path: str, mtime: float) -> str:
    """'done/all' units of a checkpoint, or why it cannot be read; cached per file version (mtime)."""
    try:
        done, units = check_progress(read_checkpoint(path), path)
        return f"{done}/{units}"
    except UserError as exc:
        return f"unreadable: {str(exc).replace(path + ': ', '')}"


def best_model_of(run_dir: str) -> str:
    """Where the run's best model comes from (its newest metrics line that says), or "-"."""
    try:
        with open(os.path.join(run_dir, "metrics.jsonl"), encoding="utf-8") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return "-"
    for line in reversed(lines):
        try:
            best = json.loads(line).get("best_model")
        except (ValueError, AttributeError):
            continue
        if best:
            return best
    return "-"


def file_name(label: str) -> str:
    """A run's name as a download's file name: letters, digits, dots, dashes and underscores."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", label).strip("-.") or "run"


def models_tab(ws: str) -> None:
    st.subheader("Models")
    runs = list_runs(ws)
    if runs:
        rows = []
        for name in runs:
            path = os.path.join(ws, "runs", name, LAST)
            rows.append({"run": run_label(ws, name), "units done": _progress_text(path, os.path.getmtime(path)),
                         "best model": best_model_of(os.path.join(ws, "runs", name)),
                         "saved": time.strftime("%Y-%m-%d %H:%M", time.localtime(os.path.getmtime(path)))})
        st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
        name = st.selectbox("Run", runs, key="dl_run", format_func=lambda run: run_label(ws, run))
        run_dir = os.path.join(ws, "runs", name)
        cols = st.columns(2)
        with open(os.path.join(run_dir, LAST), "rb") as fh:
            cols[0].download_button("Download checkpoint", fh.read(), f"{file_name(run_label(ws, name))}.pt", "application/octet-stream",
                                    key="dl_ckpt", on_click="ignore")
        training = (job := current_job(ws)) is not None and job.alive() and job.run_dir == run_dir
        if cols[1].button("Delete run", key="delete_run", disabled=training,
                          help="stop its training first" if training else "removes its checkpoints and metrics"):
            shutil.rmtree(run_dir, ignore_errors=True)
            st.rerun()
    else:
        st.caption("No models in this session yet.")
    # a new uploader after each added checkpoint: the file just added is not offered again
    added_count = st.session_state.setdefault("added_checkpoints", 0)
    upload = st.file_uploader("Upload a checkpoint (.pt; loaded safely, weights only)", type=["pt"],
                              key=f"ckpt_upload_{added_count}")
    if upload is not None and st.button("Add uploaded checkpoint", key="add_ckpt"):
        run_dir = new_run_folder(os.path.join(ws, "runs"), "uploaded-")
        path = os.path.join(run_dir, LAST)
        with open(path, "wb") as fh:
            fh.write(upload.getvalue())
        try:
            load_run(path)
            with open(os.path.join(run_dir, RUN_NAME), "w", encoding="utf-8") as fh:
                fh.write(f"{os.path.splitext(upload.name)[0]} (uploaded)")
        except (UserError, MemoryError) as exc:
            os.remove(path)
            os.rmdir(run_dir)
            st.error(f"{upload.name}: {failure_line(exc, 'loading it')}".replace(path + ": ", ""))
        else:  # run the page again: the tabs drawn before this one (Generate) list the new run
            st.session_state.added_checkpoint = upload.name
            st.session_state.added_checkpoints += 1
            st.rerun()
    if (added := st.session_state.pop("added_checkpoint", None)) is not None:
        st.success(f"Added {added}")
    st.divider()
    busy = (job := current_job(ws)) is not None and job.alive()
    st.caption("This session's folder is reached through the `ws=` part of the page address: whoever has the "
               "address has the session, like a private link. Deleting it removes its dataset, runs and melodies.")
    if st.button("Delete this session's folder", key="delete_workspace", disabled=busy or not os.path.isdir(ws),
                 help="stop the training first" if busy else None):
        shutil.rmtree(ws, ignore_errors=True)
        st.session_state.ws = uuid.uuid4().hex
        st.rerun()


# ---------------------------------------------------------------- page


def main() -> None:
    st.set_page_config(page_title="seqgan-music", page_icon="🎵", layout="wide")
    st.title("seqgan-music")
    st.caption(f"Train a SeqGAN on melodies, listen to what it writes. Device: {describe_device(device())} · audio: "
               + ("FluidSynth, General MIDI SoundFont" if fluidsynth_available() else "built-in synthesizer"))
    if not signed_in():
        return
    ws = workspace()
    tabs = st.tabs(TABS, key="tab", bind="query-params")  # a reload opens the tab that was open
    for tab, view in zip(tabs, (songs_tab, train_tab, generate_tab, evaluate_tab, models_tab)):
        with tab:
            view(ws)


main()
