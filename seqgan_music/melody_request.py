"""One request for melodies, from the command line, the app or a script, and the one path from it
to token rows: primer -> metre -> length -> :func:`~seqgan_music.generate.generate_tokens`."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from seqgan_music.checkpoint import LoadedRun
from seqgan_music.errors import UserError
from seqgan_music.generate import choose_meter, generate_tokens, new_steps, parse_key


@dataclass
class MelodyRequest:
    """What a user asks for: ``num`` melodies of ``bars`` new bars at ``qpm`` (or ``steps`` new
    tokens; neither: four windows' length) in ``meter`` (None: the primer's, else the model's
    usual one) and ``key`` (a name such as "D major"; None: the model's own keys), after an
    optional ``primer`` (P,) of tokens; sampling at ``temperature`` with ``top_k`` (0: off) from
    ``seed``; ``drafts`` drawn per melody kept; melodies ending on the tonic first
    (``end_on_tonic``); the model ending each tune itself (``model_ends``)."""

    num: int = 8
    bars: int | None = None
    steps: int | None = None
    qpm: float = 120.0
    meter: str | None = None
    key: str | None = None
    primer: torch.Tensor | None = None
    temperature: float = 1.0
    top_k: int = 0
    seed: int = 0
    drafts: int = 1
    end_on_tonic: bool = False
    model_ends: bool = False


@dataclass
class Melodies:
    """Token rows (num, P + steps): the primer's P tokens, then ``steps`` new ones (at most, with
    ``model_ends``) in ``meter``."""

    tokens: torch.Tensor
    steps: int
    meter: str | None
    primer_steps: int


def melodies_for(run: LoadedRun, request: MelodyRequest) -> Melodies:
    """The melodies ``request`` asks of ``run``; a UserError names a request it cannot meet."""
    if request.bars is not None and request.steps is not None:
        raise UserError("give --bars or --steps, not both")
    primer, tok = request.primer, run.tokenizer
    primer_steps = 0 if primer is None else len(primer)
    meter = choose_meter(run, primer, request.meter)
    if request.bars is not None:
        if request.bars < 1:
            raise UserError("--bars must be at least 1")
        steps = new_steps(tok, request.bars, request.qpm, primer_steps, meter or "4/4")
    else:
        steps = request.steps or 4 * run.config.seq_len
    tokens = generate_tokens(run, request.num, steps, request.temperature, request.top_k, request.seed, primer,
                             end_on_tonic=request.end_on_tonic, meter=meter,
                             key=None if request.key is None else parse_key(request.key),
                             model_ends=request.model_ends, drafts=request.drafts)
    return Melodies(tokens, steps, meter, primer_steps)
