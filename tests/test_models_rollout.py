from __future__ import annotations

import itertools

import pytest
import torch

from seqgan_music import native, rollout
from seqgan_music.bar_context import BarContext
from seqgan_music.config import DiscriminatorConfig, GeneratorConfig, make_run_config, paper_filter_table
from seqgan_music.models import (
    Discriminator,
    Generator,
    lstm_step_,
    never_drawing,
    real_probability,
    sample_from_logits,
)
from seqgan_music.rollout import (
    _native_head,
    batched_completions,
    rollout_rewards,
    score,
    score_completions,
    sequential_completions,
    update_rollout_policy,
)


@pytest.fixture(params=["native", "torch"])
def engine(request):
    """Run a test on the fused C kernels (which must have built here) and on the PyTorch path."""
    if request.param == "native":
        assert native.available(torch.device("cpu")), "the C kernels did not build: is a C compiler installed?"
        yield request.param
    else:
        with native.switched_off():
            yield request.param


def tiny_gen(vocab=3, seed=0, hidden=8):
    torch.manual_seed(seed)
    g = Generator(GeneratorConfig(vocab_size=vocab, embed_dim=4, hidden_dim=hidden))
    with torch.no_grad():  # sharpen so that distributions are far from uniform and prefix-dependent
        g.embedding.weight.mul_(3)
        g.lstm.weight_ih_l0.mul_(3)
        g.out.weight.mul_(4)
    return g


def position_d(position: int, vocab: int, seq_len: int) -> Discriminator:
    """A real discriminator whose score depends only on the token at ``position``: one filter
    bank as wide as the sequence, with zero weights at every other offset."""
    torch.manual_seed(0)
    d = Discriminator(DiscriminatorConfig(vocab_size=vocab, seq_len=seq_len, embed_dim=4,
                                          filter_widths=[seq_len], num_filters=[6]))
    with torch.no_grad():
        keep = torch.zeros(seq_len)
        keep[position] = 3.0
        d.convs[0].weight.mul_(keep)
    return d.eval()


def test_shapes_on_random_input():
    cfg = make_run_config("tiny", vocab_size=39, seq_len=16)
    g, d = Generator(cfg.generator), Discriminator(cfg.discriminator)
    x = torch.randint(0, 39, (5, 16))
    logits, _ = g(x)
    assert logits.shape == (5, 16, 39)
    assert g.log_probs(x).shape == (5, 16) and g.nll(x).ndim == 0
    assert d(x).shape == (5, 2) and d.prob_real(x).shape == (5,)
    assert g.sample(3, 7).shape == (3, 7)
    assert g.sample(2, 5, primer=torch.tensor([3, 4, 5])).shape == (2, 5)


def test_fast_lstm_steps_match_nn_lstm():
    """prefix_states (step tables, sigmoid-only cell) equal nn.LSTM's outputs and final cell state."""
    cfg = make_run_config("paper", vocab_size=89, seq_len=32)
    torch.manual_seed(0)
    g = Generator(cfg.generator)
    x = torch.randint(0, 89, (16, 31))
    hs, cs = g.prefix_states(x)
    out, (h, c) = g.lstm(g.embedding(torch.cat([torch.zeros(16, 1, dtype=torch.long), x], 1)))
    assert torch.allclose(hs.transpose(0, 1), out, atol=1e-5) and torch.allclose(cs[-1], c[0], atol=1e-5)


def test_paper_filter_table_and_d_size():
    widths, nums = paper_filter_table(20)
    assert widths == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 20] and sum(nums) == 1720
    assert paper_filter_table(12)[0] == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    d = Discriminator(DiscriminatorConfig(vocab_size=5000, seq_len=20, filter_widths=widths, num_filters=nums))
    assert d.convs[-1].weight.shape == (160, 64, 20)


def test_sample_from_logits_matches_softmax_and_top_k():
    gen = torch.Generator().manual_seed(0)
    logits = torch.tensor([[0.0, 1.0, 2.0, -1.0]]).repeat(40000, 1)
    draws = sample_from_logits(logits, generator=gen)
    freq = torch.bincount(draws, minlength=4).float() / len(draws)
    assert torch.allclose(freq, torch.softmax(logits[0], 0), atol=0.01)
    top2 = sample_from_logits(logits, top_k=2, generator=gen)
    assert set(top2.tolist()) == {1, 2}
    cold = sample_from_logits(logits, temperature=0.05, generator=gen)
    assert (cold == 2).float().mean() > 0.99


