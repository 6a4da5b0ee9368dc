"""Dataclass configurations, presets and their JSON round trip.

Every config is a plain dataclass with a comment on each field. ``to_dict``/``from_dict`` give a
JSON round trip that rejects unknown keys, so a typo in ``--set`` or a foreign checkpoint is an
error instead of a silently ignored value.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, TypeVar

from seqgan_music.errors import UserError

C = TypeVar("C")


MAX_VOCAB = 1 << 16  # largest vocabulary a config may declare (music: tens of tokens; the oracle: 5,000)
MAX_SIZE = 4096  # largest embedding, hidden or filter count a config may declare
MAX_SEQ_LEN = 4096


ENCODING_NAMES = ("melody", "bars", "paper")
UNIT_EPOCHS = 2  # an MLE unit of a budget reads at most this many epochs of the training windows
DEFAULT_DRAFTS = 4  # melodies generate and the app draw per melody they keep (drafts.py)


def _check_vocab(vocab_size: int) -> None:
    if not 2 <= vocab_size <= MAX_VOCAB:
        raise UserError(f"vocab_size must be between 2 and {MAX_VOCAB}, not {vocab_size}")


def _check_sizes(**sizes: int) -> None:
    for name, value in sizes.items():
        if not 1 <= value <= MAX_SIZE:
            raise UserError(f"{name} must be between 1 and {MAX_SIZE}, not {value}")


@dataclass
class TokenizerConfig:
    encoding: str = "melody"  # "melody" (beat grid, NOTE_ON/HOLD/REST), "bars" (the same with BAR tokens) or "paper"
    steps_per_quarter: int = 4  # melody: grid steps per quarter note
    pitch_low: int = 48  # melody: lowest NOTE_ON pitch (MIDI number), C3
    pitch_high: int = 84  # melody: highest NOTE_ON pitch, C6; others move by octaves into range
    sample_seconds: float = 0.4  # paper: sampling period in seconds
    seq_len: int = 32  # T: tokens per training window
    hop: int = 16  # tokens between window starts
    track: str | None = None  # melody track: index or name; None picks the best melody track
    skyline_all: bool = False  # True: skyline over all non-drum tracks instead of one track
    transpose: int = 0  # augmentation: train windows also transposed by -k..+k semitones
    tune_end: bool = False  # bars: an END token after each tune's last bar, so a model learns where tunes end
    key_to_c: bool = False  # every tune moved to tonic C (major or minor, by its estimated key) before windows are cut
    home_keys: list[int] = field(default_factory=list)  # key_to_c: tunes per original key (tonic + 12 for minor), 24 counts
    repeat_marks: list[int] = field(default_factory=list)  # bars: BAR tokens that also say "this bar repeats the bar k back"

    def validate(self) -> None:
        if self.encoding not in ENCODING_NAMES:
            raise UserError(f"unknown encoding {self.encoding!r}: use one of {', '.join(ENCODING_NAMES)}")
        if self.steps_per_quarter < 1 or self.steps_per_quarter > 48:
            raise UserError("steps_per_quarter must be between 1 and 48")
        if not 0 <= self.pitch_low < self.pitch_high <= 127 or self.pitch_high - self.pitch_low < 11:
            raise UserError("pitch range must lie in 0..127 and span at least an octave")
        if self.seq_len < 2 or self.hop < 1:
            raise UserError("seq_len must be at least 2 and hop at least 1")
        if self.transpose < 0 or self.transpose > 12:
            raise UserError("transpose must be between 0 and 12 semitones")
        if self.sample_seconds <= 0:
            raise UserError("sample_seconds must be positive")
        if self.tune_end and self.encoding != "bars":
            raise UserError("tune_end needs the bars encoding (tunes end at a bar line)")
        if self.repeat_marks and (self.encoding != "bars" or sorted(set(self.repeat_marks)) != list(self.repeat_marks)
                                  or not 1 <= self.repeat_marks[0] <= self.repeat_marks[-1] <= 16):
            raise UserError("repeat_marks need the bars encoding and must be increasing distances in 1..16 bars")
        if self.home_keys and (len(self.home_keys) != 24 or min(self.home_keys) < 0 or not self.key_to_c):
            raise UserError("home_keys must be 24 non-negative counts (tonic + 12 for minor), and only with key_to_c")


@dataclass
class GeneratorConfig:
    vocab_size: int = 39  # set from the tokenizer (or 5000 for the oracle experiment)
    embed_dim: int = 32  # token embedding size
    hidden_dim: int = 32  # LSTM hidden size
    start_token: int = 0  # input at the first step (REST for music, 0 as in the paper's code)
    bar_tokens: list[int] = field(default_factory=list)  # set from the tokenizer: the BAR token ids (bars encoding)
    bar_position: bool = True  # with bar tokens: input features for (metre, steps since the bar line) and the bar number
    max_bars: int = 96  # bar numbers (from the tune's first bar) at or past max_bars - 1 share one feature (past 95 % of Nottingham's tunes, written out with repeats)
    bars_left: bool = True  # with bar_position: a feature for the bars left before the tune's END (the tune's length is given)
    lookback_bars: list[int] = field(default_factory=lambda: [1, 2, 4])  # with bar tokens: inputs from the same place k bars back
    copy_bars: bool = False  # with lookback: a learnt logit bonus for each lookback token (a copy path for repeats)
    copy_runs: bool = False  # with lookback: each lookback input also says how long the copy of that bar has run
    dropout: float = 0.0  # dropout on the LSTM's inputs and outputs in teacher-forced MLE training (0: off)

    def validate(self) -> None:
        _check_vocab(self.vocab_size)
        _check_sizes(embed_dim=self.embed_dim, hidden_dim=self.hidden_dim)
        if not 0 <= self.start_token < self.vocab_size:
            raise UserError(f"start_token must be a token id in 0..{self.vocab_size - 1}, not {self.start_token}")
        if not all(0 <= t < self.vocab_size for t in self.bar_tokens):
            raise UserError(f"bar_tokens must be token ids in 0..{self.vocab_size - 1}")
        if not 1 <= self.max_bars <= 1024:
            raise UserError(f"max_bars must lie in 1..1024, not {self.max_bars}")
        if not all(1 <= k <= 16 for k in self.lookback_bars):
            raise UserError(f"lookback_bars must lie in 1..16 bars, not {self.lookback_bars}")
        if not 0 <= self.dropout < 1:
            raise UserError(f"dropout must lie in [0, 1), not {self.dropout}")


@dataclass
class DiscriminatorConfig:
    vocab_size: int = 39  # set from the tokenizer
    seq_len: int = 32  # T: length of the sequences it scores
    embed_dim: int = 64  # token embedding size (paper: 64)
    filter_widths: list[int] = field(default_factory=lambda: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 16, 24, 32])
    num_filters: list[int] = field(
        default_factory=lambda: [100, 200, 200, 200, 200, 100, 100, 100, 100, 100, 160, 160, 160]
    )
    dropout_keep: float = 0.75  # keep probability of the dropout before the output layer
    l2_reg: float = 0.2  # L2 penalty on the output layer's weights and bias

    def validate(self) -> None:
        _check_vocab(self.vocab_size)
        _check_sizes(embed_dim=self.embed_dim)
        if not 2 <= self.seq_len <= MAX_SEQ_LEN:
            raise UserError(f"seq_len must be between 2 and {MAX_SEQ_LEN}, not {self.seq_len}")
        if len(self.filter_widths) != len(self.num_filters) or not self.filter_widths:
            raise UserError("filter_widths and num_filters must be non-empty lists of equal length")
        if not all(1 <= w <= self.seq_len for w in self.filter_widths):
            raise UserError(f"every filter width must lie in 1..seq_len ({self.seq_len})")
        _check_sizes(**{f"num_filters[{i}]": n for i, n in enumerate(self.num_filters)})
        if not 0 < self.dropout_keep <= 1 or self.l2_reg < 0:
            raise UserError("dropout_keep must lie in (0, 1] and l2_reg must be >= 0")


@dataclass
class TrainConfig:
    batch_size: int = 64  # sequences per step (G and D)
    mle_epochs: int = 120  # MLE pre-training units of G: each one epoch over the training windows, or mle_unit_batches batches
    mle_unit_batches: int = 0  # batches per MLE unit, read on through the shuffled windows epoch after epoch (0: one epoch)
    mle_keep_best: bool = False  # pre-training ends with the unit of lowest validation NLL (False: the last, the paper)
    mle_patience: int = 0  # pre-training ends after this many units without a lower validation NLL (0: runs them all)
    d_pretrain_rounds: int = 50  # D pre-training rounds, each with fresh negatives
    d_epochs: int = 3  # k: epochs over each round's real+fake set
    adv_rounds: int = 200  # adversarial rounds
    g_steps: int = 1  # policy-gradient steps per adversarial round
    d_steps: int = 5  # D rounds (fresh negatives) per adversarial round
    d_samples: int = 10000  # negatives per D round (and as many real windows, sampled)
    rollout_num: int = 16  # N: Monte Carlo rollouts per prefix
    rollout_update_rate: float = 0.8  # r in beta <- r*beta + (1-r)*theta (0 = copy, paper Alg. 1)
    g_lr: float = 0.01  # Adam learning rate of G's MLE pre-training
    pg_lr: float = 0.01  # Adam learning rate of G's policy-gradient steps (the paper: 0.01)
    # the adversarial objective (policy_gradient.py); the defaults here are the paper's plain REINFORCE
    pg_baseline: str = "none"  # "batch": subtract each step's mean reward over the batch; "none": the paper
    pg_normalize: bool = False  # divide advantages by their standard deviation over the batch
    kl_coef: float = 0.0  # weight of KL(G || frozen MLE model) per token in G's loss (0: off)
    d_max_acc: float = 1.0  # skip a round's d-steps while D's accuracy on the round's samples is above this
    d_label_smoothing: float = 0.0  # label smoothing of D's cross-entropy (0: off)
    d_average: float = 0.0  # rewards and D's check come from a moving average of D's weights, the newest round weighed 1 - this (0: D itself)
    d_round_share: float = 0.0  # a D round draws at most this share of the training windows (0: d_samples, however many)
    d_transpose: int = 0  # once D learns the songs by heart, its windows move by up to this many semitones (0: never)
    structure_reward: float = 0.0  # weight of the form critic's reward added to D's (structure_critic.py; 0: off)
    # model selection and the collapse guard (selection.py)
    select_samples: int = 512  # G samples of the validation judgement after each round
    select_nll_budget: float = 0.1  # a round becomes best.pt only if valid NLL <= MLE's + this (nats)
    select_rate_tolerance: float = 0.05  # ... if its silent and one-pitch rates exceed MLE's by at most this
    select_overlap_drop: float = 0.03  # ... if its statistics overlap with validation is at most this below MLE's
    select_latest: bool = False  # True: every eligible round becomes best.pt, whatever its score (the newest wins)
    collapse_entropy: float = 0.0  # collapse when G's entropy falls below this fraction of the MLE model's (0: off)
    collapse_rate: float = 1.0  # collapse when the silent or one-pitch rate exceeds the MLE model's by this (1: off)
    collapse_pinned_rounds: int = 0  # collapse after this many rounds of mean reward within 0.02 of 0 or 1 (0: off)
    d_lr: float = 1e-4  # Adam learning rate of D
    grad_clip: float = 5.0  # gradient norm clip of G
    max_nonfinite: int = 5  # consecutive non-finite losses before training stops with an error
    rollout_memory_mb: int = 512  # memory budget of one rollout chunk
    sample_every: int = 1  # adversarial rounds between published samples
    seed: int = 0  # seeds every random choice of the run
    amp: str = "off"  # "bf16": bfloat16 autocast for D's training passes (meant for CUDA GPUs)

    def __post_init__(self) -> None:
        self.validate()

    def mle_batches_per_unit(self, epoch_windows: int) -> int:
        """Global batches in one MLE unit: one epoch of ``epoch_windows`` without a budget, else
        ``mle_unit_batches`` but at most :data:`UNIT_EPOCHS` epochs (a few dozen songs are learnt,
        and then learnt by heart, within a few epochs: units that read more step past the best one)."""
        epoch = -(-epoch_windows // self.batch_size)
        return min(self.mle_unit_batches, UNIT_EPOCHS * epoch) if self.mle_unit_batches else epoch

    def d_samples_per_round(self, train_windows: int) -> int:
        """Real windows (and as many samples of G) in one D round: ``d_samples``, but with
        ``d_round_share`` at most that share of ``train_windows`` (not below a batch), so that D does
        not read a few dozen songs over and over and learn them by heart."""
        if not self.d_round_share:
            return self.d_samples
        return min(self.d_samples, max(self.batch_size, int(self.d_round_share * train_windows)))

    def units(self) -> list[tuple[str, int]]:
        """The run's schedule: (phase, index) of each unit, MLE units, D rounds, adversarial rounds."""
        return [("mle", i) for i in range(self.mle_epochs)] + [("d_pretrain", i) for i in range(self.d_pretrain_rounds)] \
            + [("adversarial", i) for i in range(self.adv_rounds)]

    def validate(self) -> None:
        at_least = {"batch_size": 1, "mle_epochs": 0, "mle_unit_batches": 0, "mle_patience": 0, "d_pretrain_rounds": 0,
                    "d_epochs": 1, "adv_rounds": 0, "g_steps": 0, "d_steps": 0, "d_samples": 1, "rollout_num": 1,
                    "max_nonfinite": 1, "rollout_memory_mb": 1, "sample_every": 1, "seed": 0}
        for name, low in at_least.items():
            if getattr(self, name) < low:
                raise UserError(f"{name} must be >= {low}, not {getattr(self, name)}")
        if min(self.g_lr, self.pg_lr, self.d_lr, self.grad_clip) <= 0 or not 0 <= self.rollout_update_rate <= 1:
            raise UserError("g_lr, pg_lr, d_lr and grad_clip must be positive, rollout_update_rate in [0, 1]")
        if self.mle_patience and not self.mle_keep_best:
            raise UserError("mle_patience needs mle_keep_best (pre-training ends with its best unit)")
        if self.amp not in ("off", "bf16"):
            raise UserError(f"amp must be 'off' or 'bf16', not {self.amp!r}")
        if self.pg_baseline not in ("none", "batch"):
            raise UserError(f"pg_baseline must be 'none' or 'batch', not {self.pg_baseline!r}")
        if not isinstance(self.pg_normalize, bool) or not isinstance(self.select_latest, bool):
            raise UserError("pg_normalize and select_latest must be true or false")
        if min(self.select_rate_tolerance, self.select_overlap_drop, self.select_nll_budget) < 0:
            raise UserError("select_rate_tolerance, select_overlap_drop and select_nll_budget must be >= 0")
        if min(self.kl_coef, self.structure_reward, self.collapse_pinned_rounds) < 0 or self.select_samples < 1:
            raise UserError("kl_coef, structure_reward and collapse_pinned_rounds must be >= 0, select_samples >= 1")
        if not 0 <= self.d_round_share <= 1 or not 0 <= self.d_average < 1:
            raise UserError("d_round_share must lie in 0..1 and d_average in [0, 1)")
        if not 0 <= self.d_transpose <= 12:
            raise UserError("d_transpose must lie in 0..12 semitones")
        if not 0 <= self.d_label_smoothing < 1 or not 0 < self.d_max_acc <= 1 or not 0 <= self.collapse_entropy < 1:
            raise UserError("d_label_smoothing must lie in [0, 1), d_max_acc in (0, 1], collapse_entropy in [0, 1)")


