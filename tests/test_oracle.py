from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from hostile import CodeRunningPickle

from seqgan_music.errors import UserError
from seqgan_music.oracle import PARAM_KEYS, nll_oracle, oracle_generator, read_oracle_params


def fake_params(seed=0):
    rng = np.random.default_rng(seed)
    shapes = {"embedding": (5000, 32), "W_out": (32, 5000), "b_out": (5000,)}
    return {k: rng.normal(size=shapes.get(k, (32,) if k.startswith("b_") else (32, 32))).astype(np.float32) for k in PARAM_KEYS}


def reference_step(p, x, h, c):
    """The cell equations of the authors' oracle, row vectors (shared/data README)."""
    sig = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    i = sig(x @ p["W_i"] + h @ p["U_i"] + p["b_i"])
    f = sig(x @ p["W_f"] + h @ p["U_f"] + p["b_f"])
    o = sig(x @ p["W_o"] + h @ p["U_o"] + p["b_o"])
    cc = np.tanh(x @ p["W_c"] + h @ p["U_c"] + p["b_c"])
    c = f * c + i * cc
    h = o * np.tanh(c)
    return h, c, h @ p["W_out"] + p["b_out"]


def test_oracle_generator_matches_the_reference_cell_equations():
    p = fake_params()
    gen = oracle_generator(p)
    seq = [0, 17, 4999, 3]
    h = c = np.zeros(32, np.float32)
    ref_logits = []
    for tok in [0] + seq[:-1]:  # start token 0, then the sequence
        h, c, logits = reference_step(p, p["embedding"][tok], h, c)
        ref_logits.append(logits)
    ours, _ = gen(gen.shifted_inputs(torch.tensor([seq])))
    assert np.allclose(ours[0].detach().numpy(), np.stack(ref_logits), atol=1e-3)
    lp = torch.log_softmax(torch.tensor(np.stack(ref_logits)), -1)[range(4), seq]
    assert abs(nll_oracle(gen, torch.tensor([seq])) - float(-lp.mean())) < 1e-4


def test_params_from_npz_and_numpy_only_pickle(tmp_path):
    p = fake_params(1)
    np.savez(tmp_path / "p.npz", **p)
    with open(tmp_path / "p.pkl", "wb") as fh:
        pickle.dump([p[k] for k in PARAM_KEYS], fh)
    a, b = read_oracle_params(str(tmp_path / "p.npz")), read_oracle_params(str(tmp_path / "p.pkl"))
    assert all(np.array_equal(a[k], b[k]) for k in PARAM_KEYS)


def test_crafted_oracle_pickle_is_refused(tmp_path):
    marker = tmp_path / "pwned"


    with open(tmp_path / "evil.pkl", "wb") as fh:
        pickle.dump([CodeRunningPickle(marker)], fh)
    with pytest.raises(UserError, match="not allowed"):
        read_oracle_params(str(tmp_path / "evil.pkl"))
    assert not marker.exists()