def test_two_level_sampling_for_large_vocabularies_matches_softmax():
    """V = 1000 takes the block-then-token search (with a partial last block)."""
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(1, 1000, generator=gen) * 3
    draws = sample_from_logits(logits.repeat(100000, 1), generator=gen)
    freq = torch.bincount(draws, minlength=1000).float() / len(draws)
    assert draws.max() < 1000
    assert 0.5 * (freq - torch.softmax(logits[0], 0)).abs().sum() < 0.03  # sampling noise is about 0.015
    top = sample_from_logits(logits.repeat(20000, 1), top_k=7, generator=gen)
    assert set(top.tolist()) == set(torch.topk(logits[0], 7).indices.tolist())


def exact_completion_probs(g: Generator, prefix: torch.Tensor, T: int, vocab: int) -> dict:
    """P(completion | prefix) for every completion, by enumeration under G."""
    tails = list(itertools.product(range(vocab), repeat=T - len(prefix)))
    seqs = torch.tensor([list(prefix.tolist()) + list(t) for t in tails])
    with torch.no_grad():
        lp = g.log_probs(seqs)[:, len(prefix):].sum(1)
    return {t: float(p) for t, p in zip(tails, lp.exp())}


def empirical(comps: torch.Tensor, p: int) -> dict:
    counts: dict = {}
    for row in comps[:, p:].tolist():
        counts[tuple(row)] = counts.get(tuple(row), 0) + 1
    return {k: v / len(comps) for k, v in counts.items()}


def tv(a: dict, b: dict) -> float:
    return 0.5 * sum(abs(a.get(k, 0) - b.get(k, 0)) for k in set(a) | set(b))


def test_batched_completions_match_exact_and_sequential_reference(engine):
    """Fixed-seed statistical test on a tiny vocabulary: both samplers draw from G's distribution."""
    V, T, N, NS = 3, 3, 20000, 600
    g = tiny_gen(V)
    samples = torch.tensor([[0, 2, 1], [2, 2, 0]])
    batched = batched_completions(samples, g, N, torch.Generator().manual_seed(1))
    seq = sequential_completions(samples, g, NS, torch.Generator().manual_seed(2))
    assert batched.shape == (T - 1, N, 2, T) and seq.shape == (T - 1, NS, 2, T)
    exacts = []
    for p in range(1, T):
        for b in range(2):
            exact = exact_completion_probs(g, samples[b, :p], T, V)
            exacts.append(exact)
            assert torch.equal(batched[p - 1, :, b, :p], samples[b, :p].expand(N, p))  # prefix kept
            # sampling noise of TV here is about 0.01 (batched) and 0.05 (sequential)
            assert tv(empirical(batched[p - 1, :, b], p), exact) < 0.03
            assert tv(empirical(seq[p - 1, :, b], p), exact) < 0.12
            assert tv(empirical(batched[p - 1, :, b], p), empirical(seq[p - 1, :, b], p)) < 0.12
    assert tv(exacts[0], exacts[1]) > 0.1  # the two samples' prefixes lead to different distributions


@pytest.mark.parametrize("chunk", [5, 17, 100])
def test_chunks_and_shared_first_steps_do_not_change_the_draws(monkeypatch, engine, chunk):
    """Chunks smaller than B (no sharing), holding whole copies of the B prefix states (the
    joining rows' first matmul on one copy), or large: the same rows are drawn from the same
    uniforms, so the completions agree up to rounding of differently blocked matmuls."""
    g = tiny_gen(7, hidden=16)
    samples = torch.randint(0, 7, (8, 6), generator=torch.Generator().manual_seed(0))
    reference = batched_completions(samples, g, 5, torch.Generator().manual_seed(1))
    monkeypatch.setattr(rollout, "chunk_rows", lambda device, columns: chunk)
    chunked = batched_completions(samples, g, 5, torch.Generator().manual_seed(1))
    assert (chunked == reference).all(dim=-1).float().mean() > 0.99


def test_step_spans_cover_the_active_rows_once():
    for joined, active, chunk, period in [(0, 12, 5, 4), (24, 36, 10, 4), (30, 45, 7, 15), (8, 12, 100, 4)]:
        spans = rollout._step_spans(joined, active, chunk, period)
        assert [s for s, _, _ in spans[1:]] == [e for _, e, _ in spans[:-1]] and spans[0][0] == 0
        assert spans[-1][1] == active and all(0 < e - s <= chunk for s, e, _ in spans)
        for start, end, distinct in spans:
            assert distinct is None or (start >= joined and (end - start) % distinct == 0 and distinct == period)


def test_rewards_belong_to_their_own_sample_and_step(engine):
    """A D that reads position 2 only: every reward from t = 2 on must be that sample's value."""
    V, T, B = 5, 6, 7
    g, d = tiny_gen(V), position_d(2, V, T)
    samples = torch.randint(0, V, (B, T), generator=torch.Generator().manual_seed(3))
    expected = d.prob_real(samples)
    assert len(set(expected.tolist())) > 1  # D tells the samples apart
    for sequential in (False, True):
        rewards = rollout_rewards(samples, g, d, num=4, sequential=sequential)
        assert rewards.shape == (B, T)
        assert torch.allclose(rewards[:, 2:], expected[:, None].expand(B, T - 2), atol=1e-6)
        assert not torch.allclose(rewards[:, :2], expected[:, None].expand(B, 2), atol=1e-3)