@dataclass
class RunConfig:
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    discriminator: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    @property
    def seq_len(self) -> int:
        """T: the window length in tokens the run trains on (D judges windows of T; G samples them)."""
        return self.discriminator.seq_len


def paper_filter_table(seq_len: int) -> tuple[list[int], list[int]]:
    """The paper's D filter table for length ``seq_len``; widths wider than T are dropped."""
    if seq_len <= 20:
        widths = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 20]
        nums = [100, 200, 200, 200, 200, 100, 100, 100, 100, 100, 160, 160]
    else:
        widths = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 16, 24, 32]
        nums = [100, 200, 200, 200, 200, 100, 100, 100, 100, 100, 160, 160, 160]
    kept = [(w, n) for w, n in zip(widths, nums) if w <= seq_len]
    return [w for w, _ in kept], [n for _, n in kept]


def small_filter_table(seq_len: int, scale: int) -> tuple[list[int], list[int]]:
    """A reduced table for CPU presets: a few widths up to T with ``scale`` filters each."""
    widths = sorted({w for w in (1, 2, 3, 4, 6, 8, 12, 16, 24, 32) if w <= seq_len} | {seq_len})
    return widths, [scale] * len(widths)


# the adversarial objective of the small presets: pre-training ends at its best validation unit,
# baseline and normalised advantages, a KL tie to the MLE model, D kept from winning outright,
# and the collapse guard on; the paper preset keeps TrainConfig's plain algorithm
STABLE_ADVERSARIAL = dict(
    mle_keep_best=True, pg_lr=1e-3, d_lr=1e-3, pg_baseline="batch", pg_normalize=True, kl_coef=0.1, d_max_acc=0.9,
    d_label_smoothing=0.1, collapse_entropy=0.5, collapse_rate=0.25, collapse_pinned_rounds=3)
