"""4 · Evaluate: did training help? The listening test of a run's models against the held-out
songs (:mod:`seqgan_music.evaluation_job`), its reading, chart, table and histograms."""

from __future__ import annotations

import os

import altair as alt
import pandas as pd
import streamlit as st

from seqgan_music.dataset import read_report
from seqgan_music.evaluation_job import SETTINGS, EvaluationJob, evaluation_job, stored_evaluation, verdict
from seqgan_music.web.page import (
    current_job,
    dataset_dir,
    device,
    list_runs,
    run_label,
)

STRUCTURE = [("tonic_ending", "tonic endings"), ("downbeat_share", "downbeats"), ("key_agreement", "in key")]
FEW_HELD_OUT = 10  # below this many held-out songs the Evaluate tab calls its figures rough


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