@pytest.mark.parametrize("preset, vocab, seq_len", [("tiny", 11, 10), ("cpu", 39, 32), ("paper", 89, 32), ("paper", 30, 7)])
def test_shared_prefix_scoring_equals_scoring_every_completion(preset, vocab, seq_len, engine):
    """score_completions skips windows inside the prefix and gathers table rows: same numbers as D."""
    cfg = make_run_config(preset, vocab, seq_len)
    torch.manual_seed(1)
    g, d = Generator(cfg.generator), Discriminator(cfg.discriminator)
    d.train()
    samples = g.sample(5, seq_len)
    comps = batched_completions(samples, g, 3)
    shared = score_completions(d, samples, comps)
    assert shared.shape == (seq_len - 1, 3, 5) and d.training
    assert torch.allclose(shared, score(d, comps), atol=1e-5)


@pytest.mark.parametrize("slice_bytes", [1, 5 * 3 * 56 * 4 * 2])  # 1 or 2 of the 9 prefix lengths
def test_shared_prefix_scoring_in_slices_of_prefix_lengths(monkeypatch, engine, slice_bytes):
    """D pools one or two prefix lengths at a time (slices that do not divide T - 1 included)."""
    cfg = make_run_config("tiny", 11, 10)
    torch.manual_seed(1)
    g, d = Generator(cfg.generator), Discriminator(cfg.discriminator)
    samples = g.sample(5, 10)
    comps = batched_completions(samples, g, 3)
    monkeypatch.setattr(rollout, "POOLED_SLICE_BYTES", slice_bytes)
    assert torch.allclose(score_completions(d, samples, comps), score(d, comps), atol=1e-5)


def test_rewards_in_unit_interval_and_last_step_is_d_of_sample(engine):
    cfg = make_run_config("tiny", vocab_size=11, seq_len=10)
    g, d = Generator(cfg.generator), Discriminator(cfg.discriminator)
    d.train()
    samples = g.sample(8, 10)
    rewards = rollout_rewards(samples, g, d, num=3)
    assert rewards.min() >= 0 and rewards.max() <= 1
    d.eval()
    assert torch.allclose(rewards[:, -1], d.prob_real(samples))


def test_scoring_uses_eval_mode_and_restores_training():
    cfg = make_run_config("tiny", vocab_size=11, seq_len=10)
    d = Discriminator(cfg.discriminator)
    d.train()
    x = torch.randint(0, 11, (64, 10))
    a, b = score(d, x), score(d, x)
    assert torch.equal(a, b) and d.training


def test_chunked_rewards_equal_unchunked_for_prefix_determined_d(engine):
    V, T = 7, 8
    g = tiny_gen(V, hidden=16)
    samples = torch.randint(0, V, (4, T), generator=torch.Generator().manual_seed(0))
    d = position_d(0, V, T)
    whole = rollout_rewards(samples, g, d, num=6, memory_mb=512)
    chunked = rollout_rewards(samples, g, d, num=6, memory_mb=0)  # one rollout per chunk, D's tables too big
    assert torch.allclose(whole, chunked, atol=1e-6)


def test_dense_scoring_when_d_tables_exceed_the_memory_budget(monkeypatch, engine):
    import seqgan_music.rollout as rollout

    cfg = make_run_config("tiny", vocab_size=11, seq_len=10)
    torch.manual_seed(0)
    g, d = Generator(cfg.generator), Discriminator(cfg.discriminator)
    samples = g.sample(4, 10)
    calls = []
    monkeypatch.setattr(rollout, "rollouts_per_chunk", lambda *a: 3)  # same chunks, same draws
    monkeypatch.setattr(rollout, "score_completions", lambda *a: calls.append(a) or score_completions(*a))
    a = rollout_rewards(samples, g, d, num=3, memory_mb=1, generator=torch.Generator().manual_seed(0))
    assert len(calls) == 1  # tiny tables: shared prefixes
    b = rollout_rewards(samples, g, d, num=3, memory_mb=0, generator=torch.Generator().manual_seed(0))
    assert len(calls) == 1  # no room: dense, same rewards
    assert torch.allclose(a, b, atol=1e-5)


def test_sequential_rewards_agree_with_batched_in_expectation():
    V, T = 4, 5
    g = tiny_gen(V)
    cfg = make_run_config("tiny", vocab_size=V, seq_len=T)
    torch.manual_seed(0)
    d = Discriminator(cfg.discriminator)
    samples = g.sample(3, T, generator=torch.Generator().manual_seed(5))
    fast = rollout_rewards(samples, g, d, num=600, generator=torch.Generator().manual_seed(1))
    slow = rollout_rewards(samples, g, d, num=150, generator=torch.Generator().manual_seed(2), sequential=True)
    assert torch.allclose(fast, slow, atol=0.02)


