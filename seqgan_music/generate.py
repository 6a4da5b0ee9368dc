"""Sampling melodies from a trained run and writing them as MIDI, MusicXML and ABC files."""

from __future__ import annotations

import io
import math
import os
import re

import numpy as np
import torch

from seqgan_music.checkpoint import BEST, LAST, MODELS, LoadedRun, load_checkpoint
from seqgan_music.dataset import covering_starts
from seqgan_music.drafts import can_judge, keep_drafts
from seqgan_music.errors import UserError
from seqgan_music.fileio import atomic_write_bytes, atomic_write_text
from seqgan_music.melody import SkipPiece, extract_melody
from seqgan_music.metrics import ends_on_tonic
from seqgan_music.models import eval_mode
from seqgan_music.rollout import rollout_rewards
from seqgan_music.sources import Limits, read_midi, regular_file_size
from seqgan_music.tokenizer import METERS, Tokenizer


def checkpoint_path(run: str, which: str = LAST) -> str:
    """A run folder (-> its ``which`` checkpoint) or a checkpoint file path, checked to exist.
    ``which`` is a file name or a model name of :data:`MODELS` ("best", "mle", "last"); a run
    trained before model selection has no ``best.pt`` and gives its ``last.pt`` for "best"."""
    which = MODELS.get(which, which)
    path = os.path.join(run, which) if os.path.isdir(run) else run
    if which == BEST and os.path.isdir(run) and not os.path.isfile(path):
        path = os.path.join(run, LAST)
    if not os.path.isfile(path):
        raise UserError(f"{run}: no checkpoint found (expected {path}); train first")
    return path


def load_run(run: str, device: str | torch.device = "cpu", which: str = LAST) -> LoadedRun:
    """Load a run for generation; the oracle experiment's runs have no tokenizer and are refused."""
    loaded = load_checkpoint(checkpoint_path(run, which), device)
    if loaded.tokenizer is None:
        raise UserError(f"{run}: this run has no tokenizer (oracle experiment); it cannot write music")
    loaded.generator.eval()
    return loaded


def primer_tokens(path: str, tokenizer: Tokenizer, data: bytes | None = None) -> torch.Tensor:
    """The melody of a MIDI file as (P,) token ids to continue from (without an END); ``data`` holds the file's bytes
    when it is not on disk (an upload), ``path`` then only names it in errors."""
    try:
        if data is None:
            size, reason = regular_file_size(path)  # no FIFO, device or oversized file: bounded time and memory
            limit = Limits().max_file_bytes
            if reason is None and size > limit:
                reason = f"file too large ({size} bytes > {limit})"
            if reason:
                raise UserError(f"{path}: unusable primer: {reason}")
            with open(path, "rb") as fh:
                data = fh.read(limit + 1)
        tokens = tokenizer.encode(extract_melody(read_midi(data, Limits()), tokenizer.config))
        return torch.from_numpy(tokenizer.tune_part(tokens).copy())  # a primer's tune goes on: no END
    except OSError as exc:
        raise UserError(f"{path}: cannot read primer ({exc.strerror})") from None
    except SkipPiece as exc:
        raise UserError(f"{path}: unusable primer: {exc}") from None


def choose_meter(run: LoadedRun, primer: torch.Tensor | None = None, requested: str | None = None) -> str | None:
    """The metre to write in: ``requested``, else the primer's, else (bars encoding) the one the
    generator most often starts a tune with; None for the paper encoding. A UserError when the
    request cannot be met."""
    tok = run.tokenizer
    primer_meter = tok.meter_of(primer.numpy()) if primer is not None and len(primer) and tok.bar_tokens else None
    if requested is not None:
        if requested not in METERS:
            raise UserError(f"--meter {requested}: choose one of {', '.join(METERS)}")
        if not tok.bar_tokens and requested != tok.meter_of([]):
            raise UserError(f"--meter {requested} needs a model trained on the bars encoding (prepare --encoding bars)")
        if primer_meter is not None and primer_meter != requested:
            raise UserError(f"--meter {requested} differs from the primer's metre {primer_meter}")
        return requested
    if primer_meter is not None or not tok.bar_tokens:
        return primer_meter or tok.meter_of([])
    start = torch.zeros(1, 1, dtype=torch.long, device=run.generator.out.weight.device)
    with torch.no_grad(), eval_mode(run.generator):
        first = run.generator.teacher_forced_logits(start)[0, 0]  # the first token's logits
    return tok.meter_of([tok.bar_tokens[int(first[tok.bar_tokens].argmax())]])


