"""The generator (LSTM policy) and the discriminator (CNN over token embeddings).

Shapes: B batch, T sequence length, V vocabulary, E embedding size, H hidden size.
"""

from __future__ import annotations

import copy
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from seqgan_music.bar_context import BarContext, BarTracker
from seqgan_music.config import DiscriminatorConfig, GeneratorConfig


def sample_from_logits(
    logits: torch.Tensor, temperature: float = 1.0, top_k: int = 0, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Draw one token per row of (R, V) logits -> (R,) int64; ``top_k`` > 0 keeps the k most likely."""
    logits = logits.float() / temperature
    if 0 < top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits.masked_fill_(logits < kth, float("-inf"))
    return inverse_cdf_sample_(logits, logits.new_empty(logits.shape[0], 1), generator)


def inverse_cdf_sample_(
    logits: torch.Tensor, u: torch.Tensor, generator: torch.Generator | None = None, block: int = 64
) -> torch.Tensor:
    """Sample from softmax of (R, V) ``logits`` by inverse CDF (cumsum + searchsorted) -> (R,).

    Works in place: ``logits`` is overwritten (by probabilities or their running sums) and ``u``
    (R, 1) by the draws, so callers can reuse buffers (no page faults from fresh large tensors on
    CPU). Several times faster than torch.multinomial on CPU. For V > 4 * ``block`` it searches
    in two levels, blocks of ``block`` tokens and then inside the drawn block, so that no
    sequential cumsum runs over all V (a third faster at V = 5000).
    """
    R, V = logits.shape
    probs = logits.sub_(logits.amax(dim=1, keepdim=True)).exp_()
    if 4 * block >= V:
        cdf = probs.cumsum_(dim=1)
        u.uniform_(generator=generator).mul_(cdf[:, -1:])
        return torch.searchsorted(cdf, u).squeeze(1).clamp_(max=V - 1)
    full, blocks = V // block, -(-V // block)
    sums = probs.new_empty(R, blocks)
    torch.sum(probs[:, : full * block].view(R, full, block), dim=2, out=sums[:, :full])
    if full < blocks:
        torch.sum(probs[:, full * block :], dim=1, keepdim=True, out=sums[:, full:])
    cdf = sums.cumsum_(dim=1)
    u.uniform_(generator=generator).mul_(cdf[:, -1:])
    chosen = torch.searchsorted(cdf, u).clamp_(max=blocks - 1)  # (R, 1)
    before = torch.where(chosen > 0, cdf.gather(1, (chosen - 1).clamp_(min=0)), 0.0)
    cols = chosen * block + torch.arange(block, device=logits.device)  # (R, block) token ids of the block
    inner = probs.gather(1, cols.clamp(max=V - 1)).masked_fill_(cols >= V, 0.0).cumsum_(dim=1)
    k = torch.searchsorted(inner, torch.minimum(u - before, inner[:, -1:])).clamp_(max=block - 1)
    return cols.gather(1, k).squeeze(1)


def token_log_probs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(B, T, V) logits and (B, T) targets -> (B, T) log-probabilities of the targets."""
    return torch.log_softmax(logits.float(), dim=-1).gather(2, targets.unsqueeze(2)).squeeze(2)


def mean_nll(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(B, T, V) logits and (B, T) targets -> mean per-token NLL in nats (a scalar)."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1))


class Generator(nn.Module):
    """Embedding -> one-layer LSTM -> linear logits. The policy G_theta(y_t | Y_1:t-1).

    With bar tokens in the vocabulary (``cfg.bar_tokens``) the input at each position also sums
    embeddings of its place in the bar and the tune, the bars left (``cfg.bars_left``) and lookback
    tokens (:mod:`seqgan_music.bar_context`); those are computed from the sequence so far and the
    row's ``place``, which is why the calls below take the history.
    With ``cfg.copy_bars`` the logits also get the copy path's bonus (:meth:`copy_bonus`).
    """

    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.embedding = nn.Embedding(cfg.vocab_size, cfg.embed_dim)
        self.lstm = nn.LSTM(cfg.embed_dim, cfg.hidden_dim, batch_first=True)
        self.out = nn.Linear(cfg.hidden_dim, cfg.vocab_size)
        features = cfg.bar_tokens and (cfg.bar_position or cfg.lookback_bars)
        self.context = BarContext(cfg.bar_tokens, cfg.lookback_bars if features else [], cfg.vocab_size,
                                  cfg.bar_position, cfg.max_bars, cfg.bars_left, cfg.copy_runs) if features else None
        self.bar_features = nn.Embedding(self.context.size, cfg.embed_dim) if self.context else None
        if self.context is not None and self.context.bars_left:
            with torch.no_grad():  # training windows always know their tune's length, so this row stays 0:
                self.bar_features.weight[self.context.unknown_length].zero_()  # an unknown length adds nothing
        copies = cfg.copy_bars and self.context is not None and self.context.lookback_bars
        self.copy = nn.Linear(cfg.hidden_dim, len(cfg.lookback_bars)) if copies else None

    def forward(self, inputs: torch.Tensor, state=None, history: torch.Tensor | None = None,
                place: torch.Tensor | None = None):
        """(B, L) input ids -> (B, L, V) logits of the next token, and the LSTM state. ``history``
        (B, N >= L): the sequence whose last L positions the inputs predict (its tokens from each
        position on are not read); needed when the generator has bar features. ``place`` (B, 2):
        where each history lies in its tune, its first bar's number and the tune's bar lines in all
        (:mod:`seqgan_music.bar_context`; None: tunes of unknown length, from their start)."""
        x, ids = self.embedding(inputs), None
        if self.context is not None:
            ids = self.context.teacher_forced(history, place)[0][:, -inputs.shape[1]:]  # (B, L, F)
            x = x + F.embedding_bag(ids.reshape(-1, ids.shape[-1]), self.bar_features.weight, mode="sum").view_as(x)
        drop = self.training and self.cfg.dropout > 0  # otherwise F.dropout returns its input untouched
        hidden, state = self.lstm(F.dropout(x, self.cfg.dropout, drop), state)
        hidden = F.dropout(hidden, self.cfg.dropout, drop)
        logits = self.out(hidden)
        return (logits if self.copy is None else logits.scatter_add(-1, *self.copy_bonus(hidden, ids))), state

    def clone(self) -> Generator:
        """A deep copy whose LSTM weights lie in one contiguous chunk again, as ``.to(device)``
        leaves them: cuDNN would otherwise copy them into one at every call (and warn). A
        no-op beyond the copy on the CPU."""
        twin = copy.deepcopy(self)
        twin.lstm.flatten_parameters()
        return twin

    def copy_bonus(self, hidden: torch.Tensor, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The copy path: (..., H) hidden states and (..., F) feature ids of the positions they
        predict -> (index, bonus), each (..., K), to scatter-add into the (..., V) logits: a learnt
        bonus (a linear function of the state) for the token k bars back, per lookback distance."""
        tokens = self.context.lookback_tokens(ids)
        none = tokens == self.cfg.vocab_size
        return tokens.masked_fill(none, 0), self.copy(hidden).masked_fill(none, 0.0)

    def shifted_inputs(self, targets: torch.Tensor) -> torch.Tensor:
        """(B, T) targets -> (B, T) inputs: the start token, then targets[:, :-1]."""
        start = torch.full_like(targets[:, :1], self.cfg.start_token)
        return torch.cat([start, targets[:, :-1]], dim=1)

    def teacher_forced_logits(self, targets: torch.Tensor, place: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T) ids -> (B, T, V) logits of each token given the ones before it (``place``:
        see :meth:`forward`)."""
        return self(self.shifted_inputs(targets), None, targets, place)[0]

    def log_probs(self, targets: torch.Tensor) -> torch.Tensor:
        """(B, T) ids -> (B, T) log G(y_t | Y_1:t-1), teacher forced from the start token."""
        return token_log_probs(self.teacher_forced_logits(targets), targets)

    def nll(self, targets: torch.Tensor, place: torch.Tensor | None = None) -> torch.Tensor:
        """Mean per-token negative log-likelihood (nats) of (B, T) targets; a scalar."""
        return mean_nll(self.teacher_forced_logits(targets, place), targets)

    # fast stepping: the input projection of every token is one table row
    def _gate_weights(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """LSTM weights with the gates reordered to i, f, o, g and the g rows doubled (the layout
        :func:`lstm_step_` reads): w_ih (4H, E), w_hh (4H, H), bias (4H,)."""
        lstm, H, dev = self.lstm, self.cfg.hidden_dim, self.lstm.weight_hh_l0.device
        order = torch.cat([torch.arange(0, 2 * H), torch.arange(3 * H, 4 * H), torch.arange(2 * H, 3 * H)]).to(dev)
        scale = torch.ones(4 * H, device=dev)
        scale[3 * H :] = 2.0
        w_ih, w_hh = lstm.weight_ih_l0[order] * scale[:, None], lstm.weight_hh_l0[order] * scale[:, None]
        return w_ih, w_hh, (lstm.bias_ih_l0 + lstm.bias_hh_l0)[order] * scale

    def step_tables(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(V, 4H) input gates per token (biases folded in) and (H, 4H) recurrent weights, in the
        layout :func:`lstm_step_` reads."""
        w_ih, w_hh, bias = self._gate_weights()
        return self.embedding.weight @ w_ih.t() + bias, w_hh.t().contiguous()

    def context_gates(self) -> ContextGates | None:
        """The bar features' input gates as a table (None without bar features)."""
        if self.context is None:
            return None
        return ContextGates(self.context, self.bar_features.weight @ self._gate_weights()[0].t())

    def initial_state(self, rows: int) -> tuple[torch.Tensor, torch.Tensor]:
        dev = self.out.weight.device
        zeros = torch.zeros(rows, self.cfg.hidden_dim, device=dev)
        return zeros, zeros.clone()

    @torch.no_grad()
    def prefix_states(self, tokens: torch.Tensor, place: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """LSTM (h, c) after the start token and each of ``tokens`` (B, P): two (P+1, B, H) tensors
        (``place``: see :meth:`forward`).

        Index 0 is the state after the start token alone, index p after tokens[:, :p].
        """
        table, w_hh = self.step_tables()
        B, P = tokens.shape
        h, c = self.initial_state(B)
        start = torch.full((B, 1), self.cfg.start_token, dtype=torch.long, device=tokens.device)
        inputs = torch.cat([start, tokens], dim=1)
        gates = table[inputs]  # (B, P+1, 4H)
        context = self.context_gates()
        if context is not None:
            gates += context.teacher_forced(inputs.roll(-1, 1), place)  # features of positions 0..P
        hs, cs = [], []
        for t in range(P + 1):
            h, c = lstm_step(gates[:, t], h, c, w_hh)
            hs.append(h)
            cs.append(c)
        return torch.stack(hs), torch.stack(cs)

    @torch.no_grad()
    def sample(
        self, num: int, steps: int, temperature: float = 1.0, top_k: int = 0, primer: torch.Tensor | None = None,
        generator: torch.Generator | None = None, bar_line: tuple[int, int] | None = None,
        end_token: int | None = None, may_end: bool = True, place: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Sample (num, steps) token ids, continuing ``primer`` (P,) ids when given (not included).
        ``end_token``: the vocabulary's END; after it a row is END to its end. ``bar_line``
        (choices, period): at every period-th new token from the first one of the bar tokens
        ``choices`` ((token, k) pairs: a bar line that repeats the bar k back, 0 for a new bar; only
        those with k bars behind them), no bar token (nor END) anywhere else: whole bars of one
        metre; with ``may_end`` the model may write END instead at any of those bar lines but the
        first, else never. ``place`` (num, 2): where each row lies in its tune (see :meth:`forward`),
        as a training window from the middle of a tune is told it."""
        table, w_hh = self.step_tables()
        primer = torch.zeros(0, dtype=torch.long) if primer is None else primer
        P = len(primer)
        out = torch.empty(num, P + steps, dtype=torch.long, device=table.device)
        out[:, :P] = primer.to(table.device)
        hs, cs = self.prefix_states(out[:, :P], place)
        h, c = hs[-1], cs[-1]
        context = self.context_gates()
        tracker = context.tracker(out, P, place) if context is not None else None
        ids = tracker.features(out, P) if tracker is not None else None  # of the column to draw
        ended = torch.zeros(num, dtype=torch.bool, device=table.device)
        primer_bars = int(torch.isin(primer.cpu(), torch.tensor(self.cfg.bar_tokens, dtype=torch.long)).sum())
        for t in range(P, P + steps):
            logits = self.out(h)
            if self.copy is not None:
                logits.scatter_add_(1, *self.copy_bonus(h, ids))
            if bar_line is not None:
                logits = self._bar_line_logits(logits, *bar_line, t - P, primer_bars, end_token, may_end)
            if ended.any():
                logits[ended] = torch.full_like(logits[ended], float("-inf")).index_fill_(1, self._ids([end_token]), 0.0)
            out[:, t] = sample_from_logits(logits, temperature, top_k, generator)
            if end_token is not None:
                ended |= out[:, t] == end_token
                if ended.all():
                    out[:, t + 1 :] = end_token
                    break
            if t + 1 < P + steps:
                gates = table[out[:, t]]
                if tracker is not None:
                    gates, ids = context.after(tracker, out, t, gates)
                h, c = lstm_step(gates, h, c, w_hh)
        return out[:, P:]

    def _ids(self, tokens: list[int]) -> torch.Tensor:
        return torch.tensor(tokens, device=self.out.weight.device)

    def _bar_line_logits(self, logits: torch.Tensor, choices: list[tuple[int, int]], period: int, new: int,
                         bars_before: int, end_token: int | None, may_end: bool) -> torch.Tensor:
        """(R, V) logits of the ``new``-th new token restricted as :meth:`sample` describes
        (``bars_before``: bar lines before the first new token)."""
        if new % period == 0:
            behind = bars_before + new // period
            allowed = [tok for tok, k in choices if k <= behind] + \
                ([end_token] if end_token is not None and may_end and new > 0 else [])
            return torch.full_like(logits, float("-inf")).index_copy_(1, self._ids(allowed), logits[:, allowed])
        logits[:, self.cfg.bar_tokens + ([end_token] if end_token is not None else [])] = float("-inf")
        return logits


class ContextGates:
    """Input gates of the bar features: a (context.size, 4H) table whose rows add to a token's
    gates (:meth:`Generator.step_tables` layout); a position's F rows are summed in one
    ``embedding_bag``."""

    def __init__(self, context: BarContext, table: torch.Tensor):
        self.context, self.table = context, table

    def _sum(self, ids: torch.Tensor, token_gates: torch.Tensor | None = None) -> torch.Tensor:
        """(R, F) feature ids -> (R, 4H) summed gates (plus ``token_gates``)."""
        gates = F.embedding_bag(ids, self.table, mode="sum")
        return gates if token_gates is None else gates.add_(token_gates)

    def teacher_forced(self, tokens: torch.Tensor, place: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T) tokens -> (B, T, 4H) gates of every position's features (``place``: see
        :meth:`BarContext.teacher_forced`)."""
        ids = self.context.teacher_forced(tokens, place)[0]
        return self._sum(ids.reshape(-1, ids.shape[-1])).view(*tokens.shape, -1)

    def tracker(self, tokens: torch.Tensor, column: int, place: torch.Tensor | None = None) -> BarTracker:
        """A tracker of the bar lines in ``tokens[:, :column]``, ready to predict ``column``."""
        history = torch.cat([tokens[:, :column], tokens.new_zeros(len(tokens), 1)], 1)
        state = self.context.teacher_forced(history, place)[1]
        return state.rows(torch.arange(len(tokens), device=tokens.device) * (column + 1) + column)

    def after(self, tracker: BarTracker, tokens: torch.Tensor, column: int,
              token_gates: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Note the tokens just drawn at ``column`` of (R, > column) ``tokens`` in ``tracker``; ->
        (R, 4H) input gates for predicting column + 1: ``token_gates`` (those tokens' table rows)
        plus the features', and the (R, F) feature ids of column + 1."""
        tracker.advance(tokens, column)
        ids = tracker.features(tokens, column + 1)
        return self._sum(ids, token_gates), ids


def lstm_step_(gates: torch.Tensor, h: torch.Tensor, c: torch.Tensor, w_hh_t: torch.Tensor) -> None:
    """One LSTM step in place. ``gates`` (R, 4H) holds the input gates in the layout of
    :meth:`Generator.step_tables` (i, f, o, 2g) and is overwritten; h, c (R, H) become the new state.

    Every nonlinearity is one sigmoid, tanh(x) = 2 sigmoid(2x) - 1: on a CPU tanh costs several
    times a sigmoid, and the sigmoid over all 4H gates is one contiguous pass.
    """
    H = h.shape[1]
    gates.addmm_(h, w_hh_t).sigmoid_()
    g = gates[:, 3 * H :].mul_(2.0).sub_(1.0)
    c.mul_(gates[:, H : 2 * H]).addcmul_(gates[:, :H], g)
    torch.mul(c, 2.0, out=h).sigmoid_().mul_(2.0).sub_(1.0).mul_(gates[:, 2 * H : 3 * H])


def lstm_step(gates_x: torch.Tensor, h: torch.Tensor, c: torch.Tensor, w_hh_t: torch.Tensor):
    """One LSTM step from precomputed input gates (R, 4H) -> new (h, c); inputs untouched."""
    h, c = h.clone(), c.clone()
    lstm_step_(gates_x.clone(), h, c, w_hh_t)
    return h, c


@contextmanager
def eval_mode(module: torch.nn.Module):
    """Run a block with ``module`` in eval mode (no dropout), then restore its mode."""
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)


def places_like(policy: Generator, pool: torch.Tensor | None, num: int, generator: torch.Generator) -> torch.Tensor | None:
    """(num, 2) places drawn from ``pool`` (those of real windows, on the generator's device), where
    samples start so that they are spread over tunes as those windows are; None (every sample
    starts its tune) when ``policy`` has no bar features or the pool is empty."""
    if policy.context is None or pool is None or not len(pool):
        return None
    return pool[torch.randint(len(pool), (num,), generator=generator, device=pool.device)]


NEVER = -1e4  # an output bias no draw picks (exp underflows to 0 in float32), finite so log-probs and KL stay finite


@contextmanager
def never_drawing(policy: Generator, token: int | None):
    """Run a block in which ``policy`` gives ``token`` no probability (its output bias is
    :data:`NEVER`; restored afterwards); a no-op for None. Every sampler (``sample``, the rollout
    engines) and every log-prob inside the block sees the same policy."""
    if token is None:
        yield policy
        return
    kept = policy.out.bias.data[token].item()
    policy.out.bias.data[token] = NEVER
    try:
        yield policy
    finally:
        policy.out.bias.data[token] = kept


def real_probability(logits: torch.Tensor) -> torch.Tensor:
    """(R, 2) discriminator logits -> (R,) probability of the class real (index 1)."""
    return torch.softmax(logits.float(), dim=1)[:, 1]


class Highway(nn.Module):
    """y = t * relu(W x) + (1 - t) * x with transform gate t = sigmoid(W_t x) (paper's D)."""

    def __init__(self, dim: int):
        super().__init__()
        self.proj = nn.Linear(dim, dim)
        self.gate = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = torch.sigmoid(self.gate(x))
        return t * F.relu(self.proj(x)) + (1.0 - t) * x


class Discriminator(nn.Module):
    """CNN text classifier of the paper: convolutions of several widths, max-over-time pooling,
    a highway layer, dropout, and a 2-class output (index 1 = real)."""

    def __init__(self, cfg: DiscriminatorConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.embedding = nn.Embedding(cfg.vocab_size, cfg.embed_dim)
        self.convs = nn.ModuleList(nn.Conv1d(cfg.embed_dim, n, w) for w, n in zip(cfg.filter_widths, cfg.num_filters))
        features = sum(cfg.num_filters)
        self.highway = Highway(features)
        self.dropout = nn.Dropout(1.0 - cfg.dropout_keep)
        self.out = nn.Linear(features, 2)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, T) ids -> (B, 2) logits (fake, real)."""
        x = self.embedding(tokens).transpose(1, 2)  # (B, E, T)
        return self.classify(torch.cat([conv(x).amax(dim=2) for conv in self.convs], dim=1))

    def classify(self, pooled: torch.Tensor) -> torch.Tensor:
        """(R, F) max-over-time pooled convolution outputs -> (R, 2) logits. relu commutes with
        the max, so only the pooled features are rectified."""
        return self.out(self.dropout(self.highway(pooled.relu())))

    def conv_tables(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per filter width w: a (w*V, n) table whose row k*V + v is the filter bank's response to
        token v at offset k of a window, and the (n,) bias. A window's convolution output is its
        bias plus the sum of w table rows: with a small vocabulary, gathers instead of matmuls."""
        emb = self.embedding.weight  # (V, E)
        return [(torch.einsum("ve,nek->kvn", emb, conv.weight).reshape(-1, conv.out_channels), conv.bias)
                for conv in self.convs]

    def conv_table_bytes(self) -> int:
        """Size of :meth:`conv_tables` in bytes (float32): V * sum of w * n over the widths."""
        cfg = self.cfg
        return 4 * cfg.vocab_size * sum(w * n for w, n in zip(cfg.filter_widths, cfg.num_filters))

    def prob_real(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, T) ids -> (B,) probability that each sequence is real."""
        return real_probability(self(tokens))

    def l2_penalty(self) -> torch.Tensor:
        """The paper's L2 term on the output layer: l2_reg * (|W|^2 + |b|^2) / 2."""
        return self.cfg.l2_reg * 0.5 * (self.out.weight.square().sum() + self.out.bias.square().sum())
