from __future__ import annotations

import os
import sys
import warnings

import pytest

sys.path.insert(0, os.path.dirname(__file__))
warnings.filterwarnings("ignore", module="pretty_midi")

from midi_factory import random_melody_pm, song_pm, write  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets a parse cache of its own under pytest's tmp folder."""
    monkeypatch.setenv("SEQGAN_MUSIC_CACHE", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="session")
def corpus_cache(tmp_path_factory):
    """One parse cache for the tests that read a built-in collection (music21's corpus takes
    seconds to parse): the first such test fills it, the others read it."""
    return str(tmp_path_factory.mktemp("corpus_cache"))


@pytest.fixture(scope="session")
def midi_folder(tmp_path_factory):
    """A folder of 12 small generated MIDI files (melodies and multi-track songs)."""
    folder = tmp_path_factory.mktemp("midi")
    for i in range(8):
        write(random_melody_pm(i), folder / f"melody_{i}.mid")
    for i in range(4):
        write(song_pm(i), folder / f"song_{i}.mid")
    return folder


@pytest.fixture(scope="session")
def tiny_dataset(midi_folder, tmp_path_factory):
    """A prepared dataset folder (melody encoding, T = 16) from ``midi_folder``."""
    from seqgan_music.config import TokenizerConfig
    from seqgan_music.dataset import prepare

    out = tmp_path_factory.mktemp("data") / "ds"
    prepare([str(midi_folder)], str(out), TokenizerConfig(seq_len=16, hop=8), valid_fraction=0.25, cache_dir=None,
            workers=1)
    return str(out)


@pytest.fixture(scope="session")
def tiny_run_dir(tiny_dataset, tmp_path_factory):
    """A run folder trained with the tiny preset on ``tiny_dataset``."""
    import torch

    from seqgan_music.config import make_run_config
    from seqgan_music.dataset import load_dataset
    from seqgan_music.trainer import Trainer

    ds = load_dataset(tiny_dataset)
    run = tmp_path_factory.mktemp("run")
    cfg = make_run_config("tiny", ds.tokenizer.vocab_size, ds.seq_len)
    Trainer(cfg, ds.train, ds.valid, str(run), torch.device("cpu"), ds.tokenizer).run()
    return str(run)


@pytest.fixture(scope="session")
def bars_run_dir(midi_folder, tmp_path_factory):
    """(dataset folder, run folder): ``midi_folder`` in the bars encoding with tune ends and tunes
    moved to C, as ``prepare --encoding bars`` makes it (T = 34, two bars of 4/4), and a
    tiny-preset run on it, whose generator has the bar features."""
    import torch

    from seqgan_music.config import TokenizerConfig, make_run_config
    from seqgan_music.dataset import load_dataset, prepare
    from seqgan_music.trainer import Trainer

    data = tmp_path_factory.mktemp("bars") / "ds"
    prepare([str(midi_folder)], str(data), TokenizerConfig(encoding="bars", seq_len=34, hop=17, tune_end=True, key_to_c=True),
            valid_fraction=0.25,
            cache_dir=None, workers=1)
    ds = load_dataset(str(data))
    run = tmp_path_factory.mktemp("bars_run")
    tok = ds.tokenizer
    cfg = make_run_config("tiny", tok.vocab_size, ds.seq_len, tok.start_token, tok.bar_tokens)
    Trainer(cfg, ds.train, ds.valid, str(run), torch.device("cpu"), tok, places=(ds.train_place, ds.valid_place)).run()
    return str(data), str(run)
