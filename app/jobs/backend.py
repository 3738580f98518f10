"""What the worker needs from the engine and the style library, as one small interface.

Every method runs on the worker thread. `RealBackend` (app/real_backend.py) drives
engine/ and styles/; `FakeBackend` (app/fake_engine.py) yields canned tokens so GUI
tests load no model.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from app.display import format_bytes
from engine.context import DEFAULT_NOTE_DEPTH
from engine.types import (
    DEFAULT_BUDGET_BITS,
    DEFAULT_LAM,
    DEFAULT_MODE,
    SamplingConfig,
    Summary,
    TokenStep,
)


class ProgressFn(Protocol):
    """(done, total, what is happening); `stage=True` marks a new stage, which is never throttled
    away (a long stage must not sit behind the previous one's label)."""

    def __call__(self, done: int, total: int, text: str = "", *, stage: bool = False) -> None: ...


class UserFacingError(Exception):
    """A problem the user can act on (bad file, model missing, style mismatch): shown as one line."""


class Cancelled(Exception):
    """The job was cancelled; nothing changed."""


@dataclass(frozen=True)
class ModelInfo:
    name: str
    source: str
    device: str
    dtype: str
    quantization: str | None
    memory_bytes: int
    vocab_size: int
    fingerprint: str
    notices: tuple[str, ...] = ()
    precision: str | None = None  # on the CPU: the weights' precision in use (fp32, bf16, int8); shown unless fp32

    def status_text(self) -> str:
        quant = f", {self.quantization}" if self.quantization else ""
        dtype = self.precision if self.precision not in (None, "fp32") else self.dtype
        return f"{self.name} · {self.device} · {dtype}{quant} · {format_bytes(self.memory_bytes)}"


@dataclass(frozen=True)
class TuneParams:
    """What the Tune λ panel asks for: a small sweep for one style (engine.sweep.tune)."""

    mode: str = DEFAULT_MODE
    margin: float = 0.25  # how much fluency (base PPL) may be given up, as a fraction
    n_prompts: int = 4
    max_new_tokens: int = 48


@dataclass(frozen=True)
class SweepParams:
    """What the full sweep dialog asks for (the paper's protocol unless changed)."""

    out_dir: Path
    modes: tuple[str, ...] = ("paper",)
    lams: str = ""  # '0,0.1,...'; empty: the paper's 14
    max_new_tokens: int = 256
    sample: bool = False
    prompt_baseline: str | None = None
    budget_bits: float = DEFAULT_BUDGET_BITS


@dataclass(frozen=True)
class StyleInfo:
    name: str
    documents: int
    tokens: int
    tokenizer: str
    fingerprint: str = ""
    compatible: bool = True  # built with the loaded model's tokenizer
    blend: tuple[tuple[str, float], ...] = ()  # a saved blend: its styles and (normalised) weights
    missing: tuple[str, ...] = ()  # a saved blend's styles that are no longer in the library

    @property
    def is_blend(self) -> bool:
        return bool(self.blend)


@dataclass(frozen=True)
class StyleDetails:
    """What `stylesteer styles show` prints: documents, n-gram counts, skipped files."""

    name: str
    documents: list[tuple[str, str, int]]  # (sha256, path, tokens)
    skipped: list[tuple[str, str]]  # (path, why)
    ngrams: dict[int, int]  # order -> distinct n-grams


@dataclass
class ImportReport:
    style: str
    imported: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, why)
    tokens: int = 0
    cancelled: bool = False

    def summary_text(self) -> str:
        if self.cancelled:
            return f"Import into “{self.style}” was cancelled; the style is unchanged."
        lines = [f"Imported {len(self.imported)} file(s), {self.tokens:,} tokens, into “{self.style}”."]
        if self.skipped:
            lines.append(f"Skipped {len(self.skipped)}:")
            lines += [f"  {Path(name).name}: {why}" for name, why in self.skipped[:50]]
            if len(self.skipped) > 50:
                lines.append(f"  … and {len(self.skipped) - 50} more")
        return "\n".join(lines)


@dataclass(frozen=True)
class SteerParams:
    style: str | None
    lam: float = DEFAULT_LAM
    mode: str = DEFAULT_MODE
    budget_bits: float = DEFAULT_BUDGET_BITS


class GenerationLike(Protocol):
    def __iter__(self) -> Iterator[TokenStep]: ...
    def summary(self) -> Summary: ...


class CompareLike(Protocol):
    def __iter__(self) -> Iterator[tuple[TokenStep | None, TokenStep | None]]: ...
    def summaries(self) -> tuple[Summary, Summary]: ...


class Backend(Protocol):
    """Engine state owned by the worker thread."""

    def open(self) -> str | None:
        """Open the style library; a notice the user must hear once (damaged and set aside, read-only)."""
        ...
    def close(self) -> None: ...
    def model_info(self) -> ModelInfo | None: ...
    def load_model(self, spec: str | None, *, device: str | None, quantize: str | None,
                   progress: ProgressFn, cancel: threading.Event,
                   notify: Callable[[str], None], precision: str | None = None) -> ModelInfo: ...
    def list_styles(self) -> list[StyleInfo]: ...
    def import_paths(self, style: str, paths: Sequence[Path], *, progress: ProgressFn,
                     cancel: threading.Event) -> ImportReport: ...
    def rebuild_style(self, style: str, *, progress: ProgressFn, cancel: threading.Event) -> None: ...
    def rename_style(self, old: str, new: str) -> None: ...
    def delete_style(self, style: str) -> None: ...
    def save_blend(self, name: str, spec: str | Sequence[tuple[str, float]]) -> None:
        """Save a blend (`NAME:W,NAME:W` or (style, weight) pairs) under `name`, replacing one of that name."""
        ...
    def style_details(self, style: str) -> StyleDetails: ...
    def remove_document(self, style: str, sha256: str) -> None: ...
    def export_style(self, style: str, file: Path) -> Path: ...
    def import_style_file(self, file: Path) -> str: ...
    def assemble_context(self, text: str, max_new_tokens: int, memory: str = "", authors_note: str = "",
                         note_depth: int = DEFAULT_NOTE_DEPTH, context_limit: int = 0) -> Any:
        """engine.context.AssembledContext for continuing `text` (all of it is before the cursor), within
        `context_limit` tokens when that is smaller than the model's window (0: the window)."""
        ...

    def count_tokens(self, text: str, cancel: threading.Event) -> Any:
        """engine.token_count.TokenCount of the whole document; None while no model is loaded."""
        ...

    def generate(self, prompt: str, sampling: SamplingConfig, steer: SteerParams,
                 cancel: threading.Event) -> GenerationLike: ...
    def compare(self, prompt: str, sampling: SamplingConfig, steer: SteerParams,
                cancel: threading.Event) -> CompareLike: ...
    def set_lam(self, lam: float) -> None: ...
    def tune(self, style: str, params: TuneParams, *, progress: ProgressFn,
             cancel: threading.Event) -> Any: ...
    def sweep(self, style: str, params: SweepParams, *, progress: ProgressFn,
              cancel: threading.Event) -> str: ...
    def check_style(self, style: str, text: str, *, cancel: threading.Event) -> Any:
        """engine.stylecheck.CheckResult: how much each token and sentence of `text` reads like the style."""
        ...


def expand_paths(paths: Iterable[Path]) -> list[Path]:
    """Files given directly, plus every file under given folders (sorted, hidden ones left out)."""
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.is_file() and not any(
                part.startswith(".") for part in f.relative_to(p).parts))
        else:
            out.append(p)
    return out
