"""seqgan-music in the browser: bring songs, train a SeqGAN, listen to new melodies, export MIDI.

Run with ``streamlit run app.py``. The page holds no model logic: it calls the seqgan_music
package, and each tab is a module of :mod:`seqgan_music.web`; this script signs in, finds the
workspace and draws the tabs. Each browser session works in its own folder (``runs/app/<workspace id>``, the id kept in
the page address so a reload finds its runs again); training runs in a background thread that
never calls Streamlit, and the page polls it once a second.
"""

from __future__ import annotations

import os
import re
import shutil
import time
import uuid

import streamlit as st

from seqgan_music.device import describe_device
from seqgan_music.jobs import latest_job
from seqgan_music.sign_in import PasswordGate
from seqgan_music.synth import fluidsynth_available
from seqgan_music.web.evaluate_tab import evaluate_tab
from seqgan_music.web.generate_tab import generate_tab
from seqgan_music.web.models_tab import models_tab
from seqgan_music.web.page import TABS, device
from seqgan_music.web.songs_tab import songs_tab
from seqgan_music.web.train_tab import train_tab

APP_ROOT = os.environ.get("SEQGAN_MUSIC_APP_DIR", os.path.join("runs", "app"))


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