KEY_ROUNDS = 8  # at most this many batches of candidates are drawn to find melodies in a requested mode


def parse_key(text: str) -> tuple[int, bool]:
    """A key such as "G", "G major", "Em", "E minor", "F#m", "Bb" -> (tonic pitch class, major?);
    a UserError for anything else."""
    match = re.fullmatch(r"\s*([A-Ga-g])([#b]?)\s*(m|min|minor|maj|major)?\s*", text)
    if not match:
        raise UserError(f"--key {text!r}: write a tonic and an optional mode, e.g. G, G major, Em, F# minor")
    letter, accidental, mode = match.groups()
    tonic = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}[letter.upper()]
    return (tonic + {"#": 1, "b": -1, "": 0}[accidental]) % 12, mode in (None, "maj", "major")


MAX_MELODIES = 10_000  # melodies one request may ask for
MAX_STEPS = 65_536  # tokens one melody may ask for (past 1,000 bars of 4/4)
MAX_DRAFTS = 64  # drafts drawn for each melody kept
MAX_TOKENS = 2**24  # tokens one request may draw in all: melodies x drafts x length (128 MB of ids)


def check_sampling(num: int, steps: int, temperature: float, seed: int, drafts: int = 1) -> None:
    """A UserError for a request no sampler can serve: counts out of range (alone or together), a
    temperature that is not a positive finite number, a seed torch cannot take."""
    if not 1 <= num <= MAX_MELODIES or not 1 <= steps <= MAX_STEPS:
        raise UserError(f"--num must lie in 1..{MAX_MELODIES} and the length in 1..{MAX_STEPS} tokens, "
                        f"not {num} and {steps}")
    if not 1 <= drafts <= MAX_DRAFTS:
        raise UserError(f"--drafts must lie in 1..{MAX_DRAFTS}, not {drafts}")
    if num * drafts * steps > MAX_TOKENS:
        raise UserError(f"{num} melodies x {drafts} drafts x {steps} tokens is more than {MAX_TOKENS} tokens "
                        "in one request; ask for fewer or shorter melodies")
    if not math.isfinite(temperature) or temperature <= 0:
        raise UserError(f"--temperature must be a positive number, not {temperature}")
    if not 0 <= seed < 2**63:
        raise UserError(f"--seed must lie in 0..2^63-1, not {seed}")


def generate_tokens(
    run: LoadedRun, num: int, steps: int, temperature: float = 1.0, top_k: int = 0, seed: int = 0,
    primer: torch.Tensor | None = None, end_on_tonic: bool = False, meter: str | None = None,
    key: tuple[int, bool] | None = None, model_ends: bool = False, drafts: int = 1,
) -> torch.Tensor:
    """(num, P + steps) token ids: the primer (P tokens, 0 without one) then sampled tokens. With
    ``model_ends`` the model may end a tune at any bar line after its first new bar (the rest of
    its row is END; needs a tokenizer with an END token); ``steps`` is then the most. With
    ``model_ends`` off, a model that knows tune ends fills the length with tunes: one it ends early
    is followed by the next it writes (:func:`tunes_after_tunes`). With
    ``end_on_tonic``, 4 candidates per melody are drawn and those ending on their key's tonic come
    first (:func:`tonic_endings_first`). With bar tokens the new part is whole bars of ``meter``
    (default :func:`choose_meter`): bar lines where that metre puts them, nowhere else. With
    ``key`` (tonic pitch class, major?) the melodies are those the model wrote in that mode,
    transposed to that tonic (:func:`transposed_to_key`). With ``drafts`` K > 1, K melodies are
    drawn (as above) for each one kept, the keeper picked by the form critic
    (:func:`seqgan_music.drafts.keep_drafts`). A model trained on tunes moved to C
    (``key_to_c``) continues a primer moved to C and moved back with it; without a primer or key,
    its melodies go to keys drawn as often as the training tunes had them (:func:`to_home_keys`)."""
    check_sampling(num, steps, temperature, seed, drafts)
    if top_k < 0:
        raise UserError("--top-k must be 0 (off) or positive")
    if key is not None and primer is not None and len(primer):
        raise UserError("--key cannot be combined with a primer: the tune continues in the primer's key")
    device = run.generator.out.weight.device
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    drafts = drafts if can_judge(run) else 1  # a run saved before drafts: each melody as drawn
    wanted = num * drafts
    drawn = 4 * wanted if end_on_tonic or key is not None else wanted
    bar_line, end_token = None, run.tokenizer.end_token
    if model_ends and end_token is None:
        raise UserError("this model was trained on data without tune ends, so it cannot end a tune itself; "
                        "give a length, or prepare the data again (the bars encoding now marks tune ends)")
    if run.tokenizer.bar_tokens:
        meter = meter or choose_meter(run, primer)
        bar_line = (run.tokenizer.bar_line_choices(meter), run.tokenizer.steps_for(1, meter=meter))
    tok = run.tokenizer
    primer_shift = 0  # a key_to_c model continues the primer moved to C
    if tok.config.key_to_c and primer is not None and len(primer):
        primer_shift = tok.shift_to_tonic(primer.numpy(), 0) or 0
        primer = torch.from_numpy(tok.transpose(primer.numpy(), primer_shift))
    tokens = _draw(run, drawn, wanted, steps, temperature, top_k, primer, gen, bar_line, key, model_ends)
    tokens = tonic_endings_first(tokens, tok, wanted) if end_on_tonic else tokens[:wanted]
    if drafts > 1:
        def own_windows(count: int, length: int) -> torch.Tensor:
            place = asked_place(run, count, length, None, bar_line)
            return run.generator.sample(count, length, temperature, top_k, None, gen, bar_line, end_token, False,
                                        place=place)

        tokens = keep_drafts(run, tokens, drafts, own_windows, seed)
    if not tok.config.key_to_c or key is not None:  # (a requested key has been reached already)
        return tokens
    if primer is not None and len(primer):  # back to the primer's key (the primer as it was; a new note
        # that would leave the range moves by an octave)
        return torch.from_numpy(np.stack([tok.transpose(row, -primer_shift, fold=True) for row in tokens.numpy()]))
    return to_home_keys(tokens, tok, np.random.default_rng(seed))


