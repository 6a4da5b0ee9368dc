"""The paper's synthetic experiment: an oracle LSTM writes the training data, NLL-oracle scores G.

The oracle is a :class:`Generator` (V 5000, E = H = 32, start token 0) whose weights come from the
authors' released parameters (npz, or their pickle read by a numpy-only unpickler) or, as in the
paper, from N(0, 1).
"""

from __future__ import annotations

import pickle

import numpy as np
import torch

from seqgan_music.config import GeneratorConfig, RunConfig, make_run_config
from seqgan_music.errors import UserError
from seqgan_music.models import Generator

VOCAB, EMBED, HIDDEN, SEQ_LEN = 5000, 32, 32, 20
PARAM_KEYS = ["embedding", "W_i", "U_i", "b_i", "W_f", "U_f", "b_f", "W_o", "U_o", "b_o", "W_c", "U_c", "b_c",
              "W_out", "b_out"]


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Admits numpy arrays and nothing else, so a crafted pickle cannot run code."""

    ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
               ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar")}

    def find_class(self, module: str, name: str):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in an oracle parameter file")


def read_oracle_params(path: str) -> dict[str, np.ndarray]:
    """The 15 oracle arrays from ``target_params.npz`` or the original pickle (a list in order)."""
    try:
        if path.endswith(".npz"):
            with np.load(path, allow_pickle=False) as z:
                params = {k: z[k] for k in PARAM_KEYS}
        else:
            with open(path, "rb") as fh:
                arrays = _NumpyOnlyUnpickler(fh, encoding="latin1").load()
            params = dict(zip(PARAM_KEYS, arrays))
    except (OSError, KeyError, ValueError, EOFError, pickle.UnpicklingError, TypeError) as exc:
        raise UserError(f"{path}: cannot read oracle parameters ({exc})") from None
    if len(params) != len(PARAM_KEYS) or params["embedding"].shape != (VOCAB, EMBED):
        raise UserError(f"{path}: expected 15 arrays with a {VOCAB} x {EMBED} embedding")
    return params


def oracle_generator(params: dict[str, np.ndarray] | None = None, seed: int = 0) -> Generator:
    """The oracle as a Generator: the released weights mapped to PyTorch's layout, or N(0, 1)."""
    gen = Generator(GeneratorConfig(vocab_size=VOCAB, embed_dim=EMBED, hidden_dim=HIDDEN, start_token=0))
    with torch.no_grad():
        if params is None:
            torch.manual_seed(seed)
            for p in gen.parameters():
                p.normal_(0.0, 1.0)
            return gen.eval()
        t = {k: torch.from_numpy(np.asarray(v, dtype=np.float32)) for k, v in params.items()}
        lstm = gen.lstm  # row-vector cell x W + h U + b; PyTorch stores W^T with gates i, f, g, o
        lstm.weight_ih_l0.copy_(torch.cat([t["W_i"], t["W_f"], t["W_c"], t["W_o"]], dim=1).t())
        lstm.weight_hh_l0.copy_(torch.cat([t["U_i"], t["U_f"], t["U_c"], t["U_o"]], dim=1).t())
        lstm.bias_ih_l0.copy_(torch.cat([t["b_i"], t["b_f"], t["b_c"], t["b_o"]]))
        lstm.bias_hh_l0.zero_()
        gen.embedding.weight.copy_(t["embedding"])
        gen.out.weight.copy_(t["W_out"].t())
        gen.out.bias.copy_(t["b_out"])
    return gen.eval()


@torch.no_grad()
def sample_many(gen: Generator, num: int, seed: int, batch: int = 2000) -> torch.Tensor:
    """(num, 20) sequences from ``gen`` at temperature 1, reproducible by ``seed``."""
    rng = torch.Generator(device=gen.out.weight.device).manual_seed(seed)
    return torch.cat([gen.sample(min(batch, num - i), SEQ_LEN, generator=rng) for i in range(0, num, batch)])


@torch.no_grad()
def nll_oracle(oracle: Generator, sequences: torch.Tensor, batch: int = 2000) -> float:
    """Mean per-token -log p_oracle(y_t | y_<t) in nats over (N, 20) sequences."""
    total = sum(-float(oracle.log_probs(s).sum()) for s in sequences.split(batch))
    return total / sequences.numel()


def oracle_run_config(preset: str) -> RunConfig:
    """The paper's sizes for G (E = H = 32); the cpu preset scales D and the schedule down."""
    cfg = make_run_config("paper" if preset == "paper" else preset, VOCAB, SEQ_LEN)
    cfg.generator.embed_dim, cfg.generator.hidden_dim = EMBED, HIDDEN
    if preset == "paper":
        cfg.train.d_samples = 10000
    elif preset == "cpu":
        t = cfg.train
        t.mle_epochs, t.d_pretrain_rounds, t.d_epochs, t.adv_rounds = 50, 10, 3, 50
        t.batch_size, t.rollout_num, t.d_steps, t.d_samples = 64, 16, 3, 2000
    return cfg
