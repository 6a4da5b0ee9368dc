"""1 · Songs: upload songs or pick a built-in collection, prepare the dataset, hear what the model
will learn. The uploaded files are kept in the workspace so a reloaded page can prepare them again."""

from __future__ import annotations

import os
import shutil

import pandas as pd
import streamlit as st

from seqgan_music.dataset import load_dataset, prepare, read_report
from seqgan_music.errors import UserError
from seqgan_music.sources import BUILTIN
from seqgan_music.tokenizer import window_config
from seqgan_music.web.page import (
    dataset_dir,
    failure_line,
    manifest_entries,
    melody_view,
)

APP_ENCODINGS = {"Bar lines": "bars", "Grid only": "melody"}  # the Songs tab's encodings, label -> name
SONGS_FOLDER = "songs"  # in a workspace: the uploaded files the dataset was prepared from


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


def show_dataset(path: str, report) -> None:
    ds = load_dataset(path)
    usable = [e for e in manifest_entries(path) if "split" in e]  # in the order of ds.pieces
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
