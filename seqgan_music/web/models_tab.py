"""Models: the workspace's runs (progress, best model, checkpoint download, delete), uploaded
checkpoints, and deleting the workspace."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import uuid

import pandas as pd
import streamlit as st

from seqgan_music.checkpoint import LAST
from seqgan_music.errors import UserError
from seqgan_music.generate import load_run
from seqgan_music.run_folder import new_run_folder
from seqgan_music.web.page import (
    RUN_NAME,
    current_job,
    failure_line,
    list_runs,
    progress_text,
    run_label,
)


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
            rows.append({"run": run_label(ws, name), "units done": progress_text(path, os.path.getmtime(path)),
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