@pytest.mark.parametrize("vocab, hidden", [(39, 64), (1000, 16)])
def test_native_rollout_step_equals_pytorch_ops(vocab, hidden):
    """The fused kernel draws the token the PyTorch inverse CDF draws from the same uniform, and
    steps the LSTM state as lstm_step_ does (the two-level search over blocks of 16: 3 blocks at
    V = 39, 63 at V = 1000). The last step takes the logits alone and leaves the state alone."""
    torch.manual_seed(0)
    R, H = 3000, hidden
    table, w_hh = torch.randn(vocab, 4 * H) * 2, torch.randn(H, 4 * H) / 4
    logits, h, c, u = torch.randn(R, vocab) * 3, torch.randn(R, H), torch.randn(R, H), torch.rand(R)
    hw = torch.cat([logits, h @ w_hh], dim=1)
    tokens = torch.zeros(R, 2, dtype=torch.long)
    h_native, c_native = h.clone(), c.clone()
    native.rollout_step(hw, table, h_native, c_native, u, tokens, 1, advance=True)
    cdf = torch.softmax(logits.double(), dim=1).cumsum(dim=1)
    expected = torch.searchsorted(cdf, u.double()[:, None] * cdf[:, -1:]).squeeze(1).clamp(max=vocab - 1)
    same = tokens[:, 1] == expected
    assert same.float().mean() > 0.999  # a draw may differ only where u falls on a CDF step (rounding)
    assert len(set(expected.tolist())) > vocab // 4 and tokens[:, 0].eq(0).all()
    h_last, c_last = h_native.clone(), c_native.clone()
    gates = table[tokens[:, 1]]
    lstm_step_(gates, h, c, w_hh)
    assert torch.allclose(h_native, h, atol=1e-5) and torch.allclose(c_native, c, atol=1e-5)
    native.rollout_step(logits.clone(), table, h_native, c_native, u, tokens, 0, advance=False)
    assert torch.equal(tokens[:, 0], tokens[:, 1]) and torch.equal(h_native, h_last) and torch.equal(c_native, c_last)
    with pytest.raises(ValueError, match="inconsistent"):
        native.rollout_step(logits, table, h_native, c_native, u, tokens, 0, advance=True)


def test_native_head_equals_discriminator_classify():
    """The fused head (one matmul for both highway layers, the rest in C) gives D's probability of
    real for rectified pooled features, and refuses inconsistent shapes."""
    cfg = make_run_config("cpu", 39, 32)
    torch.manual_seed(0)
    d = Discriminator(cfg.discriminator).eval()
    for p in d.parameters():
        p.data.normal_(0, 0.3)
    features = torch.randn(5000, sum(cfg.discriminator.num_filters)).relu_() * 3
    with torch.no_grad():
        expected = real_probability(d.classify(features))
        fused = _native_head(d, rows=1024)(features)
    # float32 sums of ~100 products of logits in the tens: the two matmul kernels' rounding differs
    # by up to ~1e-5 on CPUs with AVX-512 (seen 8e-6)
    assert expected.std() > 0.1 and torch.allclose(fused, expected, atol=3e-5)
    with pytest.raises(ValueError, match="inconsistent"):
        native.highway_real_prob(torch.zeros(4, 7), features[:4], torch.zeros(4), 0.0, torch.zeros(4))


@pytest.mark.parametrize("bar_tokens, copy", [([], False), (list(range(39, 52)), False), (list(range(39, 52)), True)])
def test_native_and_pytorch_rollouts_draw_the_same_tokens(bar_tokens, copy):
    """Same generator seed, same chunks, same uniforms: the two engines agree on almost every row
    (with bar features too: there the kernels draw, the features follow, then the LSTM step; and
    with the copy path, whose bonus both add to the logits before the draw)."""
    cfg = make_run_config("cpu", 52 if bar_tokens else 39, 32, 0, bar_tokens)
    cfg.generator.copy_bars = copy
    torch.manual_seed(0)
    g = Generator(cfg.generator)
    if copy:
        torch.nn.init.constant_(g.copy.bias, 3.0)  # strong enough that the copies show
    samples = g.sample(8, 32)
    fast = batched_completions(samples, g, 4, torch.Generator().manual_seed(1))
    with native.switched_off():
        plain = batched_completions(samples, g, 4, torch.Generator().manual_seed(1))
    rows_equal = (fast == plain).all(dim=-1).float().mean()
    assert rows_equal > 0.99


