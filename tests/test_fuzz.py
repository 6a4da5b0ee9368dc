from __future__ import annotations

from seqgan_music.cli import main
from seqgan_music.fuzz import MUTATIONS, run_fuzz


def test_fixed_seed_fuzz_finds_nothing():
    """Hundreds of mutated MIDI files and random bytes: each a melody or a skip reason, bounded."""
    result = run_fuzz(cases=350, seed=1234)
    assert result["findings"] == []
    assert sum(result["outcomes"].values()) == 350
    assert result["outcomes"]["melody"] > 0 and result["outcomes"]["skipped"] > 0



def test_every_mutation_changes_its_input():
    """Each mutation kind of the fuzzer really mutates: no kind silently returns its input."""
    import numpy as np

    from seqgan_music.fuzz import seed_midis

    rng = np.random.default_rng(5)
    seeds = seed_midis(rng)
    for name, mutate in MUTATIONS.items():
        assert any(mutate(rng, seed) != seed for seed in seeds for _ in range(3)), name


def test_fuzz_command(capsys):
    assert main(["fuzz", "--cases", "21", "--seed", "3"]) == 0
    assert "21 cases" in capsys.readouterr().out
