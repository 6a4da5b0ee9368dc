"""One checkpoint format for the CLI and the app: atomic writes, weights-only loading, validation.

A checkpoint is a dict of plain values and tensors (no pickled objects)::

    format, version, run_config (dict), tokenizer (dict or None), progress (units done), units,
    generator, discriminator, rollout, reference (the frozen MLE generator), best_generator (state
    dicts), selection (the MLE model's judgement, best score and unit), g_opt (MLE), pg_opt (policy
    gradient; None: a fresh one), d_opt (optimizer state dicts), rng (torch and trainer generator
    states), nonfinite, structure (the form critic's state; None: fresh), form_real (the training
    windows' phrase-repetition and off-key histograms, :func:`structure_critic.real_form`; None
    without a tokenizer), d_augment (the share of D's windows moved in pitch, :mod:`d_augment`;
    None or absent for runs that never move them), d_judge (the moving average of D's weights that
    scores G, ``d_average``; None or absent for runs that score with D itself)

Version 2 has every field. Version 1 grew fields while it was current; its files are brought to
version 2 on reading, in one place (:func:`_from_version_1`).

``load_checkpoint`` uses ``torch.load(weights_only=True)``, so a crafted file cannot run code,
then checks the format, the configs and every tensor shape before anything uses it.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from typing import Any

import torch

from seqgan_music.config import RunConfig, from_dict, to_dict
from seqgan_music.errors import UserError
from seqgan_music.fileio import atomic_write_bytes
from seqgan_music.models import Discriminator, Generator
from seqgan_music.selection import fresh_selection
from seqgan_music.structure_critic import BINS
from seqgan_music.tokenizer import Tokenizer

FORMAT = "seqgan-music"
VERSION = 2
LAST = "last.pt"  # newest state of a run
MLE = "mle.pt"  # the state at the end of MLE pre-training, kept for MLE-vs-SeqGAN comparisons
BEST = "best.pt"  # the state whose generator the validation judgement rated best (selection.py)
MODELS = {"best": BEST, "mle": MLE, "last": LAST}  # the user's names for a run's three generators
# training settings of experiments measured and not kept (docs/experiments): runs saved before they
# went hold them; they are dropped on reading, so those runs load, generate and resume as they are
RETIRED_TRAIN_FIELDS = ("mle_lr_decay", "mle_whole_tunes", "mle_steps", "form_steps", "select_margin")
# G's settings that version-1 files saved before the fields existed lack: how those runs behaved
# (today's defaults are what the presets use)
VERSION_1_GENERATOR = {"max_bars": 16, "bars_left": False}


def save_checkpoint(path: str, state: dict[str, Any]) -> None:
    """Write ``state`` (see module doc) atomically: a kill at any moment keeps the old file."""
    buf = io.BytesIO()
    torch.save({"format": FORMAT, "version": VERSION, **state}, buf)
    atomic_write_bytes(path, buf.getvalue())


def read_checkpoint(path: str) -> dict[str, Any]:
    """Load the raw dict with weights only; any unreadable or foreign file is a UserError."""
    if not os.path.isfile(path):
        raise UserError(f"{path}: no such checkpoint")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError... for bad files
        why = ("it holds objects other than tensors and plain values, which are never loaded"
               if "weights only" in str(exc).lower() else "not a PyTorch file, or a damaged one")
        raise UserError(f"{path}: not a loadable seqgan-music checkpoint ({why})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise UserError(f"{path}: not a seqgan-music checkpoint")
    version = state.get("version")
    if type(version) is not int or version not in (1, VERSION):
        raise UserError(f"{path}: checkpoint format version {version!r} is not supported (expected 1 or {VERSION})")
    return _from_version_1(state) if version == 1 else state


def _from_version_1(state: dict[str, Any]) -> dict[str, Any]:
    """A version-1 checkpoint dict as version 2: the training settings of retired experiments
    dropped, and the fields (and G's settings) its older files lack filled in as those runs behaved (no model
    selection yet: the newest state is the reference and the best model)."""
    state = dict(state, version=VERSION)
    cfg = state.get("run_config")
    if isinstance(cfg, dict) and isinstance(cfg.get("train"), dict):
        cfg = state["run_config"] = {**cfg, "train": {k: v for k, v in cfg["train"].items()
                                                      if k not in RETIRED_TRAIN_FIELDS}}
    if isinstance(cfg, dict) and isinstance(cfg.get("generator"), dict):
        state["run_config"] = {**cfg, "generator": {**VERSION_1_GENERATOR, **cfg["generator"]}}
    if "selection" not in state and "generator" in state:
        state.update(reference=state["generator"], best_generator=state["generator"], selection=fresh_selection())
    if isinstance(state.get("form_real"), dict):
        state["form_real"] = {"off_key": None, **state["form_real"]}
    for field, missing in (("pg_opt", None), ("structure", None), ("nonfinite", 0), ("form_real", None)):
        state.setdefault(field, missing)
    return state


@dataclass
class LoadedRun:
    """A validated checkpoint: configs, tokenizer (None for the oracle experiment), models, raw state."""

    config: RunConfig
    tokenizer: Tokenizer | None
    generator: Generator
    discriminator: Discriminator
    state: dict[str, Any]


def load_checkpoint(path: str, device: str | torch.device = "cpu") -> LoadedRun:
    """Read and validate a checkpoint and rebuild its models on ``device``."""
    state = read_checkpoint(path)
    cfg = saved_run_config(state, path)
    tokenizer = Tokenizer.from_dict(state["tokenizer"], f"{path}: tokenizer") if state.get("tokenizer") else None
    if tokenizer is not None and tokenizer.vocab_size != cfg.generator.vocab_size:
        raise UserError(f"{path}: tokenizer vocabulary ({tokenizer.vocab_size}) does not match the generator's")
    check_progress(state, path)
    _check_form(state.get("form_real"), path, cfg.seq_len)
    models = []
    for cls, sub_cfg, what in ((Generator, cfg.generator, "generator"), (Discriminator, cfg.discriminator, "discriminator")):
        with torch.device("meta"):  # shapes without memory: a small file cannot make us allocate what it declares
            _check_weights(cls(sub_cfg).state_dict(), state.get(what), path, what)
        model = cls(sub_cfg)
        model.load_state_dict(state[what])
        models.append(model.to(device))
    return LoadedRun(cfg, tokenizer, *models, state)


def saved_run_config(state: dict[str, Any], path: str) -> RunConfig:
    """The run config a raw checkpoint dict holds."""
    return from_dict(RunConfig, state.get("run_config"), f"{path}: run_config")


def check_progress(state: dict[str, Any], path: str) -> tuple[int, int]:
    """(units done, units in all) of a raw checkpoint dict; a UserError unless 0 <= done <= all."""
    progress, units = state.get("progress"), state.get("units")
    if not (type(progress) is int and type(units) is int and 0 <= progress <= units):
        raise UserError(f"{path}: progress and units must be counts with progress <= units")
    return progress, units


def _check_form(form: Any, path: str, seq_len: int) -> None:
    """None, or :func:`structure_critic.real_form`'s dict: increasing lengths up to T, each with
    histograms of BINS shares in (0, 1] (``off_key``: None in runs saved before it existed)."""
    if form is None:
        return
    form = form if isinstance(form, dict) else {}
    lengths = form.get("lengths")

    def one_per_length(hists: Any) -> bool:
        return isinstance(hists, list) and len(hists) == len(lengths) and all(
            isinstance(h, list) and len(h) == BINS and all(isinstance(v, float) and 0 < v <= 1 for v in h) for h in hists)

    if not (isinstance(lengths, list) and len(lengths) > 0 and all(type(n) is int for n in lengths) and lengths[0] > 0
            and lengths == sorted(set(lengths)) and lengths[-1] == seq_len and one_per_length(form.get("histograms"))
            and (form.get("off_key") is None or one_per_length(form["off_key"]))):
        raise UserError(f"{path}: form_real must give increasing window lengths up to {seq_len}, each with {BINS} "
                        "shares in (0, 1] per histogram")


def _check_weights(expected: dict[str, torch.Tensor], weights: Any, path: str, what: str) -> None:
    """Keys, shapes, dtypes and finiteness of ``weights`` against ``expected`` (a meta-device state dict)."""
    if not isinstance(weights, dict):
        raise UserError(f"{path}: {what} weights are missing")
    if set(weights) != set(expected):
        raise UserError(f"{path}: {what} weights do not match its config (keys differ)")
    for key, tensor in weights.items():
        if not isinstance(tensor, torch.Tensor) or tensor.shape != expected[key].shape or tensor.dtype != expected[key].dtype:
            raise UserError(f"{path}: {what} weight {key} has the wrong shape or type for its config")
        if not torch.isfinite(tensor).all():
            raise UserError(f"{path}: {what} weight {key} holds non-finite values")


def run_state(cfg: RunConfig, tokenizer: Tokenizer | None, **rest: Any) -> dict[str, Any]:
    """The common fields of a checkpoint dict; ``rest`` adds weights, optimizers, progress."""
    return {"run_config": to_dict(cfg), "tokenizer": tokenizer.to_dict() if tokenizer else None, **rest}
