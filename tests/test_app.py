"""AppTest (streamlit.testing) flows of app.py and its tabs (seqgan_music/web): no browser, the real script and package."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hostile import CodeRunningPickle
from midi_factory import random_melody_pm, song_pm, to_bytes
from streamlit.testing.v1 import AppTest

from seqgan_music.config import DEFAULT_DRAFTS
from seqgan_music.jobs import latest_job
from seqgan_music.tokenizer import Tokenizer

APP = str(Path(__file__).resolve().parents[1] / "app.py")


@pytest.fixture(autouse=True)
def _app_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SEQGAN_MUSIC_APP_DIR", str(tmp_path / "app"))


def new_session(ws: str | None = None) -> AppTest:
    """A fresh page load; with ``ws`` the address of an existing workspace (a reload)."""
    at = AppTest.from_file(APP, default_timeout=120)
    if ws is not None:
        at.query_params["ws"] = ws
    at.run()
    assert not at.exception
    return at


def ws_dir(at: AppTest) -> str:
    return os.path.join(os.environ["SEQGAN_MUSIC_APP_DIR"], at.session_state["ws"])


def job_of(at: AppTest):
    """The training the page shows: the newest one started in its workspace."""
    return latest_job(os.path.join(ws_dir(at), "runs"))


def generated(at: AppTest) -> list[dict]:
    """The melodies the page keeps in its workspace: MIDI and WAV bytes, tokens, rewards."""
    folder = os.path.join(ws_dir(at), "generated")
    with open(os.path.join(folder, "melodies.json"), encoding="utf-8") as fh:
        listing = json.load(fh)["melodies"]
    return [dict(m, midi=Path(folder, f"melody_{i + 1:02d}.mid").read_bytes(),
                 wav=Path(folder, f"melody_{i + 1:02d}.wav").read_bytes()) for i, m in enumerate(listing)]


def upload(at: AppTest, files) -> AppTest:
    at.file_uploader(key="uploads").set_value([(name, data, "audio/midi") for name, data in files])
    at.run()
    at.button(key="prepare").click().run()
    assert not at.exception
    return at


SONGS = [(f"tune_{i}.mid", to_bytes(random_melody_pm(i))) for i in range(5)] + [("band.mid", to_bytes(song_pm(3)))]


def wait_for_job(at: AppTest, timeout: float = 120.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        state = job_of(at).snapshot()
        if state.status not in ("starting", "running", "stopping"):
            return state
        time.sleep(0.2)
    raise AssertionError("training did not finish")


def train_tiny(at: AppTest) -> None:
    at.selectbox(key="preset").set_value("Tiny (tests)").run()
    at.button(key="start").click().run()
    assert not at.error, [e.value for e in at.error]
    assert wait_for_job(at).status == "done"
    at.run()


def test_upload_shows_pieces_skips_and_training_melodies():
    at = upload(new_session(), SONGS + [("broken.mid", b"not midi at all"), ("empty.mid", b"")])
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Pieces"] == "6" and metrics["Skipped"] == "2"
    skipped = at.dataframe[0].value
    assert set(skipped["source"]) == {"broken.mid", "empty.mid"}
    assert any("not a readable MIDI" in r for r in skipped["reason"]) and any("empty" in r for r in skipped["reason"])
    assert len(at.get("audio")) >= 3 and len(at.get("image")) >= 3


def test_zip_upload_and_all_bad_upload_errors():
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in SONGS[:3]:
            zf.writestr(f"folder/{name}", data)
    at = upload(new_session(), [("songs.zip", buf.getvalue())])
    assert {m.label: m.value for m in at.metric}["Pieces"] == "3"
    bad = upload(new_session(), [("junk.mid", b"\x00\x01garbage")])
    assert any("no usable melodies" in e.value for e in bad.error)


def test_builtin_collection(monkeypatch, corpus_cache):
    monkeypatch.setenv("SEQGAN_MUSIC_CACHE", corpus_cache)  # the same parse as the dataset test's
    at = new_session()
    at.radio(key="source_kind").set_value("Built-in collection").run()
    at.selectbox(key="builtin").set_value("airds").run()
    at.button(key="prepare").click().run()
    assert not at.exception
    assert int({m.label: m.value for m in at.metric}["Pieces"]) > 1000


@pytest.mark.slow
def test_train_tiny_then_generate_with_downloads():
    at = upload(new_session(), SONGS)
    train_tiny(at)
    assert any("**Status:** done" in m.value for m in at.markdown)
    assert any(c.value.startswith("Best model so far") for c in at.caption)
    at.number_input(key="gen_num").set_value(2)
    at.number_input(key="gen_bars").set_value(2)
    at.button(key="generate").click().run()
    assert not at.exception and not at.error
    labels = [b.label for b in at.get("download_button")]
    assert labels.count("Download MIDI") == 2 and "Download all as .zip" in labels and "Download checkpoint" in labels
    assert labels.count("Download MusicXML") == 2 and labels.count("Download ABC") == 2
    folder = os.path.join(ws_dir(at), "generated")
    assert Path(folder, "melody_01.svg").read_text().count('class="note"') >= 1
    assert Path(folder, "melody_01.abc").read_text().startswith("X:1")
    melodies = generated(at)
    assert all(m["midi"].startswith(b"MThd") and m["wav"].startswith(b"RIFF") for m in melodies)
    assert all(min(m["rewards"]) >= 0 and max(m["rewards"]) <= 1 for m in melodies)
    tok = Tokenizer.from_dict(json.loads(Path(ws_dir(at), "dataset", "tokenizer.json").read_text()))
    tokens = np.asarray(melodies[0]["tokens"])  # the app's default encoding: 2 bars of 4/4 (the songs' metre), bar lines first
    assert len(tokens) == 2 * (4 * 4 + 1) and np.isin(tokens[[0, 17]], tok.bar_tokens).all()
    assert at.session_state["gen_which"] == "Best"
    assert at.selectbox(key="gen_run").options == ["6 songs · Tiny (tests)"]  # the run's name, not a timestamp
    assert len(at.caption) and {"tune_0.mid", "tune_1.mid"} <= {c.value for c in at.caption}  # previews name their songs
    at.radio(key="gen_which").set_value("MLE")
    at.selectbox(key="gen_key").set_value("G major")
    at.button(key="generate").click().run()
    assert not at.exception and not at.error and len(generated(at)) == 2
    folder = os.path.join(ws_dir(at), "generated")
    assert all("\nK:G\n" in Path(folder, f"melody_0{i}.abc").read_text() for i in (1, 2))  # in G major, as asked
    at.selectbox(key="gen_key").set_value("as learnt")
    at.number_input(key="gen_bars").set_value(6)
    at.checkbox(key="gen_model_ends").check()
    at.button(key="generate").click().run()
    assert not at.exception and not at.error
    lengths = [tok.bars_in(m["tokens"]) for m in generated(at)]  # each tune as long as the model made it, END cut off
    assert all(1 <= n <= 6 for n in lengths) and not any(tok.end_token in m["tokens"] for m in generated(at))


def test_train_tab_says_how_long_the_run_will_take_before_start():
    """Before Start the page times the chosen preset on the dataset in the background and shows
    the expected time; the job started then carries the estimate, so its clock has figures for
    the phases it has not run yet."""
    at = upload(new_session(), SONGS)
    at.selectbox(key="preset").set_value("Tiny (tests)").run()
    deadline = time.time() + 120
    while not any(c.value.startswith("Expected time on this machine") for c in at.caption) and time.time() < deadline:
        assert any(c.value.startswith("Timing this run") for c in at.caption)
        time.sleep(0.5)
        at.run()
    assert any(c.value.startswith("Expected time on this machine: about ") for c in at.caption)
    at.button(key="start").click().run()
    assert wait_for_job(at).status == "done"
    state = job_of(at).snapshot()
    assert state.clock.estimate is not None and state.clock.unit_seconds().keys() == {"mle", "d_pretrain", "adversarial"}


def test_train_tab_starts_from_the_folk_base_model_by_default():
    """Fast demo on a few uploaded songs: *Start from* offers the folk base model first, and a run
    started so has the base model's generator at its start; the whole-tune preset is offered its
    own base model; a preset whose generator has no base model says why it starts from scratch."""
    from seqgan_music.base_model import BASE_FILES
    from seqgan_music.checkpoint import load_checkpoint

    at = upload(new_session(), SONGS)
    assert at.radio(key="start_from").value == "The folk base model"
    assert any("learns your 6 songs on top" in c.value for c in at.caption)
    for knob in ("mle_epochs", "d_pretrain_rounds", "adv_rounds"):
        at.number_input(key=f"{knob}_demo").set_value(0)
    at.run()
    at.button(key="start").click().run()
    assert wait_for_job(at).status == "done"
    at.run()
    assert any("started from the folk base model" in c.value for c in at.caption)
    base = load_checkpoint(BASE_FILES["demo"]).generator.state_dict()
    got = load_checkpoint(os.path.join(job_of(at).run_dir, "best.pt")).generator.state_dict()
    assert all(torch.equal(got[k], base[k]) for k in base)
    at.selectbox(key="preset").set_value("Whole tunes (CPU)").run()  # the whole-tune base model fits it
    assert at.radio(key="start_from").value == "The folk base model"
    at.selectbox(key="preset").set_value("Tiny (tests)").run()
    assert not [r for r in at.radio if r.key == "start_from"]
    assert any(c.value.startswith("Starts from scratch: the folk base model does not fit") for c in at.caption)


def test_silent_melodies_are_called_out(monkeypatch):
    import seqgan_music.melody_request

    at = upload(new_session(), SONGS)
    train_tiny(at)
    asked = []
    monkeypatch.setattr(seqgan_music.melody_request, "generate_tokens",
                        lambda run, num, steps, *a, **k: asked.append(k["drafts"]) or torch.zeros(num, steps, dtype=torch.long))
    at.number_input(key="gen_num").set_value(2)
    at.button(key="generate").click().run()
    assert not at.exception
    assert asked == [DEFAULT_DRAFTS]  # the drafts control reaches generate, at its default
    assert any("2 of 2 melodies have no notes" in w.value for w in at.warning)
    assert sum("silent: no notes" in m.value for m in at.markdown) == 2


def test_pause_stop_and_resume_a_run():
    at = upload(new_session(), SONGS)
    at.selectbox(key="preset").set_value("Tiny (tests)").run()
    at.number_input(key="mle_epochs_tiny").set_value(300).run()
    at.button(key="start").click().run()
    job = job_of(at)
    deadline = time.time() + 60
    while job.snapshot().unit < 2 and time.time() < deadline:
        time.sleep(0.05)
    at.button(key="pause").click().run()
    time.sleep(0.5)  # a unit in flight may still end
    paused_at = job.snapshot().unit
    time.sleep(1.0)
    assert job.snapshot().unit == paused_at and job.alive()  # paused: no unit ends, the thread waits
    at.button(key="stop").click().run()
    assert wait_for_job(at).status == "stopped"
    at.run()
    assert any("barely trained model" in w.value for w in at.warning)  # Generate says so of a stopped run
    at.button(key="resume").click().run()  # continues the stopped run from its checkpoint
    resumed = job_of(at)
    assert resumed is not job and resumed.run_dir == job.run_dir
    deadline = time.time() + 60
    while resumed.snapshot().status == "starting" and time.time() < deadline:
        time.sleep(0.05)  # the worker loads the checkpoint before it reports "running"
    assert resumed.snapshot().resumed_from >= paused_at
    resumed.stop()
    resumed.join(30)


def test_sessions_are_isolated():
    a = upload(new_session(), SONGS)
    train_tiny(a)
    b = new_session()
    assert a.session_state["ws"] != b.session_state["ws"]
    assert not any(m.label == "Pieces" for m in b.metric)
    assert any("Train a model" in i.value for i in b.info)  # b sees no runs of a


def test_training_cap_per_server(monkeypatch):
    monkeypatch.setenv("SEQGAN_MUSIC_MAX_TRAININGS", "1")
    a = upload(new_session(), SONGS)
    a.selectbox(key="preset").set_value("Tiny (tests)").run()
    a.number_input(key="mle_epochs_tiny").set_value(500).run()
    a.button(key="start").click().run()
    b = upload(new_session(), SONGS)
    b.selectbox(key="preset").set_value("Tiny (tests)").run()
    b.button(key="start").click().run()
    assert any("server is busy" in e.value for e in b.error)
    job_of(a).stop()
    job_of(a).join(30)


def test_checkpoint_upload_is_validated(tmp_path):
    at = new_session()
    marker = tmp_path / "pwned"


    path = tmp_path / "evil.pt"
    torch.save({"format": "seqgan-music", "version": 1, "x": CodeRunningPickle(marker)}, str(path))
    at.file_uploader(key="ckpt_upload_0").set_value(("evil.pt", path.read_bytes(), "application/octet-stream"))
    at.run()
    at.button(key="add_ckpt").click().run()
    assert any("not a loadable" in e.value for e in at.error) and not marker.exists()
    assert any("No models" in c.value for c in at.caption)
    assert not any("PyTorch 2.6" in e.value or "Weights only" in e.value for e in at.error)  # our sentence only


def test_an_added_checkpoint_can_generate_at_once(tiny_run_dir):
    """Adding an uploaded checkpoint draws the page again, so the Generate tab (drawn before the
    Models tab) offers the new model without another click, the page says it was added, and the
    uploader is emptied."""
    at = new_session()
    at.file_uploader(key="ckpt_upload_0").set_value(
        ("mine.pt", Path(tiny_run_dir, "last.pt").read_bytes(), "application/octet-stream"))
    at.run()
    assert "generate" not in [b.key for b in at.button]
    at.button(key="add_ckpt").click().run()
    assert not at.exception and any(s.value == "Added mine.pt" for s in at.success)
    # the uploader is empty again: the same file cannot be added twice by a second click
    assert "add_ckpt" not in [b.key for b in at.button]
    assert len(os.listdir(os.path.join(ws_dir(at), "runs"))) == 1
    at.number_input(key="gen_num").set_value(1)
    at.button(key="generate").click().run()
    assert not at.exception and not at.error and len(generated(at)) == 1


@pytest.mark.slow
def test_reload_reattaches_to_the_workspace(tmp_path):
    """A reload (the same address, a new session) finds the running training with its live view and
    controls, the prepared dataset and the generated melodies; Stop works from the new page."""
    a = upload(new_session(), SONGS)
    train_tiny(a)
    a.number_input(key="gen_num").set_value(2)
    a.button(key="generate").click().run()
    a.selectbox(key="preset").set_value("Tiny (tests)").run()
    a.number_input(key="mle_epochs_tiny").set_value(400).run()
    a.button(key="start").click().run()
    job = job_of(a)
    b = new_session(a.session_state["ws"])
    assert {m.label: m.value for m in b.metric}["Pieces"] == "6"
    assert sum("Melody" in m.value for m in b.markdown) == 2 and len(b.get("audio")) >= 2 + 3
    assert any("**Status:**" in m.value for m in b.markdown)
    assert not b.button(key="stop").disabled and b.button(key="start").disabled
    b.button(key="stop").click().run()
    job.join(60)
    assert job.snapshot().status == "stopped"


@pytest.mark.slow
def test_bad_runs_are_refused_or_deletable(tmp_path):
    """A checkpoint without 'progress' is refused at upload; one already in the workspace (an older
    version's) is listed as unreadable instead of breaking the tab, and Delete removes a run."""
    a = upload(new_session(), SONGS)
    train_tiny(a)
    runs = os.path.join(ws_dir(a), "runs")
    (name,) = os.listdir(runs)
    state = torch.load(os.path.join(runs, name, "last.pt"), weights_only=True)
    del state["progress"]
    torch.save(state, str(tmp_path / "old.pt"))
    a.file_uploader(key="ckpt_upload_0").set_value(("old.pt", (tmp_path / "old.pt").read_bytes(), "application/octet-stream"))
    a.run()
    a.button(key="add_ckpt").click().run()
    assert any("progress" in e.value for e in a.error) and os.listdir(runs) == [name]
    os.makedirs(os.path.join(runs, "planted"))
    (tmp_path / "old.pt").rename(os.path.join(runs, "planted", "last.pt"))
    a.run()
    assert not a.exception
    table = a.dataframe[-1].value
    assert any(v.startswith("unreadable") for v in table["units done"])
    a.selectbox(key="dl_run").set_value("planted").run()
    a.button(key="delete_run").click().run()
    assert not a.exception and os.listdir(runs) == [name]


def test_optional_server_password():
    """With a password in Streamlit secrets, nothing of the app shows (no workspace is touched)
    until a session gives it; a wrong one is refused."""
    at = AppTest.from_file(APP, default_timeout=60)
    at.secrets["password"] = "s3cret"
    at.run()
    assert not at.exception and not at.tabs and not os.path.exists(os.environ["SEQGAN_MUSIC_APP_DIR"])
    at.text_input(key="password").set_value("guess")
    at.button(key="sign_in").click().run()
    assert any("Wrong password" in e.value and "after 1 s" in e.value for e in at.error) and not at.tabs
    started = time.perf_counter()
    at.button(key="sign_in").click().run()  # judged only after the delay the failure earned
    assert time.perf_counter() - started >= 1.0 and any("after 2 s" in e.value for e in at.error)
    at.text_input(key="password").set_value("s3cret")
    at.button(key="sign_in").click().run()
    assert not at.exception and len(at.tabs) == 5


def test_running_out_of_memory_on_an_upload_is_one_line_and_keeps_the_dataset(monkeypatch):
    import seqgan_music.web.songs_tab

    at = upload(new_session(), SONGS)
    manifest = Path(ws_dir(at), "dataset", "manifest.json").read_bytes()

    def out_of_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(seqgan_music.web.songs_tab, "prepare", out_of_memory)
    at.button(key="prepare").click().run()
    assert not at.exception
    assert [e.value for e in at.error] == ["The server ran out of memory reading these songs (the dataset prepared "
                                           "before is kept); try fewer or smaller files."]
    assert Path(ws_dir(at), "dataset", "manifest.json").read_bytes() == manifest
    assert {m.label: m.value for m in at.metric}["Pieces"] == "6"


def test_workspaces_are_created_lazily_tidied_and_deletable(monkeypatch):
    """A visit stores nothing; an old workspace without models is tidied away, one with a run is
    kept; the user can delete their own workspace."""
    root = os.environ["SEQGAN_MUSIC_APP_DIR"]
    at = new_session()
    assert not os.path.exists(ws_dir(at))
    a = upload(new_session(), SONGS)
    train_tiny(a)
    stale, keep = os.path.join(root, "a" * 32), ws_dir(a)
    os.makedirs(os.path.join(stale, "dataset"))
    for path in (stale, keep):
        os.utime(path, (time.time() - 30 * 86400,) * 2)
    monkeypatch.setenv("SEQGAN_MUSIC_EMPTY_WORKSPACE_DAYS", "7")
    import streamlit

    streamlit.cache_resource.clear()
    new_session()
    assert not os.path.exists(stale) and os.path.exists(keep)
    a.run()
    a.button(key="delete_workspace").click().run()
    assert not a.exception and not os.path.exists(keep) and ws_dir(a) != keep


@pytest.mark.slow
def test_primer_is_continued_and_counted_apart(tmp_path):
    """With a primer, 'Length in bars' is the new part; the kept melodies record where it starts and
    the mean reward shown is that of the new notes."""
    at = upload(new_session(), SONGS)
    train_tiny(at)
    at.number_input(key="gen_num").set_value(1)
    at.number_input(key="gen_bars").set_value(2)
    at.file_uploader(key="primer").set_value(("primer.mid", to_bytes(random_melody_pm(11, notes=5)), "audio/midi"))
    at.run()
    at.button(key="generate").click().run()
    assert not at.exception and not at.error
    with open(os.path.join(ws_dir(at), "generated", "melodies.json"), encoding="utf-8") as fh:
        listing = json.load(fh)
    primer_steps = listing["primer_steps"]
    (melody,) = listing["melodies"]
    # bar lines: the primer is whole bars of 4/4 (BAR + 16 steps each), then 2 new bars
    assert primer_steps > 0 and primer_steps % 17 == 0 and len(melody["tokens"]) == primer_steps + 2 * 17
    new_mean = sum(melody["rewards"][primer_steps:]) / (len(melody["rewards"]) - primer_steps)
    assert any(f"mean reward of the new notes {new_mean:.2f}" in m.value for m in at.markdown)
    charts = " ".join(str(c.proto) for c in at.get("vega_lite_chart"))
    assert "D accuracy on real tunes" in charts and "training unit" in charts and "d_acc_real" not in charts
    legends = [json.loads(c.proto.spec)["encoding"]["color"]["legend"] for c in at.get("vega_lite_chart")]
    assert "D accuracy on held-out real tunes" in charts and all(leg["orient"] == "bottom" for leg in legends)


@pytest.mark.parametrize("low, high", [(58, 63), (46, 76), (53, 84), (40, 90), (0, 127)])
def test_piano_roll_pitch_labels_never_crowd(low, high):
    """Ticks evenly spaced from C, every C within six octaves among them, at most 7 labels, and
    none a semitone from another once the range is wider than 6 (the old rule put C5 beside C#5)."""
    from seqgan_music.plots import pitch_ticks

    ticks = pitch_ticks(low, high)
    gaps = set(np.diff(ticks).tolist())
    assert len(gaps) == 1 and 1 < len(ticks) <= 7 and all(low <= t <= high for t in ticks)
    assert high - low <= 6 or min(gaps) >= 2
    if high - low <= 72:
        assert {p for p in range(low, high + 1) if p % 12 == 0} <= set(ticks)


def test_the_page_warns_when_d_learns_the_songs_by_heart_and_says_what_the_trainer_does():
    from seqgan_music.jobs import JobState

    def rounds(*unseen):
        return JobState(metrics=[{"phase": "mle", "valid_nll": 1.0}]
                        + [{"phase": "adversarial", "d_real_unseen": u} for u in unseen])

    assert rounds(0.6, 0.1, 0.2, 0.15).memorising() == pytest.approx(0.15)
    assert rounds(0.1, 0.2, 0.6).memorising() is None  # D still calls unseen songs real
    assert rounds(0.1, 0.1).memorising() is None  # too few rounds to say
    moved = JobState(metrics=[{"phase": "adversarial", "d_augment": p} for p in (0.25, 0.5, 0.4)])
    assert moved.pitch_moved() == pytest.approx(0.4)  # the trainer acts on it: D's windows moved in pitch
    assert JobState(metrics=[{"phase": "adversarial", "d_augment": 0.0}]).pitch_moved() is None


def workspace_with_run(data: str, run: str, name: str = "20261207-120000") -> str:
    """A workspace id whose folder holds the dataset ``data`` and the run ``run`` (as if trained here)."""
    ws = "ab" * 16
    root = Path(os.environ["SEQGAN_MUSIC_APP_DIR"], ws)
    shutil.copytree(data, root / "dataset")
    shutil.copytree(run, root / "runs" / name)
    return ws


def listening_result(best: float, mle: float, sd: float = 0.01) -> dict:
    """A hand-made evaluation as the app stores it: the listening test's rows and one window row per model."""
    hist = {"durations": {"0.5": 0.6, "1": 0.4}, "pitch_classes": {"C": 0.5, "G": 0.5}}
    shape = {"modal_duration": 0.6, "phrase_rep": 0.3, "notes_per_bar": 5.0, **hist}
    rows = [{"model": m, "critic": c, "critic_sd": s, **shape}
            for m, c, s in (("MLE", mle, sd), ("best", best, sd), ("last", 0.7, sd), ("Markov-4", 0.9, 0.0),
                            ("real", 0.51, 0.02))]
    windows = [{"model": m, "valid_nll": 1.0, "structure_overlap": {"tonic_ending": 0.9, "downbeat_share": 0.8,
                                                                   "key_agreement": 0.7}} for m in ("MLE", "best", "last")]
    listening = {"rows": rows, "held_out": 12, "held_out_stats": shape, "held_out_histograms": hist}
    return {"result": {"listening": listening, "rows": windows}, "seconds": 42.0, "command": "seqgan-music evaluate ..."}


@pytest.mark.parametrize("best, mle, shown, words", [
    (0.60, 0.66, "success", "closer to your songs"),
    (0.655, 0.66, "info", "no better than the MLE model"),
    (0.72, 0.66, "warning", "further from your songs"),
])
def test_the_evaluate_tab_reads_best_against_mle(bars_run_dir, best, mle, shown, words):
    """The Evaluate tab shows a stored evaluation (after any reload): the reading in its colour,
    the chart, the rhythm-and-form table and the two histograms."""
    data, run = bars_run_dir
    ws = workspace_with_run(data, run)
    stored = Path(os.environ["SEQGAN_MUSIC_APP_DIR"], ws, "runs", "20261207-120000", "evaluation.json")
    stored.write_text(json.dumps(listening_result(best, mle)))
    at = new_session(ws)
    assert any(words in e.value for e in getattr(at, shown)), [e.value for e in getattr(at, shown)]
    assert len(at.get("vega_lite_chart")) >= 3  # the critic and the two histograms
    table = at.dataframe[0].value
    assert list(table.index)[:2] == ["held-out songs", "MLE"] and "validation NLL" in table.columns
    assert any("computed in 42 s" in c.value for c in at.caption)


def test_the_evaluate_tab_runs_an_evaluation_and_compare_draws_both_models(bars_run_dir, monkeypatch):
    """Evaluate runs the job and shows its reading when it ends; Compare MLE and best draws both
    models side by side, and the blind mode hides the names until the user picks one, then counts
    the pick in the run folder."""
    from seqgan_music import evaluation_job

    monkeypatch.setattr(evaluation_job, "SETTINGS", {**evaluation_job.SETTINGS, "num": 24, "melodies": 6})
    data, run = bars_run_dir
    at = new_session(workspace_with_run(data, run))
    at.button(key="evaluate").click().run()
    job = evaluation_job.evaluation_job(os.path.join(ws_dir(at), "runs", "20261207-120000"))
    job.join(300)
    at.run()
    assert not at.exception and job.snapshot().status == "done"
    assert any("than the MLE model" in e.value for e in [*at.success, *at.info, *at.warning])
    at.number_input(key="gen_num").set_value(1)
    at.number_input(key="gen_bars").set_value(2)
    at.checkbox(key="gen_compare").check()
    at.button(key="generate").click().run()
    assert not at.exception and not at.error
    assert [m.value for m in at.markdown if m.value.startswith("###")] == ["### MLE", "### Best"]
    assert len(at.get("audio")) >= 2
    at.checkbox(key="gen_blind").check()
    at.button(key="generate").click().run()
    assert [m.value for m in at.markdown if m.value.startswith("###")] == ["### A", "### B"]
    at.button(key="pick_A").click().run()
    picks = json.loads(Path(ws_dir(at), "runs", "20261207-120000", "picks.json").read_text())
    assert sum(picks.values()) == 1 and any("Your blind picks for this run" in i.value for i in at.info)


def test_the_whole_tune_preset_asks_for_its_windows(bars_run_dir):
    """On a dataset of 2-bar windows the Whole tunes preset says so and its button sets the Songs
    tab to 8-bar windows."""
    data, run = bars_run_dir
    at = new_session(workspace_with_run(data, run))
    assert any(c.value.startswith("Windows: 2 bars") for c in at.caption)
    at.selectbox(key="preset").set_value("Whole tunes (CPU)").run()
    assert any("made for 8-bar windows" in w.value for w in at.warning)
    assert not any("Timing this run" in c.value for c in at.caption)  # no timing of the wrong windows
    at.button(key="prepare_windows").click().run()
    assert at.session_state["window_bars"] == 8 and at.session_state["tab"] == "1 · Songs"
    assert any("press Prepare dataset" in i.value for i in at.info)


def test_a_reloaded_page_prepares_the_songs_uploaded_before():
    """The uploaded files are kept with the dataset: after a reload (an empty uploader) Prepare
    reads them again with the options chosen now."""
    a = upload(new_session(), SONGS)
    b = new_session(a.session_state["ws"])
    assert any("Prepare uses the 6 files you prepared before" in c.value for c in b.caption)
    b.selectbox(key="window_bars").set_value(1).run()
    b.button(key="prepare").click().run()
    assert not b.exception and not b.error
    tok = Tokenizer.from_dict(json.loads(Path(ws_dir(b), "dataset", "tokenizer.json").read_text()))
    assert tok.config.seq_len == tok.steps_for(1) and {m.label: m.value for m in b.metric}["Pieces"] == "6"
    assert "tune_0.mid" in {c.value for c in b.caption}  # the songs keep their names


def test_the_evaluate_tab_calls_figures_from_few_held_out_songs_rough(bars_run_dir):
    data, run = bars_run_dir
    ws = workspace_with_run(data, run)
    stored = listening_result(0.6, 0.66)
    stored["result"]["listening"]["held_out"] = 2
    Path(os.environ["SEQGAN_MUSIC_APP_DIR"], ws, "runs", "20261207-120000", "evaluation.json").write_text(json.dumps(stored))
    at = new_session(ws)
    assert any("Only 2 songs are held out" in w.value for w in at.warning)