def _draw(run: LoadedRun, drawn: int, wanted: int, steps: int, temperature: float, top_k: int,
          primer: torch.Tensor | None, gen: torch.Generator, bar_line, key: tuple[int, bool] | None,
          model_ends: bool) -> torch.Tensor:
    """(>= wanted, P + steps) melodies after the primer, ``drawn`` at a time: as sampled, or with a
    ``key`` those in its mode moved to it (up to :data:`KEY_ROUNDS` draws; a UserError when too few)."""
    end_token = run.tokenizer.end_token
    kept: list[torch.Tensor] = []
    for _ in range(KEY_ROUNDS if key is not None else 1):
        if end_token is not None and bar_line is not None and not model_ends:
            sampled = tunes_after_tunes(run, drawn, steps, temperature, top_k, primer, gen, bar_line)
        else:
            sampled = run.generator.sample(drawn, steps, temperature, top_k, primer, gen, bar_line, end_token,
                                           model_ends, place=asked_place(run, drawn, steps, primer, bar_line)).cpu()
        if primer is not None and len(primer):
            sampled = torch.cat([primer.view(1, -1).expand(drawn, -1).cpu(), sampled], dim=1)
        kept.append(sampled if key is None else transposed_to_key(sampled, run.tokenizer, key))
        if sum(map(len, kept)) >= wanted:
            break
    tokens = torch.cat(kept)
    if len(tokens) < wanted:
        raise UserError(f"the model wrote only {len(tokens)} of {KEY_ROUNDS * drawn} melodies in a "
                        f"{'major' if key[1] else 'minor'} key; ask for fewer melodies, fewer drafts or the other mode")
    return tokens