# the app's default on a few dozen songs: D's rounds read at most a fifth of the windows, and its
# windows are moved in pitch once it learns the songs by heart (measured with the Fast demo; the
# whole-tune preset's melodies were closer to the other tunes with a D that learnt them by heart)
FEW_SONGS_D = dict(d_round_share=0.2, d_transpose=5)

# name -> the window length in bars of 4/4 it is made for (if one), G and D overrides, D's filters
# per width (None: the paper's table) and the training schedule; fields not named keep the
# dataclass defaults (the paper's values); the app names the presets (web/train_tab.py)
PRESETS: dict[str, dict[str, Any]] = {
    "demo": dict(generator=dict(embed_dim=32, hidden_dim=64, copy_bars=True), discriminator=dict(embed_dim=16),
                 filters=16, train=dict(  # the app's default: a first melody within seconds, the run within a
                     # minute on a 2-core CPU whatever the collection's size (MLE: at most 1,200 batches)
                     # G scored by a moving average of D's weights (D's call then holds between rounds)
                     STABLE_ADVERSARIAL, **FEW_SONGS_D, d_average=0.5, mle_epochs=12, mle_unit_batches=100,
                     mle_patience=2, d_pretrain_rounds=2, d_epochs=1, adv_rounds=15, d_steps=1, d_samples=256,
                     rollout_num=8, batch_size=32, select_samples=256)),
    "tiny": dict(generator=dict(embed_dim=16, hidden_dim=32, copy_bars=True), discriminator=dict(embed_dim=16),
                 filters=8, train=dict(  # tests: seconds
                     STABLE_ADVERSARIAL, **FEW_SONGS_D, mle_epochs=2, d_pretrain_rounds=1, d_epochs=1, adv_rounds=2,
                     d_steps=1, d_samples=64, rollout_num=4, batch_size=16)),
    "cpu": dict(generator=dict(embed_dim=32, hidden_dim=64, copy_bars=True), discriminator=dict(embed_dim=32),
                filters=32, train=dict(  # a 2-core CPU: adversarial rounds within about a minute on 1,000 windows
                    STABLE_ADVERSARIAL, mle_epochs=15, mle_unit_batches=200, mle_patience=3, d_pretrain_rounds=5,
                    d_epochs=2, adv_rounds=40, d_steps=1, d_samples=1000, rollout_num=8, batch_size=32)),
    "tune": dict(window_bars=8, generator=dict(embed_dim=64, hidden_dim=128, copy_bars=True, dropout=0.4,
                                                        lookback_bars=[1, 2, 4, 8], copy_runs=True),
                 discriminator=dict(embed_dim=32), filters=32, train=dict(  # 8-bar windows of the bars encoding on a
                     # 2-core CPU in about 6 minutes: G with room for form, dropout against out-of-key notes,
                     # a lookback of 8 bars too (strains of 8 bars come back, Nottingham's most) that
                     # says how long each copy has run (copies of the bar before broke off early);
                     # the newest eligible round is kept (the rounds add the phrase repetition), and the
                     # form critic joins D's reward (D barely sees form); D's rounds of 384 negatives
                     # keep the rounds' cost even (with 1,000, D ran its steps in the first half only)
                     STABLE_ADVERSARIAL, select_latest=True, structure_reward=1.0, mle_epochs=14, mle_unit_batches=160,
                     mle_patience=2, d_pretrain_rounds=3, d_epochs=2, adv_rounds=20, d_steps=1, d_samples=384,
                     rollout_num=8, batch_size=32, select_samples=256)),
    "paper": dict(generator={}, discriminator={}, filters=None, train={}),
}


