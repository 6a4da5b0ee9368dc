from __future__ import annotations

import time

import numpy as np
import pytest

import seqgan_music.fuzz
from seqgan_music.cli import main
from seqgan_music.fuzz import MUTATIONS, run_fuzz, seed_midis
from seqgan_music.fuzz_text import ABC_MUTATIONS, MUSICXML_MUTATIONS, seed_abc, seed_musicxml


def test_fixed_seed_fuzz_finds_nothing():
    """Hundreds of mutated MIDI files and random bytes: each a melody or a skip reason, bounded."""
    result = run_fuzz(cases=350, seed=1234, kinds=("midi",))
    assert result["findings"] == []
    assert sum(result["outcomes"].values()) == 350
    assert result["outcomes"]["midi melody"] > 0 and result["outcomes"]["midi skipped"] > 0


def test_fixed_seed_fuzz_of_abc_and_musicxml_finds_nothing():
    """Damaged and extreme ABC and MusicXML (flipped bytes, cuts, huge numbers, repeated
    stretches, absurd fields): each a melody or a skip reason, in bounded time and memory."""
    result = run_fuzz(cases=72, seed=77, kinds=("abc", "musicxml"))
    assert result["findings"] == []
    for outcome in ("abc melody", "abc skipped", "musicxml melody", "musicxml skipped"):
        assert result["outcomes"].get(outcome, 0) > 0, result["outcomes"]


def test_a_runaway_case_is_stopped_and_reported(monkeypatch):
    def endless(*args, **kwargs):
        while True:
            time.sleep(0.01)

    monkeypatch.setattr(seqgan_music.fuzz, "parse_item", endless)
    started = time.perf_counter()
    result = run_fuzz(cases=2, seed=0, max_seconds=0.1, kinds=("abc",))
    assert time.perf_counter() - started < 5
    assert result["findings"] == [f"case {i} (abc {name}): still running after 0.4 s, stopped"
                                  for i, name in enumerate(list(ABC_MUTATIONS)[:2])]


@pytest.mark.parametrize("seeds, mutations", [(seed_midis, MUTATIONS),
                                              (lambda rng: [seed_abc(rng) for _ in range(4)], ABC_MUTATIONS),
                                              (lambda rng: [seed_musicxml(rng) for _ in range(4)], MUSICXML_MUTATIONS)])
def test_every_mutation_changes_its_input(seeds, mutations):
    """Each mutation kind of the fuzzer really mutates: no kind silently returns its input."""
    rng = np.random.default_rng(5)
    originals = seeds(rng)
    for name, mutate in mutations.items():
        assert any(mutate(rng, seed) != (seed if isinstance(seed, bytes) else seed.encode())
                   for seed in originals for _ in range(3)), name


def test_fuzz_command(capsys):
    assert main(["fuzz", "--cases", "21", "--seed", "3", "--kinds", "midi"]) == 0
    assert "21 cases" in capsys.readouterr().out
    assert main(["fuzz", "--kinds", "wav"]) == 2