def test_native_kernels_refuse_what_would_read_outside_their_arrays():
    table, bias, pooled = torch.zeros(2 * 5, 3), torch.zeros(3), torch.zeros(2, 4, 3)
    tokens, inside = torch.zeros(2, 4, 3, dtype=torch.int32), torch.zeros(4, 2, 3)
    native.pool_windows(tokens, [(2, table, bias, inside)], pooled)
    tokens[1, 2, 0] = 5  # V = 5
    with pytest.raises(ValueError, match="token ids"):
        native.pool_windows(tokens, [(2, table, bias, inside)], pooled)
    tokens[1, 2, 0] = 4
    with pytest.raises(ValueError, match="contiguous CPU"):
        native.pool_windows(tokens.long(), [(2, table, bias, inside)], pooled)
    with pytest.raises(ValueError, match="inconsistent shapes for width 2"):
        native.pool_windows(tokens, [(2, table, bias, torch.zeros(4, 3, 3))], pooled)
    for bad_pooled, first in [(torch.zeros(2, 4, 4), 1), (pooled, 2)]:  # features; prefix lengths past T - 1
        with pytest.raises(ValueError, match="inconsistent shapes$"):
            native.pool_windows(tokens, [(2, table, bias, inside)], bad_pooled, first)


def test_native_kernels_build_from_the_source_read_at_import(monkeypatch, tmp_path):
    """A kernels.c changed on disk after import (a package upgrade under a running training) does
    not reach the running process: it builds the source its wrappers were written for."""
    monkeypatch.setenv("SEQGAN_MUSIC_CACHE", str(tmp_path))
    changed = tmp_path / "kernels.c"
    changed.write_text("this is not C")
    monkeypatch.setattr(native, "SOURCE", changed)
    native.library.cache_clear()
    try:
        assert native.library() is not None and list((tmp_path / "kernels").glob("kernels-*.so"))
    finally:
        native.library.cache_clear()


def test_native_kernels_fall_back_without_a_compiler(monkeypatch, tmp_path):
    """No compiler (or SEQGAN_MUSIC_NATIVE=0): no kernels, and rollouts run the PyTorch path."""
    monkeypatch.setenv("SEQGAN_MUSIC_CACHE", str(tmp_path))
    monkeypatch.setenv("CC", "false")
    native.library.cache_clear()
    try:
        assert native.library() is None and not native.available(torch.device("cpu"))
        g = tiny_gen(5)
        assert batched_completions(torch.zeros(2, 4, dtype=torch.long), g, 3).shape == (3, 3, 2, 4)
        monkeypatch.delenv("CC")
        monkeypatch.setenv("SEQGAN_MUSIC_NATIVE", "0")
        native.library.cache_clear()
        assert native.library() is None
        monkeypatch.delenv("SEQGAN_MUSIC_NATIVE")
        native.library.cache_clear()
        assert native.library() is not None and list(tmp_path.glob("kernels/kernels-*.so"))
        assert native.available(torch.device("cpu"), 39) and not native.available(torch.device("cpu"), 70_000)
    finally:
        native.library.cache_clear()


@pytest.mark.parametrize("rate", [0.0, 0.8])
def test_rollout_policy_update(rate):
    a, b = tiny_gen(seed=1), tiny_gen(seed=2)
    before = [p.clone() for p in a.parameters()]
    update_rollout_policy(a, b, rate)
    for old, new, theta in zip(before, a.parameters(), b.parameters()):
        assert torch.allclose(new, rate * old + (1 - rate) * theta)


def test_native_rollout_step_checks_every_shape_and_index():
    """The kernel indexes raw memory, so the wrapper refuses a table that is not 4H wide, a column
    outside the token matrix, a cell state unlike h and a wrong number of uniforms."""
    R, V, H = 4, 7, 3
    good = dict(hw=torch.zeros(R, V + 4 * H), table=torch.zeros(V, 4 * H), h=torch.zeros(R, H), c=torch.zeros(R, H),
                u=torch.rand(R), tokens=torch.zeros(R, 2, dtype=torch.long), column=1, advance=True)
    native.rollout_step(**good)
    for change in (dict(table=torch.zeros(V, 4 * H + 1)), dict(hw=torch.zeros(R, V + 4 * H - 1)),
                   dict(column=2), dict(column=-1), dict(c=torch.zeros(R, H + 1)), dict(c=torch.zeros(R - 1, H)),
                   dict(u=torch.rand(R + 1))):
        with pytest.raises(ValueError, match="inconsistent"):
            native.rollout_step(**{**good, **change})


PLANTED = r"""
#include <stdio.h>
#include <stdlib.h>
__attribute__((constructor)) static void planted(void) { FILE *f = fopen(getenv("PLANT_MARK"), "w"); if (f) fclose(f); }
void rollout_step(void) {}
void pool_windows(void) {}
void highway_real_prob(void) {}
"""