def tunes_after_tunes(run: LoadedRun, num: int, steps: int, temperature: float, top_k: int,
                      primer: torch.Tensor | None, gen: torch.Generator, bar_line: tuple[int, int]) -> torch.Tensor:
    """(num, steps) tokens of whole bars for a model that knows where tunes end, as a set of folk
    tunes is played: where the model ends a tune (END at a bar line after at least one new bar),
    a new tune it starts from scratch takes over at that bar line, until ``steps`` are filled;
    of ``NEXT_TUNE_CANDIDATES`` drawn, the first in the mode of the bars so far (by
    :func:`same_mode_first`; the primer counts among them). Forbidding END instead leaves the model
    past the end of every tune it has seen: it wrote whole bars of rest. The first tune continues
    ``primer``."""
    tok, k = run.tokenizer, NEXT_TUNE_CANDIDATES
    before = np.zeros(0, np.int64) if primer is None else primer.cpu().numpy()
    out = run.generator.sample(num, steps, temperature, top_k, primer, gen, bar_line, tok.end_token, True,
                               place=asked_place(run, num, steps, primer, bar_line)).cpu()
    while True:
        ended = out == tok.end_token
        rows = ended.any(1).nonzero().flatten()
        if not len(rows):
            return out
        at = ended[rows].int().argmax(1)  # each row's END: a bar line, at least one bar after the last start
        asked = [asked_place(run, k, steps - start, None, bar_line) for start in at.tolist()]  # each the rest's length
        fresh = run.generator.sample(k * len(rows), steps - int(at.min()), temperature, top_k, None, gen, bar_line,
                                     tok.end_token, True, place=None if asked[0] is None else torch.cat(asked))
        for row, start, candidates in zip(rows.tolist(), at.tolist(), fresh.cpu().view(len(rows), k, -1)):
            major = tok.estimated_key(np.concatenate([before, out[row, :start].numpy()]))[1]
            out[row, start:] = candidates[same_mode_first(candidates[:, : steps - start], tok, major)][: steps - start]


NEXT_TUNE_CANDIDATES = 4  # tunes drawn for each place where :func:`tunes_after_tunes` starts a new one