def make_run_config(preset: str, vocab_size: int, seq_len: int, start_token: int = 0,
                    bar_tokens: list[int] | None = None) -> RunConfig:
    """Build the run config of a preset for a dataset of ``vocab_size`` tokens and windows of T
    (``bar_tokens``: the ids of its bar lines, if its encoding has them)."""
    if preset not in PRESETS:
        raise UserError(f"unknown preset {preset!r}: choose one of {', '.join(PRESETS)}")
    spec = PRESETS[preset]
    gen = GeneratorConfig(vocab_size=vocab_size, start_token=start_token, bar_tokens=list(bar_tokens or []),
                          **spec["generator"])
    disc = DiscriminatorConfig(vocab_size=vocab_size, seq_len=seq_len, **spec["discriminator"])
    if spec["filters"] is None:
        disc.filter_widths, disc.num_filters = paper_filter_table(seq_len)
    else:
        disc.filter_widths, disc.num_filters = small_filter_table(seq_len, spec["filters"])
    return RunConfig(gen, disc, TrainConfig(**spec["train"]))


def to_dict(cfg: Any) -> dict[str, Any]:
    """Dataclass -> plain dict (nested dataclasses become dicts)."""
    return dataclasses.asdict(cfg)


def from_dict(cls: type[C], data: dict[str, Any], where: str = "config") -> C:
    """Plain dict -> dataclass ``cls``; unknown keys and wrong types raise a UserError."""
    if not isinstance(data, dict):
        raise UserError(f"{where}: expected an object, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise UserError(f"{where}: unknown key(s) {', '.join(unknown)}")
    kwargs = {}
    for name, value in data.items():
        sub = _nested_type(cls, name)
        kwargs[name] = from_dict(sub, value, f"{where}.{name}") if sub else _typed(value, fields[name].type, f"{where}.{name}")
    try:
        obj = cls(**kwargs)
        if hasattr(obj, "validate"):
            obj.validate()
    except TypeError as exc:
        raise UserError(f"{where}: {exc}") from None
    except UserError as exc:
        raise UserError(f"{where}: {exc}") from None
    return obj


def _typed(value: Any, annotation: str, where: str) -> Any:
    """``value`` checked against a field annotation (``int``, ``float``, ``bool``, ``str``,
    ``str | None``, ``list[int]``); an int is accepted for a float and converted."""
    def is_int(v: Any) -> bool:
        return isinstance(v, int) and not isinstance(v, bool)

    ok = {"int": is_int(value), "float": is_int(value) or isinstance(value, float), "bool": isinstance(value, bool),
          "str": isinstance(value, str), "str | None": value is None or isinstance(value, str),
          "list[int]": isinstance(value, list) and all(is_int(v) for v in value)}.get(annotation)
    if ok is None:
        raise TypeError(f"no type check for annotation {annotation!r}")
    if not ok:
        raise UserError(f"{where}: expected {annotation}, got {value!r}"[:200])
    return float(value) if annotation == "float" else value


def _nested_type(cls: type, name: str) -> type | None:
    nested = {"generator": GeneratorConfig, "discriminator": DiscriminatorConfig, "train": TrainConfig}
    return nested.get(name) if cls is RunConfig else None


def apply_overrides(cfg: RunConfig, overrides: list[str]) -> RunConfig:
    """Apply ``section.key=value`` (or plain ``key=value`` for train keys) strings to ``cfg``.

    Values are parsed as JSON when possible (numbers, lists, booleans), else taken as strings.
    """
    data = to_dict(cfg)
    for item in overrides:
        if "=" not in item:
            raise UserError(f"--set {item!r}: expected key=value")
        key, raw = item.split("=", 1)
        section, _, name = key.rpartition(".")
        if name in DATASET_FIELDS:
            raise UserError(f"--set {key!r}: {name} comes from the dataset (prepare --seq-len, --encoding); "
                            "prepare another dataset to change it")
        section = section or _section_of(name, key)
        if section not in data or name not in data[section]:
            raise UserError(f"--set {key!r}: unknown setting")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        old = data[section][name]
        if isinstance(old, (int, float)) and not isinstance(old, bool) and not isinstance(value, (int, float)):
            raise UserError(f"--set {key!r}: expected a number, got {raw!r}")
        if isinstance(old, float) and isinstance(value, int):
            value = float(value)
        data[section][name] = value
    return from_dict(RunConfig, data, "run config")


DATASET_FIELDS = ("seq_len", "vocab_size", "start_token", "bar_tokens")  # fixed by the dataset's tokenizer, never by --set


def _section_of(name: str, key: str) -> str:
    """The one config section that has ``name``; a UserError when G's and D's both have it."""
    sections = [section for section, cls in (("train", TrainConfig), ("generator", GeneratorConfig),
                                             ("discriminator", DiscriminatorConfig))
                if name in {f.name for f in dataclasses.fields(cls)}]
    if len(sections) > 1:
        raise UserError(f"--set {key!r}: both {' and '.join(sections)} have {name}; write "
                        + " or ".join(f"{s}.{name}=..." for s in sections))
    return sections[0] if sections else "train"
