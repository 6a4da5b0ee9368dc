"""What every tab of the Streamlit page shares: the device, the workspace's dataset, runs and
training job, one-line failures, and a melody's piano roll and audio."""

from __future__ import annotations

import json
import os

import numpy as np
import streamlit as st
import torch

from seqgan_music.checkpoint import LAST, check_progress, read_checkpoint
from seqgan_music.device import resolve_device
from seqgan_music.errors import UserError
from seqgan_music.jobs import TrainingJob, latest_job
from seqgan_music.plots import piano_roll
from seqgan_music.synth import midi_to_wav
from seqgan_music.tokenizer import Tokenizer

TABS = ["1 · Songs", "2 · Train", "3 · Generate", "4 · Evaluate", "Models"]
RUN_NAME = "name.txt"  # in a run folder: the name its user gave the run


@st.cache_resource
def device() -> torch.device:
    return resolve_device("auto")


def failure_line(exc: UserError | MemoryError, doing: str) -> str:
    """The one line the page shows for a refused input or for running out of memory ``doing`` it."""
    if isinstance(exc, MemoryError):
        return f"The server ran out of memory {doing}; try fewer or smaller files."
    return str(exc)


@st.cache_data(max_entries=64, show_spinner=False)
def melody_media(tokenizer_json: str, tokens: tuple[int, ...]) -> tuple[np.ndarray, bytes]:
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
    image, wav = melody_media(json.dumps(tokenizer.to_dict()), tuple(int(t) for t in tokens))
    st.image(image)
    st.audio(wav, format="audio/wav")


def dataset_dir(ws: str) -> str | None:
    """The workspace's prepared dataset (kept in its folder, so a reload finds it), or None."""
    path = os.path.join(ws, "dataset")
    return path if os.path.exists(os.path.join(path, "manifest.json")) else None


def current_job(ws: str) -> TrainingJob | None:
    """The newest training started in this workspace (by this page, an earlier load of it, or another tab)."""
    return latest_job(os.path.join(ws, "runs"))


def manifest_entries(path: str) -> list[dict]:
    with open(os.path.join(path, "manifest.json"), encoding="utf-8") as fh:
        return json.load(fh)["entries"]


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


@st.cache_data(max_entries=256, show_spinner=False)
def progress_text(path: str, mtime: float) -> str:
    """'done/all' units of a checkpoint, or why it cannot be read; cached per file version (mtime)."""
    try:
        done, units = check_progress(read_checkpoint(path), path)
        return f"{done}/{units}"
    except UserError as exc:
        return f"unreadable: {str(exc).replace(path + ': ', '')}"
