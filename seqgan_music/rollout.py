"""Monte Carlo rewards of SeqGAN, batched over every (prefix length, rollout) pair. No I/O.

Q(Y_1:t-1, y_t) for t < T is the mean over N rollouts of D(Y_1:t completed by the rollout policy);
at t = T it is D(Y_1:T). Shapes: B samples, T length, N rollouts, M = n*B rows per prefix block.

The batched sampler runs the rollout policy once over the samples (teacher forced) to get the
LSTM state after every prefix, then advances all rollouts together: at position j the rows of
prefixes 1..j are active, ordered by prefix length, so a block of M rows joins per step and no
row is wasted. About T sequential steps instead of the N x (T-1) full passes of the reference
implementations. D then scores the completions sharing the work of each prefix among its N
completions (:func:`score_completions`). A plain sequential implementation of the same
algorithm is kept here as the correctness reference for tests and the benchmark.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from seqgan_music import native
from seqgan_music.bar_context import BarTracker
from seqgan_music.models import (
    ContextGates,
    Discriminator,
    Generator,
    eval_mode,
    inverse_cdf_sample_,
    lstm_step_,
    real_probability,
)

# D pools the completions of as many prefix lengths at a time as fit in this many bytes of features
# (a fresh allocation over glibc's 32 MB mmap threshold page-faults on every call: ~10 ms for 40 MB)
POOLED_SLICE_BYTES = 8 << 20


def chunk_rows(device: torch.device, columns: int) -> int:
    """Rows advanced together in one step: all of them on a GPU; on a CPU as many as keep a
    chunk's step buffer (``columns`` floats per row: logits and gates) near 16 MB, 256 to 4,096
    rows (measured fastest on a 2-core CPU for V = 39, H = 64 and V = 5000, H = 32)."""
    if device.type != "cpu":
        return 1 << 30
    return int(min(4096, max(256, 2**22 // columns)))


def _repeating_addmm(bias: torch.Tensor, h: torch.Tensor, weight: torch.Tensor, out: torch.Tensor,
                     distinct: int | None) -> torch.Tensor:
    """out = bias + h @ weight for (n, K) ``h`` whose rows repeat with period ``distinct`` (None:
    no repeats): only the first period is multiplied, the rest copied. -> ``out``."""
    if distinct is None or distinct == len(h):
        return torch.addmm(bias, h, weight, out=out)
    torch.addmm(bias, h[:distinct], weight, out=out[:distinct])
    out[distinct:].view(-1, distinct, out.shape[1]).copy_(out[:distinct])
    return out


def _torch_stepper(policy: Generator, total_rows: int, generator: torch.Generator | None):
    """Rollout step in PyTorch ops (any device): logits matmul, inverse-CDF draw, LSTM step (with
    the bar features' gates when the policy has them)."""
    table, w_hh = policy.step_tables()
    context = policy.context_gates()
    w_out, b_out = policy.out.weight.t(), policy.out.bias
    rows = min(total_rows, chunk_rows(table.device, table.shape[1] + table.shape[0]))
    logits = table.new_empty(rows, table.shape[0])
    gates = table.new_empty(rows, table.shape[1])
    u = table.new_empty(rows, 1)

    def step(h, c, tokens, column: int, advance: bool, distinct: int | None = None, bars=None) -> None:
        n = len(h)
        _repeating_addmm(b_out, h, w_out, logits[:n], distinct)
        if bars is not None:
            bars.add_copy_bonus(logits[:n], h)
        tok = inverse_cdf_sample_(logits[:n], u[:n], generator)
        tokens[:, column] = tok
        if advance:
            if context is None:
                lstm_step_(torch.index_select(table, 0, tok, out=gates[:n]), h, c, w_hh)
            else:
                lstm_step_(bars.after(context, tokens, column, table[tok]), h, c, w_hh)

    return step, rows


def _native_stepper(policy: Generator, total_rows: int, generator: torch.Generator | None):
    """Rollout step with the fused C kernels (CPU): one matmul for logits and recurrent gates (the
    logits only at the last step), then sampling and the LSTM update in one pass per row
    (:func:`native.rollout_step`). With bar features the inputs depend on the drawn token, so the
    draw (:func:`native.sample_rows`) and the update (:func:`native.lstm_rows`) are two passes with
    the features' gates computed between them."""
    table, w_hh = policy.step_tables()
    context = policy.context_gates()
    w_out, b_out = policy.out.weight.t().contiguous(), policy.out.bias
    w_cat = torch.cat([w_out, w_hh], dim=1).contiguous()  # (H, V + 4H)
    b_cat = torch.cat([b_out, torch.zeros_like(w_hh[0])])
    V = w_out.shape[1]
    rows = min(total_rows, chunk_rows(table.device, w_cat.shape[1]))
    hw = table.new_empty(rows, w_cat.shape[1])
    logits = table.new_empty(rows, V)
    u = table.new_empty(rows)

    def step(h, c, tokens, column: int, advance: bool, distinct: int | None = None, bars=None) -> None:
        n = len(h)
        weight, bias, out = (w_cat, b_cat, hw[:n]) if advance else (w_out, b_out, logits[:n])
        _repeating_addmm(bias, h, weight, out, distinct)
        u[:n].uniform_(generator=generator)
        if bars is not None:
            bars.add_copy_bonus(out[:, :V], h)
        if context is None or not advance:
            native.rollout_step(out, table, h, c, u[:n], tokens, column, advance)
            return
        native.sample_rows(out, V, u[:n], tokens, column)
        native.lstm_rows(out, V, bars.after(context, tokens, column, table[tokens[:, column]]), h, c)

    return step, rows


@torch.no_grad()
def batched_completions(
    samples: torch.Tensor, policy: Generator, num: int, generator: torch.Generator | None = None,
    place: torch.Tensor | None = None,
) -> torch.Tensor:
    """Complete every proper prefix of (B, T) ``samples`` ``num`` times -> (T-1, num, B, T) ids.

    Entry [p-1, n, b] is samples[b, :p] followed by tokens drawn from ``policy``; ``place``
    (B, 2): where each sample lies in its tune (:meth:`Generator.forward`). On a CPU the steps run in
    the fused C kernel when it could be built (:mod:`seqgan_music.native`).
    """
    B, T = samples.shape
    M = num * B
    hs, cs = policy.prefix_states(samples[:, :-1], place)  # (T, B, H): index p = after samples[:, :p]
    rows = (T - 1) * M
    h_buf = hs.new_empty(rows, hs.shape[-1])
    c_buf = torch.empty_like(h_buf)
    out = samples.repeat(num, 1).repeat(T - 1, 1)  # (rows, T), prefixes already in place
    fused = native.available(samples.device, policy.cfg.vocab_size)
    step, chunk = (_native_stepper if fused else _torch_stepper)(policy, rows, generator)
    bars = _BarBuffers(policy, samples, rows, place) if policy.context is not None else None
    for j in range(1, T):
        joined = (j - 1) * M  # rows of prefixes 1..j-1; the rollouts of prefix length j join now
        h_buf[joined : j * M].view(num, B, -1).copy_(hs[j])
        c_buf[joined : j * M].view(num, B, -1).copy_(cs[j])
        if bars is not None:
            bars.join(joined, j * M, j)
        for start, end, distinct in _step_spans(joined, j * M, chunk, B):
            rows = bars.rows(start, end) if bars is not None else None
            step(h_buf[start:end], c_buf[start:end], out[start:end], j, j + 1 < T, distinct, rows)
    return out.view(T - 1, num, B, T)


class _BarBuffers:
    """The bar lines behind every rollout row (:class:`BarTracker` state) and the feature ids of
    the column each row draws next, filled as rows join."""

    def __init__(self, policy: Generator, samples: torch.Tensor, rows: int, place: torch.Tensor | None):
        B, T = samples.shape
        self.policy = policy
        self.ids_before, self.before = policy.context.teacher_forced(samples, place)  # (B, T, F); row b * T + t
        self.index = torch.arange(B, device=samples.device) * T  # rows of position 0
        self.state = BarTracker(policy.context, *(samples.new_empty(rows, *t.shape[1:]) for t in self.before.tensors()))
        self.ids = samples.new_empty(rows, self.ids_before.shape[2])

    def join(self, start: int, end: int, prefix: int) -> None:
        """Rows [start, end) continue prefixes of length ``prefix`` (the samples, repeated)."""
        joined = self.before.rows(self.index + prefix)
        B = len(self.index)
        for mine, theirs in (*zip(self.state.tensors(), joined.tensors()), (self.ids, self.ids_before[:, prefix])):
            mine[start:end].view(-1, B, *theirs.shape[1:]).copy_(theirs)

    def rows(self, start: int, end: int) -> _BarRows:
        return _BarRows(self, slice(start, end))


class _BarRows:
    """A range of the rows of :class:`_BarBuffers`, as one rollout step sees them."""

    def __init__(self, buffers: _BarBuffers, rows: slice):
        self.policy, self.ids, self.tracker = buffers.policy, buffers.ids[rows], buffers.state.rows(rows)

    def add_copy_bonus(self, logits: torch.Tensor, h: torch.Tensor) -> None:
        """Add the policy's copy bonus (if it has a copy path) to the rows' (n, V) logits in place."""
        if self.policy.copy is not None:
            logits.scatter_add_(1, *self.policy.copy_bonus(h, self.ids))

    def after(self, context: ContextGates, tokens: torch.Tensor, column: int, token_gates: torch.Tensor) -> torch.Tensor:
        """:meth:`ContextGates.after` for the rows: their (n, 4H) input gates for column + 1."""
        gates, ids = context.after(self.tracker, tokens, column, token_gates)
        if self.policy.copy is not None:  # only the copy path reads them
            self.ids.copy_(ids)
        return gates


def _step_spans(joined: int, active: int, chunk: int, period: int) -> list[tuple[int, int, int | None]]:
    """(start, end, distinct) row ranges of one step, at most ``chunk`` rows each. Rows [0, joined)
    are rollouts under way; rows [joined, active) have just joined and repeat the ``period``
    prefix states, so their ranges hold whole periods and say so (the matmul needs one period).
    Plain ranges over all rows when a chunk cannot hold a whole period."""
    whole = chunk // period * period
    if not whole:
        return [(s, min(s + chunk, active), None) for s in range(0, active, chunk)]
    return ([(s, min(s + chunk, joined), None) for s in range(0, joined, chunk)]
            + [(s, min(s + whole, active), period) for s in range(joined, active, whole)])


@torch.no_grad()
def sequential_completions(
    samples: torch.Tensor, policy: Generator, num: int, generator: torch.Generator | None = None,
    place: torch.Tensor | None = None,
) -> torch.Tensor:
    """Reference sampler, as the public implementations do it: for each rollout and prefix, a
    full teacher-forced pass over the prefix, then token-by-token multinomial sampling.
    -> (T-1, num, B, T), same meaning as :func:`batched_completions`."""
    B, T = samples.shape
    out = samples.new_empty(T - 1, num, B, T)
    for n in range(num):
        for p in range(1, T):
            logits, state = policy(policy.shifted_inputs(samples[:, :p]), None, samples[:, :p], place)
            seq = samples.clone()
            inputs = samples[:, p - 1 : p]
            logits, state = policy(inputs, state, seq[:, : p + 1], place)
            for t in range(p, T):
                probs = torch.softmax(logits[:, -1], dim=-1)
                seq[:, t] = torch.multinomial(probs, 1, generator=generator).squeeze(1)
                if t + 1 < T:
                    logits, state = policy(seq[:, t : t + 1], state, seq[:, : t + 2], place)
            out[p - 1, n] = seq
    return out


@torch.no_grad()
def score(disc: Discriminator, sequences: torch.Tensor, batch_rows: int = 1024) -> torch.Tensor:
    """D's probability of real for (..., T) sequences, in eval mode, ``batch_rows`` at a time. -> (...)."""
    flat = sequences.reshape(-1, sequences.shape[-1])
    with eval_mode(disc):
        probs = torch.cat([disc.prob_real(flat[i : i + batch_rows]) for i in range(0, len(flat), batch_rows)])
    return probs.view(sequences.shape[:-1])


@torch.no_grad()
def score_completions(disc: Discriminator, samples: torch.Tensor, completions: torch.Tensor) -> torch.Tensor:
    """D's probability of real for (T-1, N, B, T) completions of (B, T) samples -> (T-1, N, B).

    Equal to :func:`score` of the completions, with the work shared among the N completions of a
    prefix: for prefix length p, the convolution windows inside the prefix are pooled once per
    sample (a running max over the sample's own convolution outputs); only the windows reaching
    into the completion are computed, each as the sum of w rows of
    :meth:`Discriminator.conv_tables` (in the fused C kernel on a CPU, else one ``embedding_bag``
    per width and prefix length). On a CPU D's head after the highway's matmul is fused too.
    """
    P, N, B, T = completions.shape
    features = sum(disc.cfg.num_filters)
    fused = native.available(completions.device, disc.cfg.vocab_size)
    pool, make_head = (_pool_native, _native_head) if fused else (_pool_torch, _torch_head)
    per_slice = max(1, POOLED_SLICE_BYTES // (N * B * features * 4))  # prefix lengths pooled at a time
    probs = torch.empty(P, N * B, device=completions.device)
    with eval_mode(disc):
        tokens = completions.to(torch.int32).view(P, N * B, T)
        real_probs = make_head(disc)
        # per width w: the samples' own windows as a (B, T-w+1, n) running max over window starts
        widths = [(w, table, bias, (_window_sums(samples.unfold(1, w, 1), table) + bias).cummax(dim=1).values)
                  for w, (table, bias) in zip(disc.cfg.filter_widths, disc.conv_tables())]
        for first in range(1, T, per_slice):
            part = tokens[first - 1 : first - 1 + per_slice]
            pooled = torch.empty(*part.shape[:2], features, device=completions.device)
            pool(part, widths, pooled, first)
            probs[first - 1 : first - 1 + per_slice] = real_probs(pooled.view(-1, features)).view(len(part), -1)
    return probs.view(P, N, B)


def _torch_head(disc: Discriminator, rows: int = 4096):
    """D's probability of real with PyTorch ops: a function of (R, F) pooled features -> (R,),
    ``rows`` at a time."""
    return lambda features: torch.cat([real_probability(disc.classify(part)) for part in features.split(rows)])


def _native_head(disc: Discriminator, rows: int = 2048):
    """:func:`_torch_head` for rectified features (D in eval mode, CPU): the highway's two layers
    as one matmul, the rest in one fused C pass per row (:func:`native.highway_real_prob`). The
    joined weights are built once, here."""
    highway, out = disc.highway, disc.out
    weight = torch.cat([highway.gate.weight, highway.proj.weight]).t()  # (F, 2F)
    bias = torch.cat([highway.gate.bias, highway.proj.bias])
    w_diff = (out.weight[1] - out.weight[0]).contiguous()
    b_diff = float(out.bias[1] - out.bias[0])

    def real_probs(features: torch.Tensor) -> torch.Tensor:
        probs = features.new_empty(len(features))
        z = features.new_empty(min(rows, len(features)), 2 * features.shape[1])
        for start in range(0, len(features), rows):
            part = features[start : start + rows]
            torch.addmm(bias, part, weight, out=z[: len(part)])
            native.highway_real_prob(z[: len(part)], part, w_diff, b_diff, probs[start : start + len(part)])
        return probs

    return real_probs


def _pool_torch(tokens, widths, pooled: torch.Tensor, first: int) -> None:
    """pooled (P, R, F): D's rectified pooled features with PyTorch ops (any device). Per filter
    width and prefix length p, one ``embedding_bag`` sums the w table rows of every window reaching
    p. tokens (P, R, T) int32 of prefix lengths first .. first + P - 1; widths as for
    :func:`native.pool_windows`: (w, table (w V, n), bias (n,), inside (B, T - w + 1, n))."""
    P, R, T = tokens.shape
    col = 0
    for w, table, bias, inside in widths:
        n, B = table.shape[1], inside.shape[0]
        for i, p in enumerate(range(first, first + P)):
            windows = tokens[i].unfold(1, w, 1)[:, max(0, p - w + 1) :]  # (R, L, w): those reaching p
            feats = _window_sums(windows, table).amax(dim=1) + bias
            if p >= w:  # some windows lie inside the prefix
                feats = torch.maximum(feats.view(-1, B, n), inside[:, p - w]).view(R, n)
            pooled[i, :, col : col + n] = feats.relu_()
        col += n


def _pool_native(tokens, widths, pooled: torch.Tensor, first: int) -> None:
    """:func:`_pool_torch` in one fused C pass per completion (:func:`native.pool_windows`), CPU only."""
    native.pool_windows(tokens.contiguous(), [(w, t.contiguous(), b.contiguous(), i.contiguous())
                                              for w, t, b, i in widths], pooled, first)


def _window_sums(windows: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """(R, L, w) token windows -> (R, L, n): each window's sum of the w rows k V + token at offset k
    of a (w V, n) :meth:`Discriminator.conv_tables` table (its convolution output less the bias)."""
    R, L, w = windows.shape
    offsets = torch.arange(w, device=windows.device, dtype=windows.dtype) * (table.shape[0] // w)
    return F.embedding_bag((windows + offsets).reshape(-1, w), table, mode="sum").view(R, L, -1)


def rollouts_per_chunk(batch: int, seq_len: int, hidden: int, features: int, memory_mb: int) -> int:
    """How many rollouts one chunk may hold so that the tensors growing with it (per row: LSTM
    states 2 H floats, T ids, D's F pooled features) stay under ``memory_mb``. Logits and gates
    live in fixed-size step buffers (:func:`chunk_rows`), so V does not enter."""
    bytes_per_rollout = (seq_len - 1) * batch * (2 * hidden * 4 + seq_len * 8 + features * 4)
    return max(1, int(memory_mb * 2**20 // bytes_per_rollout))


@torch.no_grad()
def rollout_rewards(
    samples: torch.Tensor, policy: Generator, disc: Discriminator, num: int, memory_mb: int = 512,
    generator: torch.Generator | None = None, sequential: bool = False, place: torch.Tensor | None = None,
) -> torch.Tensor:
    """(B, T) samples -> (B, T) rewards in [0, 1]; rollouts chunked under ``memory_mb``;
    ``place`` (B, 2): where each sample lies in its tune (:meth:`Generator.forward`).

    D scores with shared prefixes when its per-token tables fit in ``memory_mb`` (they grow with
    V: 250 MB for the oracle's V = 5000 and the paper's D), else every completion densely.
    ``sequential`` runs the reference: :func:`sequential_completions`, and D on each
    (rollout, prefix length) batch of B completions, as the public implementations do.
    """
    B, T = samples.shape
    per_chunk = rollouts_per_chunk(B, T, policy.cfg.hidden_dim, sum(disc.cfg.num_filters), memory_mb)
    shared = disc.conv_table_bytes() <= memory_mb * 2**20
    total = torch.zeros(T - 1, B, device=samples.device)
    done = 0
    while done < num:
        n = min(per_chunk, num - done)
        if sequential:
            scores = score(disc, sequential_completions(samples, policy, n, generator, place), batch_rows=B)
        elif shared:
            scores = score_completions(disc, samples, batched_completions(samples, policy, n, generator, place))
        else:
            scores = score(disc, batched_completions(samples, policy, n, generator, place))
        total += scores.sum(dim=1)
        done += n
    rewards = torch.empty(B, T, device=samples.device)
    rewards[:, :-1] = (total / num).t()
    rewards[:, -1] = score(disc, samples)
    return rewards


@torch.no_grad()
def update_rollout_policy(policy: Generator, generator: Generator, rate: float) -> None:
    """beta <- rate * beta + (1 - rate) * theta for every parameter (rate 0 copies G)."""
    for beta, theta in zip(policy.parameters(), generator.parameters()):
        beta.mul_(rate).add_(theta.detach(), alpha=1.0 - rate)
