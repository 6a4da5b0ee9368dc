"""3 · Generate: melodies from a run's MLE, best or last model as piano rolls, audio, scores and
downloads; *Compare* draws the same request from the MLE and best models, blind if asked."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import re
import shutil
import zipfile

import numpy as np
import streamlit as st
import torch

from seqgan_music.checkpoint import LAST, MODELS
from seqgan_music.config import DEFAULT_DRAFTS
from seqgan_music.errors import UserError
from seqgan_music.generate import load_run, primer_tokens, token_rewards
from seqgan_music.melody_request import MelodyRequest, melodies_for
from seqgan_music.metrics import KEYS
from seqgan_music.score import abc_text, musicxml_bytes, score_svg
from seqgan_music.synth import midi_to_wav
from seqgan_music.tokenizer import METERS, Tokenizer
from seqgan_music.web.page import (
    current_job,
    device,
    failure_line,
    list_runs,
    progress_text,
    roll,
    run_label,
)

MELODY_FILES = {"midi": "mid", "wav": "wav", "musicxml": "musicxml", "abc": "abc", "svg": "svg"}  # key -> suffix
COMPARE_FOLDERS = ("generated_a", "generated_b")  # in a workspace: the two sides of the newest comparison
PICKS_FILE = "picks.json"  # in a run folder: the user's blind picks, {model: count}
GENERATORS = {("MLE" if name == "mle" else name.capitalize()): name for name in MODELS}  # label -> model name
INSTRUMENTS = {"Piano": 0, "Electric piano": 4, "Vibraphone": 11, "Organ": 19, "Nylon guitar": 24, "Violin": 40,
               "Strings": 48, "Trumpet": 56, "Alto sax": 65, "Flute": 73, "Ocarina": 79, "Synth lead": 80}
AS_LEARNT = "as learnt"  # the Generate tab's metre and key choice: the primer's or the model's own


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
    progress = re.fullmatch(r"(\d+)/(\d+)", progress_text(last, os.path.getmtime(last)))
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
