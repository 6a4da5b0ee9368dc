"""Where a run's generator starts: from scratch, the folk base model, or another run's model.

A folk base model is a generator pre-trained by maximum likelihood on the built-in collections
(:data:`BASE_COLLECTIONS`, tunes moved to C, the app's bars encoding), built by
``scripts/build_base_model.py`` and shipped in the package, one per generator shape
(:data:`BASE_FILES`: ``base/folk-bars.pt``, the ``demo`` and ``cpu`` presets' generator on 4-bar
windows, and ``base/folk-tunes.pt``, the whole-tune preset's on 8-bar windows; the provenance of
each in the .json beside it). ``base`` names the one whose generator has the run's shape. A run
that starts from it (``train --from base``, the app's *Start from*) fine-tunes that generator on
the user's songs; D starts fresh. A model can start a run only
when it speaks the dataset's tokens and has the run's generator shape; anything else is a one-line
UserError naming the model and the mismatch.
"""

from __future__ import annotations

import functools
import json
import os
from typing import Any

from seqgan_music.checkpoint import BEST, LoadedRun, load_checkpoint, read_checkpoint, run_state, saved_run_config
from seqgan_music.config import RunConfig, to_dict
from seqgan_music.errors import UserError
from seqgan_music.tokenizer import Tokenizer

BASE = "base"  # the name users give the folk base model (train --from base)
BASE_COLLECTIONS = ("essen", "oneills", "ryans", "airds")  # what it learnt from (music21's corpus)
BASE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "base")
# the preset whose generator each base model has -> its file (the first is the app's default path's)
BASE_FILES = {"demo": os.path.join(BASE_DIR, "folk-bars.pt"), "tune": os.path.join(BASE_DIR, "folk-tunes.pt")}
# generator settings that shape only training, not the weights: a model trained with other values still fits
TRAINING_ONLY = ("dropout",)
DATASET_SETTINGS = ("vocab_size", "start_token", "bar_tokens")  # generator settings the dataset sets (check_fits checks its tokens)


def start_path(source: str, cfg: RunConfig | None = None) -> str:
    """The checkpoint file ``source`` names: ``base`` (the base model for a run of ``cfg``,
    :func:`base_path`), a checkpoint file, or a run folder (its best model)."""
    if source == BASE:
        return base_path(cfg)
    path = os.path.join(source, BEST) if os.path.isdir(source) else source
    if not os.path.isfile(path):
        raise UserError(f"{source}: no model to start from (expected 'base', a checkpoint file or a run folder)")
    return path


def base_path(cfg: RunConfig | None = None) -> str:
    """The installed base model whose generator has ``cfg``'s shape, else the first installed
    (:func:`check_fits` then says what differs); a UserError when none is installed."""
    installed = [path for path in BASE_FILES.values() if os.path.isfile(path)]
    if not installed:
        raise UserError(f"{BASE_DIR}: the folk base models are missing from this installation; "
                        "build them with python3 scripts/build_base_model.py [--preset tune]")
    wanted = cfg and _preset_shape(cfg.generator)
    return ([path for path in installed if _installed_shape(path) == wanted] or installed)[0]


@functools.lru_cache
def _installed_shape(path: str) -> dict[str, Any]:
    """:func:`_preset_shape` of the generator of the installed base model at ``path`` (read once)."""
    return _preset_shape(saved_run_config(read_checkpoint(path), path).generator)


def base_info(path: str) -> dict[str, Any]:
    """The provenance of the base model at ``path`` (collections, tunes, windows, batches,
    validation NLL, command, commit); {} when it is not installed."""
    try:
        with open(path[: -len(".pt")] + ".json", encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return {}


def describe(source: str, cfg: RunConfig) -> str:
    """How the start of a run of ``cfg`` is named to the user."""
    if source == BASE:
        tunes = base_info(base_path(cfg)).get("tunes")
        return "the folk base model" + (f" ({tunes:,} tunes)" if tunes else "")
    return source


def starting_generator(source: str, cfg: RunConfig, tokenizer: Tokenizer) -> dict[str, Any]:
    """The generator weights of ``source`` (see :func:`start_path`) for a run of ``cfg`` on a
    dataset of ``tokenizer``; a UserError when they do not fit."""
    path = start_path(source, cfg)
    loaded = load_checkpoint(path)
    check_fits(path, loaded, cfg, tokenizer)
    return loaded.generator.state_dict()


def check_fits(path: str, loaded: LoadedRun, cfg: RunConfig, tokenizer: Tokenizer) -> None:
    """A UserError naming ``path`` unless ``loaded``'s generator can start a run of ``cfg`` on a
    dataset of ``tokenizer``: the same tokens, keys handled alike, the same generator shape."""
    theirs, ours = loaded.tokenizer, tokenizer
    if theirs is None or theirs.meaning()["vocab"] != ours.meaning()["vocab"] \
            or theirs.meaning()["grid"] != ours.meaning()["grid"] or theirs.config.encoding != ours.config.encoding:
        raise UserError(f"{path}: this model's tokens differ from the dataset's ({_tokens(theirs)} against "
                        f"{_tokens(ours)}); prepare the songs as the app does (--encoding bars) or train from scratch")
    if theirs.config.key_to_c != ours.config.key_to_c:
        raise UserError(f"{path}: this model learnt tunes {'moved to C' if theirs.config.key_to_c else 'in their own keys'}"
                        f", the dataset holds tunes {'moved to C' if ours.config.key_to_c else 'in their own keys'}; "
                        "prepare the songs with the same --keys or train from scratch")
    mine, given = _shape(cfg.generator), _shape(loaded.config.generator)
    if mine != given:
        differ = ", ".join(f"{k} {given[k]} (run: {mine[k]})" for k in mine if mine[k] != given[k])
        raise UserError(f"{path}: this model's generator differs from the run's: {differ}; "
                        "choose a preset with its shape (demo, cpu or tune for the base models) or train from scratch")


def base_state(run_checkpoint: dict[str, Any], cfg: RunConfig, tokenizer: Tokenizer) -> dict[str, Any]:
    """The checkpoint a base model ships as: a finished MLE run's configs, tokenizer, G and D weights
    and real-form statistics (enough to generate from and to start runs from; not to resume)."""
    return run_state(cfg, tokenizer, progress=run_checkpoint["progress"], units=run_checkpoint["progress"],
                     generator=run_checkpoint["generator"], discriminator=run_checkpoint["discriminator"],
                     form_real=run_checkpoint.get("form_real"))


def _shape(generator_cfg) -> dict[str, Any]:
    return {k: v for k, v in to_dict(generator_cfg).items() if k not in TRAINING_ONLY}


def _preset_shape(generator_cfg) -> dict[str, Any]:
    """The generator settings a preset chooses (sizes, bar features), without the dataset's."""
    return {k: v for k, v in _shape(generator_cfg).items() if k not in DATASET_SETTINGS}


def _tokens(tokenizer: Tokenizer | None) -> str:
    if tokenizer is None:
        return "no music tokens"
    return f"{tokenizer.config.encoding} encoding, {tokenizer.vocab_size} tokens"
