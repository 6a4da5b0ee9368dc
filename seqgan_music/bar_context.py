"""Where the next token falls relative to the bar lines behind it: the generator's view of metre.

For sequences with BAR tokens (the ``bars`` encoding), the input at position t (the step that
predicts token t) gets features computed from the tokens before t:

position
    (the metre of the current bar, steps since its BAR token), and the bar's number in the tune
    (a training window from the middle of a tune is told the number of its first bar; bar numbers
    from ``max_bars - 1`` on share one id): the model knows the beat and the bar it is on without
    counting, and so where strains and tunes usually end.
bars left
    (optional) bar lines still to come before the tune's END, from the tune's length in bars,
    which each row is told (a training window: its tune's; a generated tune: the length asked
    for); counts from ``max_bars - 1`` on share one id, and a row whose tune length is unknown (0)
    has an id of its own. The model then knows where its tune ends and can lead its last phrase
    to a cadence there.
lookback
    for each k in ``lookback_bars``, the token at the same place k bars back and whether the
    previous token repeated its counterpart k bars back (Magenta's Lookback RNN), so repeating a
    phrase is a copy rather than something to memorise: id = token + (V + 1) * repeating, or V
    (the vocabulary size) where there is no such bar yet. With ``copy_runs`` the second part is
    how long the copy of the bar k back has run instead: the tokens just before this one that
    each equal their counterpart k bars back, in :data:`RUN_EDGES` bins (0, 1, 2-3, 4-7, 8-15,
    16 or more), so a figure copied for a bar can be told from a note that matches by chance.

Each feature's ids occupy their own range of one table (:attr:`BarContext.size` rows), so a
position's features are F ids whose embeddings are summed. Shapes: B rows, T positions, F
features. A row's ``place`` (B, 2) says where it lies in its tune: column 0 the number of bar lines
before its first token (its first bar's number), column 1 the bar lines in the whole tune (0:
unknown). The same ids come from whole sequences (:meth:`BarContext.teacher_forced`) and step by
step (:class:`BarTracker`) for sampling.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch

MAX_OFFSET = 64  # offsets within a bar are capped here (a bar of 12/8 at 4 steps per quarter: 24)
RUN_EDGES = (1, 2, 4, 8, 16)  # copy-run lengths (tokens) where a new bin starts


class BarContext:
    """Feature rules for one vocabulary: which tokens are bar lines, whether the position features
    are on, which lookback distances."""

    def __init__(self, bar_tokens: list[int], lookback_bars: list[int], vocab_size: int, position: bool = True,
                 max_bars: int = 16, bars_left: bool = False, copy_runs: bool = False):
        self.lookback_bars = list(lookback_bars)
        self.copy_runs = copy_runs
        self.run_edges = torch.tensor(RUN_EDGES)
        levels = len(RUN_EDGES) + 1 if copy_runs else 2  # of the lookback's second part
        self.none = vocab_size  # lookback id when the bar k back does not exist
        self.position = position
        self.max_bars = max_bars
        self.bars_left = position and bars_left
        sizes = ([(len(bar_tokens) + 1) * MAX_OFFSET, max_bars] if position else []) + \
            ([max_bars + 1] if self.bars_left else []) + \
            [levels * (vocab_size + 1)] * len(self.lookback_bars)  # metre slot 0: before the first bar line
        self.size = sum(sizes)  # rows of the feature table
        starts = list(itertools.accumulate([0, *sizes[:-1]]))
        self.offsets = torch.tensor(starts)  # (F,) where each feature's ids start
        self.unknown_length = starts[2] + max_bars if self.bars_left else None  # the id of a tune of unknown length
        slot = torch.zeros(vocab_size, dtype=torch.long)
        slot[torch.tensor(bar_tokens, dtype=torch.long)] = torch.arange(1, len(bar_tokens) + 1)
        self.slot_of = slot  # (V,) metre slot of each token, 0 for tokens that are not bar lines

    @property
    def depth(self) -> int:
        """Bar lines remembered: the current one and one per lookback distance up to the farthest."""
        return max(self.lookback_bars, default=0) + 1

    def _counterparts(self, tokens: torch.Tensor, rows: torch.Tensor | None, offset: torch.Tensor,
                      back: torch.Tensor) -> torch.Tensor:
        """(R, K) tokens at ``offset`` (R,) steps past the bar lines ``back`` (R, K) of ``tokens[rows]``."""
        at = (back + offset[:, None]).clamp(min=0, max=tokens.shape[1] - 1)
        return tokens.gather(1, at) if rows is None else tokens[rows[:, None], at]

    def features(self, tokens: torch.Tensor, rows: torch.Tensor | None, column: torch.Tensor, bars: torch.Tensor,
                 slot: torch.Tensor, count: torch.Tensor, total: torch.Tensor, run: torch.Tensor) -> torch.Tensor:
        """Feature ids (R, F) for predicting ``column`` (R,) of ``tokens[rows]`` (``tokens`` itself
        when rows is None), given the bar line positions ``bars`` (R, depth) (-1: none; column 0
        the latest), the latest bar's metre ``slot`` (R,), the number of bar lines so far (R,),
        the tune's bar lines in all (R,) (0: unknown) and the copy runs (R, K) ending before
        ``column`` (read with ``copy_runs``)."""
        offset = _offset(column, bars[:, 0])
        ids = [slot * MAX_OFFSET + offset, count.clamp(max=self.max_bars - 1)] if self.position else []
        if self.bars_left:
            ids.append(torch.where(total > 0, (total - count).clamp(0, self.max_bars - 1), self.max_bars))
        if self.lookback_bars:
            back = bars[:, self.lookback_bars]  # (R, K)
            found = self._counterparts(tokens, rows, offset, back)
            if self.copy_runs:
                level = torch.bucketize(run, self.run_edges.to(run.device), right=True)
            else:
                last = (column - 1).clamp(min=0)
                before = self._counterparts(tokens, rows, offset - 1, back)  # the previous token's counterparts
                previous = tokens.gather(1, last[:, None]).view(-1) if rows is None else tokens[rows, last]
                level = (before == previous[:, None]).long()
            ids.extend(torch.where(back >= 0, found + (self.none + 1) * level, self.none).unbind(1))
        return torch.stack(ids, 1) + self.offsets.to(column.device)

    def copied(self, tokens: torch.Tensor, rows: torch.Tensor | None, column: torch.Tensor,
               bars: torch.Tensor) -> torch.Tensor:
        """(R, K) whether ``column`` (R,) of ``tokens[rows]`` equals its counterpart k bars back,
        the bar lines ``bars`` (R, depth) being those before it."""
        back = bars[:, self.lookback_bars]
        found = self._counterparts(tokens, rows, _offset(column, bars[:, 0]), back)
        here = tokens.gather(1, column[:, None]) if rows is None else tokens[rows, column][:, None]
        return (found == here) & (back >= 0)

    def lookback_tokens(self, ids: torch.Tensor) -> torch.Tensor:
        """Feature ids (..., F) -> (..., K) the lookback tokens they name, V where none."""
        K = len(self.lookback_bars)
        return (ids[..., -K:] - self.offsets[-K:].to(ids.device)) % (self.none + 1)

    def teacher_forced(self, tokens: torch.Tensor, place: torch.Tensor | None = None) -> tuple[torch.Tensor, BarTracker]:
        """Feature ids (B, T, F) for predicting every position of (B, T) ``tokens`` from the tokens
        before it, and the tracker state before each position (flattened to B * T rows, row
        b * T + t), what a :class:`BarTracker` starts from. ``place`` (B, 2): where each row lies
        in its tune (module docstring; None: the rows start tunes of unknown length)."""
        B, T = tokens.shape
        slot_of = self.slot_of.to(tokens.device)
        is_bar = slot_of[tokens] > 0
        count = is_bar.long().cumsum(1)  # bar lines among tokens[:, :t+1]
        where = torch.full((B, T + 1), -1, dtype=torch.long, device=tokens.device)  # i-th bar line's index
        rows, cols = is_bar.nonzero(as_tuple=True)
        where[rows, count[rows, cols] - 1] = cols
        before = torch.cat([count.new_zeros(B, 1), count[:, :-1]], 1)  # bar lines among tokens[:, :t]
        place = before.new_zeros(B, 2) if place is None else place.to(before.device)
        tune_bars = before + place[:, :1]
        total = place[:, 1].repeat_interleave(T)
        idx = before[:, :, None] - 1 - torch.arange(self.depth, device=tokens.device)  # (B, T, depth)
        bars = torch.where(idx >= 0, where.gather(1, idx.clamp(min=0).view(B, -1)).view(B, T, -1), -1)
        slot = torch.where(bars[:, :, 0] >= 0, slot_of[tokens.gather(1, bars[:, :, 0].clamp(min=0))], 0)
        column = torch.arange(T, device=tokens.device).repeat(B)
        rows = torch.arange(B, device=tokens.device).repeat_interleave(T)
        bars = bars.reshape(B * T, -1)
        run = _runs(self.copied(tokens, rows, column, bars).view(B, T, -1)).view(B * T, -1) if self.copy_runs \
            else bars.new_zeros(B * T, len(self.lookback_bars))
        state = BarTracker(self, bars, slot.reshape(-1), tune_bars.reshape(-1), total, run)
        return self.features(tokens, rows, column, *state.tensors()).view(B, T, -1), state


def _runs(copied: torch.Tensor) -> torch.Tensor:
    """(B, T, K) whether each token copies the bar k back -> (B, T, K) the copy run (tokens) that
    ends just before each position."""
    t = torch.arange(copied.shape[1], device=copied.device)[None, :, None]
    broken = torch.where(copied, -1, t).cummax(1).values  # the latest position at or before t that did not copy
    ending = t - broken  # the run that ends at t (0 where t did not copy)
    return torch.cat([torch.zeros_like(ending[:, :1]), ending[:, :-1]], 1)


def _offset(column: torch.Tensor, latest: torch.Tensor) -> torch.Tensor:
    """(R,) steps from the latest bar line (-1: none, then from the start) to ``column``, capped."""
    return torch.where(latest >= 0, column - latest, column).clamp(max=MAX_OFFSET - 1)


@dataclass
class BarTracker:
    """Bar lines behind each of R rows being sampled: positions (R, depth), -1 for none, the
    latest bar's metre slot (R,), the number of bar lines so far in the tune (R,), the tune's
    bar lines in all (R,) (0: unknown) and the copy run of each lookback distance (R, K) (zeros
    without ``copy_runs``)."""

    context: BarContext
    bars: torch.Tensor
    slot: torch.Tensor
    count: torch.Tensor
    total: torch.Tensor
    run: torch.Tensor

    def tensors(self) -> tuple[torch.Tensor, ...]:
        """(bars, slot, count, total, run), the state :meth:`BarContext.features` reads."""
        return self.bars, self.slot, self.count, self.total, self.run

    def rows(self, index) -> BarTracker:
        """The tracker of some rows (a copy for an index tensor, views for a slice)."""
        return BarTracker(self.context, *(t[index] for t in self.tensors()))

    def advance(self, tokens: torch.Tensor, column: int) -> None:
        """Note the tokens just placed at ``column`` of (R, > column) ``tokens`` (in place: the
        tensors may be views)."""
        token = tokens[:, column]
        if self.context.copy_runs:
            copied = self.context.copied(tokens, None, torch.full_like(self.slot, column), self.bars)
            self.run.copy_(torch.where(copied, self.run + 1, 0))
        slot = self.context.slot_of.to(token.device)[token]
        new_bar = slot > 0
        shifted = torch.cat([torch.full_like(self.bars[:, :1], column), self.bars[:, :-1]], 1)
        self.bars.copy_(torch.where(new_bar[:, None], shifted, self.bars))
        self.slot.copy_(torch.where(new_bar, slot, self.slot))
        self.count.add_(new_bar.long())

    def features(self, tokens: torch.Tensor, column: int) -> torch.Tensor:
        """Feature ids (R, F) for predicting ``column`` of (R, >= column) ``tokens``."""
        return self.context.features(tokens, None, torch.full_like(self.slot, column), *self.tensors())
