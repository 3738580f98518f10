"""Plain records that flow out of the engine: one per generated token, one summary per side."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal, cast, get_args

from engine.phrase_rules import PhraseRules

Side = Literal["steered", "baseline"]
Mode = Literal["paper", "dense", "budget"]
MODES: tuple[str, ...] = get_args(Mode)
# The product's defaults, chosen from sweeps on the three sample corpora, greedy and with the app's sampling
# (docs/results.md, "The budget follows the slider"): budget mode at lambda 0.3 with tau_max 0.16 bits, i.e. a token
# may spend 0.012 bits of JS per bit of the model's entropy.
DEFAULT_MODE: Mode = "budget"
DEFAULT_LAM = 0.3
DEFAULT_BUDGET_BITS = 0.16
# bitsandbytes quantizations a model can be loaded with (CUDA only).
QUANTIZE_CHOICES: tuple[str, ...] = ("8bit", "4bit")
# Weight precisions on the CPU; auto measures which is fastest at fp32's quality (engine.precision).
PRECISION_CHOICES: tuple[str, ...] = ("auto", "fp32", "bf16", "int8")


def parse_mode(value: str) -> Mode:
    """`value` as a steering Mode; ValueError naming the choices otherwise."""
    if value not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {value!r}")
    return cast(Mode, value)

# One alternative token: (token id, its text, probability).
Alternative = tuple[int, str, float]


@dataclass(frozen=True)
class TokenStep:
    """One generated token with its diagnostics."""

    side: Side
    step: int
    token_id: int
    text: str  # the exact text this token adds; joining all pieces gives the continuation
    p_base: float  # probability of the chosen token under the frozen model
    p_steered: float  # ... and under the steered distribution
    js_bits: float  # Jensen-Shannon divergence base vs steered, in bits
    lam: float  # the lambda actually applied at this step (budget mode may use less)
    top_base: list[Alternative] = field(default_factory=list)
    top_steered: list[Alternative] = field(default_factory=list)
    adjusted: bool = False  # a banned or biased token's probability moved at this step (engine/bans.py)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["top_base"] = [list(a) for a in self.top_base]
        d["top_steered"] = [list(a) for a in self.top_steered]
        return d


@dataclass
class Summary:
    """What one side produced, with its metrics (style metrics are None without a style)."""

    side: Side
    text: str
    token_ids: list[int]
    metrics: dict[str, float | None]
    stop_reason: str = "length"  # "eos" | "length" | "cancelled"

    def to_json(self) -> dict[str, Any]:
        return {"summary": {"side": self.side, "text": self.text, "token_ids": self.token_ids,
                            "metrics": self.metrics, "stop_reason": self.stop_reason}}


@dataclass
class SamplingConfig:
    """How tokens are chosen. The defaults keep the small bundled model out of repetition loops."""

    max_new_tokens: int = 96
    greedy: bool = False
    temperature: float = 0.8
    top_k: int = 50
    top_p: float = 0.95
    repetition_penalty: float = 1.15
    seed: int | None = 0
    n_alternatives: int = 5  # top-k alternatives per token in the diagnostics; 0 turns them off
    diagnostics: bool = True  # p_base, p_steered, JS, alternatives per token
    stop_at_eos: bool = True  # False always runs max_new_tokens (benchmarks)
    rules: PhraseRules | None = None  # banned phrases and biases, applied after steering

    def __post_init__(self) -> None:
        if isinstance(self.rules, dict):  # as asdict() or a saved session stores it
            self.rules = PhraseRules.from_json(self.rules)

    def validate(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0, got {self.top_k}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.repetition_penalty <= 0:
            raise ValueError(f"repetition_penalty must be > 0, got {self.repetition_penalty}")


METRIC_NAMES: tuple[str, ...] = (
    "style_ppl", "base_ppl", "js_mean_bits", "js_median_bits",
    "unigram_overlap", "bigram_seen", "distinct_2",
)