def asked_place(run: LoadedRun, num: int, steps: int, primer: torch.Tensor | None,
                bar_line: tuple[list, int] | None) -> torch.Tensor | None:
    """(num, 2) places (:mod:`seqgan_music.bar_context`) of tunes that start with ``primer`` and
    last ``steps`` more tokens of whole bars (``bar_line``'s period): from their first bar, as long
    as that, so that a generator with the bars-left feature ends them there; None for others."""
    context = run.generator.context
    if context is None or not context.bars_left or bar_line is None:
        return None
    bars = (0 if primer is None else run.tokenizer.bars_in(primer.cpu().numpy())) + -(-steps // bar_line[1])
    return torch.tensor([[0, bars]], device=run.generator.out.weight.device).repeat(num, 1)


def same_mode_first(candidates: torch.Tensor, tokenizer: Tokenizer, major: bool) -> int:
    """Index of the first of (C, L) candidate tunes whose estimated key (metrics.estimate_key,
    up to its END) is major when ``major``, else minor; 0 when none is."""
    for i, row in enumerate(candidates.numpy()):
        if tokenizer.estimated_key(row)[1] == major:
            return i
    return 0


def to_home_keys(tokens: torch.Tensor, tokenizer: Tokenizer, rng: np.random.Generator) -> torch.Tensor:
    """Each row of (C, L) ``tokens`` moved to a tonic drawn from the training tunes' keys of its
    estimated mode (``tokenizer.config.home_keys``: the counts before they were moved to C); a row
    stays where it is when its mode had no tunes or no shift fits the pitch range."""
    counts = np.asarray(tokenizer.config.home_keys or [0] * 24, dtype=float).reshape(2, 12)  # (major, minor) x tonic
    moved = []
    for row in tokens.numpy():
        tonic, major = tokenizer.estimated_key(row)
        weights = counts[0 if major else 1]
        shift = tokenizer.shift_to_tonic(row, int(rng.choice(12, p=weights / weights.sum())), tonic) if weights.sum() else None
        moved.append(torch.from_numpy(row if shift is None else tokenizer.transpose(row, shift)))
    return torch.stack(moved) if moved else tokens


def transposed_to_key(tokens: torch.Tensor, tokenizer: Tokenizer, key: tuple[int, bool]) -> torch.Tensor:
    """The rows of (C, L) ``tokens`` whose estimated key (metrics.estimate_key) has the mode of
    ``key`` (tonic pitch class, major?), each moved to its tonic by the smallest shift that keeps
    its notes in the vocabulary's range (rows no shift fits are dropped) -> (C', L)."""
    moved = []
    for row in tokens.numpy():
        tonic, major = tokenizer.estimated_key(row)
        if major == key[1] and (shift := tokenizer.shift_to_tonic(row, key[0], tonic)) is not None:
            moved.append(torch.from_numpy(tokenizer.transpose(row, shift)))
    return torch.stack(moved) if moved else tokens[:0]


def tonic_endings_first(tokens: torch.Tensor, tokenizer: Tokenizer, num: int) -> torch.Tensor:
    """The first ``num`` rows of (C, L) candidates, taking those whose last note is the tonic of
    their estimated key (metrics.estimate_key) before the others, each group in its drawn order."""
    flags = [ends_on_tonic(tokenizer.decode_notes(row)) for row in tokens]
    order = [i for i, f in enumerate(flags) if f] + [i for i, f in enumerate(flags) if not f]
    return tokens[order[:num]]


def token_rewards(run: LoadedRun, tokens: torch.Tensor, num_rollouts: int = 8, seed: int = 0) -> np.ndarray:
    """D's per-token reward Q for a (L,) melody, window by window of the model's T -> (L,) in [0, 1].

    A model of tunes moved to C (``key_to_c``) scores the melody moved to C. Windows after the
    first are rolled out from G's start state, an approximation that keeps the cost at one reward
    computation per T tokens; with bar lines they start at bar lines, as training windows do, and
    are told their place in the melody (first bar's number, the melody's bars). A token in two
    windows gets the later window's reward; a melody shorter than T is padded with rests that are
    not reported.
    """
    T = run.config.seq_len
    if run.tokenizer.config.key_to_c and (shift := run.tokenizer.shift_to_tonic(tokens.cpu().numpy(), 0)):
        tokens = torch.from_numpy(run.tokenizer.transpose(tokens.cpu().numpy(), shift))  # G and D know tunes in C
    tokens = tokens.to(run.generator.out.weight.device).long()
    L = len(tokens)
    padded = torch.cat([tokens, tokens.new_zeros(T)])
    starts = covering_starts(tokens.cpu().numpy(), T, run.tokenizer.bar_tokens)
    windows = torch.stack([padded[s : s + T] for s in starts])
    lines = np.isin(tokens.cpu().numpy(), run.tokenizer.bar_tokens)
    place = torch.tensor([[int(lines[:s].sum()), int(lines.sum())] for s in starts], device=tokens.device)
    gen = torch.Generator(device=tokens.device).manual_seed(seed)
    rewards = rollout_rewards(windows, run.generator, run.discriminator, num_rollouts, generator=gen,
                              place=place).cpu().numpy()
    out = np.zeros(len(padded), dtype=np.float32)
    for s, r in zip(starts, rewards):
        out[s : s + T] = r
    return out[:L]


FORMATS = ("mid", "musicxml", "abc")  # what generate can write per melody


def new_steps(tokenizer: Tokenizer, bars: int, qpm: float = 120.0, primer_steps: int = 0, meter: str = "4/4") -> int:
    """Tokens to sample for ``bars`` new bars of ``meter`` after a primer of ``primer_steps``
    tokens. On the melody grid the primer's last bar is completed first, so the whole tune ends at
    a bar line (a primer in the bars encoding always ends with a whole bar)."""
    steps = tokenizer.steps_for(bars, qpm, meter)
    bar = tokenizer.steps_for(1, qpm, meter)
    if tokenizer.steps_per_bar and not tokenizer.bar_tokens and primer_steps % bar:
        steps += bar - primer_steps % bar
    return steps


def write_melodies(tokens: torch.Tensor, tokenizer: Tokenizer, out_dir: str, qpm: float = 120.0, program: int = 0,
                   formats: tuple[str, ...] = ("mid",), prefix: str = "melody") -> list[str]:
    """Write each row of (num, L) token ids to ``out_dir/prefix_NNN.<format>`` for each of
    ``formats`` (MIDI, MusicXML, ABC); returns the MIDI paths (or the first format's)."""
    from seqgan_music.score import abc_text, musicxml_bytes

    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for i, row in enumerate(tokens):
        stem, title = os.path.join(out_dir, f"{prefix}_{i:03d}"), f"{prefix} {i + 1}"
        for fmt in formats:
            try:
                if fmt == "mid":
                    midi = io.BytesIO()
                    tokenizer.decode(row, qpm=qpm, program=program).write(midi)
                    atomic_write_bytes(stem + ".mid", midi.getvalue())
                elif fmt == "musicxml":
                    atomic_write_bytes(stem + ".musicxml", musicxml_bytes(tokenizer, row, qpm, title))
                else:
                    atomic_write_text(stem + ".abc", abc_text(tokenizer, row, qpm, title, number=i + 1))
            except OSError as exc:
                raise UserError(f"{stem}.{fmt}: cannot write it ({exc.strerror or exc})") from None
        paths.append(f"{stem}.{formats[0]}")
    return paths