@pytest.mark.slow
def test_native_kernels_live_in_a_private_verified_cache(tmp_path):
    """SEQGAN_MUSIC_CACHE moves the kernels; a library planted where they are loaded from (replacing
    the built one, or with a matching hash record written while the folder was open to others) is
    never loaded: its constructor would create PLANT_MARK."""
    import os
    import shutil
    import stat
    import subprocess
    import sys

    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    env = dict(os.environ, SEQGAN_MUSIC_CACHE=str(tmp_path / "cache"), XDG_CACHE_HOME=str(tmp_path / "xdg"),
               HOME=str(tmp_path / "home"), PLANT_MARK=str(tmp_path / "planted"), SEQGAN_MUSIC_NATIVE="1")
    probe = "from seqgan_music import native; lib = native.library(); print(lib._name if lib else '')"

    def loaded_path() -> str:
        out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
        return out.stdout.strip()

    built = loaded_path()
    assert built.startswith(str(tmp_path / "cache")), built
    folder = os.path.dirname(built)
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    subprocess.run([compiler, "-shared", "-fPIC", "-x", "c", "-", "-o", str(tmp_path / "planted.so")],
                   input=PLANTED, text=True, check=True)
    shutil.copyfile(tmp_path / "planted.so", built)  # same owner, same name: the hash record says otherwise
    assert loaded_path() == built and not (tmp_path / "planted").exists()
    os.chmod(folder, 0o777)  # a folder others could write: a forged hash record proves nothing
    shutil.copyfile(tmp_path / "planted.so", built)
    digest = __import__("hashlib").sha256((tmp_path / "planted.so").read_bytes()).hexdigest()
    (tmp_path / "record").write_text(digest)
    for name in os.listdir(folder):
        if name.endswith(".sha256"):
            shutil.copyfile(tmp_path / "record", os.path.join(folder, name))
    assert loaded_path() == built and not (tmp_path / "planted").exists()
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700


@pytest.mark.slow
@pytest.mark.parametrize("copy_runs", [False, True])
def test_batched_completions_with_bar_features_match_exact(copy_runs):
    """A generator with bar features (position in the bar, bar number, lookback 1 bar, with or
    without copy runs; token 2 is a bar line): the rollout engine's step-by-step features give the
    distribution that teacher forcing defines, and the sequential reference agrees."""
    g = bar_gen(copy_runs=copy_runs)
    samples = torch.tensor([[2, 1, 0, 2, 1, 0], [2, 0, 1, 1, 2, 0]])
    T = samples.shape[1]
    batched = batched_completions(samples, g, 4000, torch.Generator().manual_seed(1))
    seq = sequential_completions(samples, g, 300, torch.Generator().manual_seed(2))
    for p in (3, 4):  # 27 and 9 completions: sampling noise of TV about 0.04 (batched), 0.12 (sequential)
        for b in range(2):
            exact = exact_completion_probs(g, samples[b, :p], T, 3)
            assert tv(empirical(batched[p - 1, :, b], p), exact) < 0.07
            assert tv(empirical(seq[p - 1, :, b], p), exact) < 0.22
    if copy_runs:
        return
    plain = exact_completion_probs(g, samples[0, :3], T, 3)
    for weights in (g.copy.bias, g.copy.weight, g.bar_features.weight):  # each matters: without it the law changes
        kept = weights.data.clone()
        weights.data.zero_()
        assert tv(plain, exact_completion_probs(g, samples[0, :3], T, 3)) > 0.05
        weights.data.copy_(kept)


def bar_gen(seed: int = 0, copy_runs: bool = False) -> Generator:
    """V 3 with token 2 a bar line; bar features with a lookback of 1 bar (with ``copy_runs``: and
    its copy runs) and the copy path; sharpened weights."""
    torch.manual_seed(seed)
    g = Generator(GeneratorConfig(vocab_size=3, embed_dim=4, hidden_dim=8, bar_tokens=[2], lookback_bars=[1],
                                  copy_bars=True, copy_runs=copy_runs))
    with torch.no_grad():
        for table in (g.embedding, g.bar_features):
            table.weight.mul_(3)
        g.out.weight.mul_(4)
        g.copy.weight.normal_(0.0, 1.0)
        g.copy.bias.fill_(1.5)
    return g


@pytest.mark.parametrize("copy_runs", [False, True])
def test_step_by_step_bar_features_equal_teacher_forcing(copy_runs):
    """The tracker that sampling and rollouts use gives, at every column and from any start, the
    feature ids teacher forcing computes for the same sequences, from any first bar number; with a
    lookback as far as the ``tune`` preset's (8 bars), and copy runs of every length."""
    g = Generator(GeneratorConfig(vocab_size=9, embed_dim=4, hidden_dim=8, bar_tokens=[6, 7, 8], lookback_bars=[1, 2, 8],
                                  bars_left=True, copy_runs=copy_runs))
    rng = torch.Generator().manual_seed(0)
    bar = torch.cat([torch.tensor([6]), torch.randint(0, 6, (4,), generator=rng)])
    tokens = torch.randint(0, 9, (16, 40), generator=rng)
    copies = torch.rand(16, 40, generator=rng) < torch.linspace(0, 0.95, 16)[:, None]  # some rows mostly one bar
    tokens = torch.where(copies, bar.repeat(8), tokens)
    middle = torch.stack([torch.arange(16) * 3, torch.arange(16) * 2], 1)  # some tunes shorter than their windows
    for place in (None, middle):  # windows from the start of tunes of unknown length, or from the middle
        ids = g.context.teacher_forced(tokens, place)[0]
        for start in (0, 1, 7, 25):
            tracker = g.context_gates().tracker(tokens, start, place)
            for t in range(start, 39):
                assert torch.equal(tracker.features(tokens, t), ids[:, t]), (start, t)
                tracker.advance(tokens, t)


def test_copy_runs_count_the_tokens_that_repeat_the_bar_before():
    """The copy run before each position: the tokens just before it that equal their counterpart
    one bar back (bar lines included), 0 where there is no bar before or the last one did not."""
    context = BarContext([3], [1], vocab_size=4, copy_runs=True)
    tokens = torch.tensor([[3, 0, 1, 2, 3, 0, 1, 0, 3, 0, 1, 0]])
    ids, state = context.teacher_forced(tokens)
    assert state.run[:, 0].tolist() == [0, 0, 0, 0, 0, 0, 1, 2, 0, 1, 2, 3]
    level = (ids[0, :, -1] - context.offsets[-1]) // 5  # the run's bin: 0, 1, 2-3, 4-7, ...
    assert level.tolist() == [0, 0, 0, 0, 0, 0, 1, 2, 0, 1, 2, 2]


@pytest.mark.parametrize("copy_runs", [False, True])
def test_sampling_with_bar_features_follows_the_models_law(copy_runs):
    """Generator.sample (step by step, with the tracker) draws 4-token sequences with the
    probabilities teacher forcing assigns them."""
    g = bar_gen(copy_runs=copy_runs)
    drawn = g.sample(8000, 4, generator=torch.Generator().manual_seed(3))
    assert tv(empirical(drawn, 0), exact_completion_probs(g, torch.zeros(0, dtype=torch.long), 4, 3)) < 0.06


def test_bar_numbers_count_from_the_tunes_first_bar():
    """A window from the middle of a tune is told its first bar's number: the bar-number feature
    is the window's own count plus it, capped at max_bars - 1; without it windows count from 0."""
    g = Generator(GeneratorConfig(vocab_size=9, embed_dim=4, hidden_dim=8, bar_tokens=[6, 7, 8], lookback_bars=[],
                                  max_bars=12))
    tokens = torch.tensor([[6, 1, 2, 6, 3, 4, 6, 5], [6, 1, 6, 2, 6, 3, 6, 4]])
    bar_number = g.context.offsets[1]  # where the bar-number ids start

    def numbers(place):
        return (g.context.teacher_forced(tokens, place)[0][:, :, 1] - bar_number).tolist()

    assert numbers(None) == [[0, 1, 1, 1, 2, 2, 2, 3], [0, 1, 1, 2, 2, 3, 3, 4]]
    place = torch.tensor([[5, 0], [9, 0]])
    assert numbers(place) == [[5, 6, 6, 6, 7, 7, 7, 8], [9, 10, 10, 11, 11, 11, 11, 11]]
    assert not torch.equal(g.nll(tokens), g.nll(tokens, place))


def test_bars_left_count_down_to_the_tunes_end():
    """With bars_left, each position is told the bar lines still to come in its tune: the tune's
    bar lines in all less those so far (the window's first bar's number plus its own), 0 in the
    last bar and after, capped at max_bars - 1; a tune of unknown length (0) has an id of its own.
    Without the option the features are as before."""
    cfg = dict(vocab_size=9, embed_dim=4, hidden_dim=8, bar_tokens=[6, 7, 8], lookback_bars=[1], max_bars=6)
    g = Generator(GeneratorConfig(**cfg, bars_left=True))
    tokens = torch.tensor([[6, 1, 2, 6, 3, 4, 6, 5], [6, 1, 6, 2, 6, 3, 6, 4], [6, 1, 2, 6, 3, 4, 6, 5]])
    left = g.context.offsets[2]  # where the bars-left ids start
    place = torch.tensor([[0, 3], [2, 12], [0, 0]])
    ids = g.context.teacher_forced(tokens, place)[0]
    assert (ids[:, :, 2] - left).tolist() == [[3, 2, 2, 2, 1, 1, 1, 0], [5, 5, 5, 5, 5, 5, 5, 5], [6] * 8]
    assert (ids[1, :, 2] - left).tolist() == [5] * 8  # 10 .. 7 bars left: all past the cap
    plain = Generator(GeneratorConfig(**cfg, bars_left=False))
    assert torch.equal(plain.context.teacher_forced(tokens, place)[0], ids[:, :, [0, 1, 3]] - torch.tensor([0, 0, 7]))
    unknown = g.bar_features.weight[g.context.unknown_length]  # adds nothing, and training on known lengths keeps it so
    opt = torch.optim.Adam(g.parameters(), lr=0.1)
    g.nll(tokens[:2], place[:2]).backward()
    opt.step()
    assert not unknown.any() and g.bar_features.weight[left].any()


def test_a_model_that_ends_tunes_ends_them_at_bar_lines_only():
    """Sampling with an END token: END only where a bar line is due (never before the first new
    bar), and every token after it is END; with may_end=False no END is drawn however likely."""
    g = Generator(GeneratorConfig(vocab_size=10, embed_dim=4, hidden_dim=8, bar_tokens=[6, 7, 8], lookback_bars=[1]))
    with torch.no_grad():
        g.out.bias[9] = 1.0  # END (id 9) about as likely as anything else
    rng = torch.Generator().manual_seed(0)
    tokens = g.sample(200, 5 * 8, generator=rng, bar_line=([(6, 0)], 5), end_token=9)
    first_end = torch.where((tokens == 9).any(1), (tokens == 9).int().argmax(1), 40)
    assert ((first_end % 5 == 0) & (first_end >= 5)).all() and len(set(first_end.tolist())) > 2
    for row, end in zip(tokens, first_end):
        assert (row[end:] == 9).all() and (row[:end] != 9).all()
        assert (row[:end][::5] == 6).all() and not torch.isin(row[:end].view(-1, 5)[:, 1:], torch.tensor([6, 7, 8])).any()
    assert not (g.sample(200, 40, generator=rng, bar_line=([(6, 0)], 5), end_token=9, may_end=False) == 9).any()


def test_bar_lines_that_repeat_a_bar_come_only_where_that_bar_exists():
    """Sampling whole bars with repeat marks: each bar line is one of the choices, a mark that
    repeats the bar k back only from the k-th bar on (the primer's bars count)."""
    g = Generator(GeneratorConfig(vocab_size=10, embed_dim=4, hidden_dim=8, bar_tokens=[6, 7, 8], lookback_bars=[1]))
    with torch.no_grad():
        g.out.bias[[7, 8]] = 5.0  # the marks far likelier than a new bar
    choices, rng = [(6, 0), (7, 1), (8, 2)], torch.Generator().manual_seed(0)
    lines = g.sample(300, 5 * 4, generator=rng, bar_line=(choices, 5))[:, ::5]
    assert (lines[:, 0] == 6).all() and set(lines[:, 1].tolist()) == {6, 7} and set(lines[:, 2:].flatten().tolist()) == {6, 7, 8}
    primed = g.sample(300, 5, primer=torch.tensor([6, 2, 3, 4, 5]), generator=rng, bar_line=(choices, 5))
    assert set(primed[:, 0].tolist()) == {6, 7}


def test_never_drawing_takes_a_token_out_of_every_sampler_and_puts_it_back():
    """Within never_drawing, sample, both rollout engines and the log-probs give the token no
    probability; afterwards the policy is as before."""
    g = Generator(GeneratorConfig(vocab_size=10, embed_dim=4, hidden_dim=8, bar_tokens=[6, 7, 8], lookback_bars=[1]))
    with torch.no_grad():
        g.out.bias[9] = 3.0  # a likely token
    kept = g.out.bias.detach().clone()
    rng = torch.Generator().manual_seed(0)
    with never_drawing(g, 9):
        samples = g.sample(64, 12, generator=rng)
        assert not (samples == 9).any()
        assert not (batched_completions(samples, g, 4, rng) == 9).any()
        assert g.log_probs(torch.full((1, 3), 9)).max() < -1000
    assert torch.equal(g.out.bias.detach(), kept) and (g.sample(64, 12, generator=rng) == 9).any()


def test_a_generator_clone_is_an_independent_equal_copy():
    """``clone`` (the trainer's rollout policy and KL reference) gives the same logits, and
    changing the clone leaves the original as it was."""
    g = bar_gen()
    twin = g.clone()
    tokens = torch.tensor([[0, 1, 2, 1, 0, 2]])
    assert torch.equal(g.teacher_forced_logits(tokens), twin.teacher_forced_logits(tokens))
    with torch.no_grad():
        twin.lstm.weight_hh_l0.add_(1.0)
    assert not torch.equal(g.teacher_forced_logits(tokens), twin.teacher_forced_logits(tokens))
    assert g.lstm.weight_hh_l0.data_ptr() != twin.lstm.weight_hh_l0.data_ptr()
