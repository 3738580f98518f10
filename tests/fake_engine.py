"""A stand-in for the engine and style library: canned tokens with sleeps, no model.

GUI tests and demos use it so they load nothing. It keeps the real API's shape:
TokenStep records with p_base/p_steered/JS/alternatives, summaries with metrics.
"""

from __future__ import annotations

import itertools
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch  # imported up front, as the app does, so no import runs on the worker mid-test

from app.jobs.backend import (
    Cancelled,
    ImportReport,
    ModelInfo,
    ProgressFn,
    SteerParams,
    StyleDetails,
    StyleInfo,
    UserFacingError,
    expand_paths,
)
from engine.context import DEFAULT_NOTE_DEPTH
from engine.types import METRIC_NAMES, SamplingConfig, Summary, TokenStep

_WORDS = ("the", "night", "was", "still", "and", "the", "river", "ran", "slow", "beneath", "a",
          "sky", "of", "pale", "stars", "while", "she", "walked", "home", "thinking", "of", "him",
          "and", "of", "what", "he", "had", "said", "at", "the", "gate")
_ALT_WORDS = ("a", "the", "some", "her", "his", "an", "old", "dark", "long", "small")


@dataclass
class FakeOptions:
    """Knobs tests turn: speed, CPU load per token (torch ops release the GIL), failures."""

    token_delay_s: float = 0.01
    cpu_ms_per_token: float = 0.0  # busy work per token, half in torch, half in Python
    load_delay_s: float = 0.05
    file_delay_s: float = 0.005
    vocab_size: int = 1000
    context_window: int = 2048  # the fake tokenizer has one token per word (and per space run)
    library_notice: str | None = None  # what opening the library has to say (set aside, read-only)
    fail_generate: bool = False
    calls: list[str] = field(default_factory=list)


def _burn(ms: float) -> None:
    """Busy work like a decode step: mostly torch matmuls (GIL released), a little Python."""
    if ms <= 0:
        return
    end = time.perf_counter() + ms / 1000
    a = torch.randn(96, 96)
    while time.perf_counter() < end:
        a = torch.tanh(a @ a)
        sum(i * i for i in range(200))  # some pure-Python work holding the GIL


class FakeGeneration:
    """Iterates canned TokenSteps; `.summary()` afterwards, like engine.decode.Generation."""

    def __init__(self, backend: FakeBackend, prompt: str, sampling: SamplingConfig,
                 steer: SteerParams, cancel: threading.Event | None, side: str = "steered",
                 seed_shift: int = 0) -> None:
        self._b = backend
        self.prompt = prompt
        self.sampling = sampling
        self.steer = steer
        self.cancel = cancel
        self.side = side
        self.steps: list[TokenStep] = []
        self.stop_reason = "length"
        self._rng = random.Random((sampling.seed or 0) + seed_shift + len(prompt))

    def _step(self, i: int) -> TokenStep:
        lam = self._b.lam if self.side == "steered" else 0.0
        word = self._rng.choice(_WORDS)
        at_word_start = i == 0 and (not self.prompt or self.prompt.endswith((" ", "\n")))
        piece = word if at_word_start else " " + word
        p_base = 0.2 + 0.6 * self._rng.random()
        js = 0.0 if lam == 0 else lam * 0.3 * self._rng.random() ** 2
        p_steered = min(0.99, p_base * (1 + js * 3))
        tid = (_WORDS.index(word) + 7) % self._b.options.vocab_size
        alts_base = [(tid, piece, p_base)] + [
            (100 + k, " " + w, p_base * 0.5 ** (k + 1)) for k, w in enumerate(_ALT_WORDS[:4])]
        alts_steer = [(tid, piece, p_steered)] + [
            (200 + k, " " + w, p_steered * 0.4 ** (k + 1)) for k, w in enumerate(reversed(_ALT_WORDS[-4:]))]
        return TokenStep(side=self.side, step=i, token_id=tid, text=piece, p_base=p_base,
                         p_steered=p_steered if self.side == "steered" else p_base, js_bits=js,
                         lam=lam, top_base=alts_base, top_steered=alts_steer if self.side == "steered" else alts_base)

    def __iter__(self) -> Iterator[TokenStep]:
        o = self._b.options
        if o.fail_generate:
            raise RuntimeError("the fake engine was told to fail")
        for i in range(self.sampling.max_new_tokens):
            if self.cancel is not None and self.cancel.is_set():
                self.stop_reason = "cancelled"
                return
            _burn(o.cpu_ms_per_token)
            if o.token_delay_s:
                time.sleep(o.token_delay_s)
            step = self._step(i)
            self.steps.append(step)
            yield step

    def summary(self) -> Summary:
        text = "".join(s.text for s in self.steps)
        ids = [s.token_id for s in self.steps]
        js = [s.js_bits for s in self.steps]
        n = max(1, len(ids))
        metrics: dict[str, float | None] = dict.fromkeys(METRIC_NAMES)
        metrics.update(
            style_ppl=900.0 - 400 * (self.steer.lam if self.side == "steered" else 0),
            base_ppl=20.0 + 10 * (self.steer.lam if self.side == "steered" else 0),
            js_mean_bits=sum(js) / n, js_median_bits=sorted(js)[len(js) // 2] if js else 0.0,
            unigram_overlap=0.8, bigram_seen=0.5 + (0.1 if self.side == "steered" else 0),
            distinct_2=len(set(itertools.pairwise(ids))) / max(1, len(ids) - 1))
        return Summary(side=self.side, text=text, token_ids=ids, metrics=metrics,
                       stop_reason=self.stop_reason)


class FakeCompare:
    def __init__(self, backend: FakeBackend, prompt: str, sampling: SamplingConfig,
                 steer: SteerParams, cancel: threading.Event | None) -> None:
        base_steer = SteerParams(style=steer.style, lam=0.0, mode=steer.mode)
        self.base = FakeGeneration(backend, prompt, sampling, base_steer, cancel, side="baseline")
        self.steered = FakeGeneration(backend, prompt, sampling, steer, cancel, side="steered",
                                      seed_shift=1)

    def __iter__(self) -> Iterator[tuple[TokenStep | None, TokenStep | None]]:
        yield from zip(self.base, self.steered, strict=True)

    def summaries(self) -> tuple[Summary, Summary]:
        return self.base.summary(), self.steered.summary()


class FakeBackend:
    """In-memory styles, a pretend model, canned generation."""

    def __init__(self, options: FakeOptions | None = None) -> None:
        self.options = options or FakeOptions()
        self.lam = 0.3
        self._model: ModelInfo | None = None
        self._styles: dict[str, StyleInfo] = {}
        self._blends: dict[str, tuple[tuple[str, float], ...]] = {}  # saved blends: name -> parts
        self._docs: dict[str, list[tuple[str, str, int]]] = {}
        self.thread_ids: set[int] = set()  # which threads touched the backend (must be the worker's)
        self.load_precisions: list[str | None] = []  # the precision each load_model call asked for
        self._counter: Any = None

    def _touch(self, what: str) -> None:
        self.thread_ids.add(threading.get_ident())
        self.options.calls.append(what)

    def open(self) -> str | None:
        self._touch("open")
        return self.options.library_notice

    def close(self) -> None:
        self._touch("close")

    def model_info(self) -> ModelInfo | None:
        return self._model

    def load_model(self, spec: str | None, *, device: str | None, quantize: str | None,
                   progress: ProgressFn, cancel: threading.Event,
                   notify: Callable[[str], None], precision: str | None = None) -> ModelInfo:
        self._touch(f"load_model:{spec}")
        self.load_precisions.append(precision)
        stages = ("resolving", "tokenizer", "weights", "moving to device")
        for i, stage in enumerate(stages):
            if cancel.is_set():
                raise Cancelled()
            progress(i, len(stages), stage)
            time.sleep(self.options.load_delay_s / len(stages))
        if spec and ("missing" in spec or "broken" in spec):
            raise UserFacingError(f"Could not load model “{spec}”: no such model folder or hub id.")
        name = spec or "demo"
        self._model = ModelInfo(name=f"fake-{name}", source=name, device=device or "cpu",
                                dtype="float32", quantization=None if quantize in (None, "none") else quantize,
                                memory_bytes=270 * 1024 * 1024, vocab_size=self.options.vocab_size,
                                fingerprint="fakefp",
                                precision=None if precision in (None, "auto") else precision)
        progress(len(stages), len(stages), "ready")
        return self._model

    def list_styles(self) -> list[StyleInfo]:
        self._touch("list_styles")
        blends = [StyleInfo(name, 0, 0, "blend", blend=parts,
                            missing=tuple(n for n, _ in parts if n not in self._styles))
                  for name, parts in self._blends.items()]
        by_name = lambda s: s.name.lower()  # noqa: E731
        return sorted(self._styles.values(), key=by_name) + sorted(blends, key=by_name)

    def save_blend(self, name: str, spec: str | Sequence[tuple[str, float]]) -> None:
        """Parsed and checked like the real library's (styles.blend), kept in memory."""
        from styles.blend import BlendError, normalise, parse_blend

        self._touch(f"save_blend:{name}")
        if name in self._styles:
            raise UserFacingError(f"A style named “{name}” already exists; choose another name for the blend.")
        try:
            parts = parse_blend(spec).parts if isinstance(spec, str) else normalise(list(spec)).parts
        except BlendError as exc:
            raise UserFacingError(str(exc)) from exc
        self._check_parts([n for n, _ in parts])
        self._blends[name] = parts

    def _check_parts(self, names: Sequence[str]) -> None:
        for n in names:
            if n not in self._styles:
                raise UserFacingError(f"No style named “{n}” for the blend.")

    def import_paths(self, style: str, paths: Sequence[Path], *, progress: ProgressFn,
                     cancel: threading.Event) -> ImportReport:
        self._touch(f"import:{style}")
        files = expand_paths(paths)
        report = ImportReport(style=style)
        tokens = 0
        for i, f in enumerate(files):
            if cancel.is_set():
                report.cancelled = True
                return report  # the style is left as it was
            progress(i, len(files), f.name)
            time.sleep(self.options.file_delay_s)
            try:
                data = f.read_bytes()
            except OSError as exc:
                report.skipped.append((str(f), f"unreadable ({exc.strerror or exc})"))
                continue
            if not data.strip():
                report.skipped.append((str(f), "empty"))
                continue
            if b"\x00" in data[:4096]:
                report.skipped.append((str(f), "binary file, not text"))
                continue
            n = len(data.split())
            tokens += n
            report.imported.append(str(f))
            self._docs.setdefault(style, []).append((f"sha{abs(hash(data)):x}", str(f), n))
        progress(len(files), len(files), "done")
        if not report.imported:
            raise UserFacingError(f"Nothing imported into “{style}”: " + (
                "; ".join(f"{Path(n).name}: {w}" for n, w in report.skipped[:5]) or "no files"))
        old = self._styles.get(style)
        self._styles[style] = StyleInfo(
            name=style, documents=(old.documents if old else 0) + len(report.imported),
            tokens=(old.tokens if old else 0) + tokens, tokenizer="fake-tokenizer", fingerprint="fakefp")
        report.tokens = tokens
        return report

    def rebuild_style(self, style: str, *, progress: ProgressFn, cancel: threading.Event) -> None:
        self._touch(f"rebuild:{style}")
        if style not in self._styles:
            raise UserFacingError(f"No style named “{style}”.")
        for i in range(5):
            if cancel.is_set():
                raise Cancelled()
            progress(i, 5, "rebuilding")
            time.sleep(self.options.file_delay_s)
        progress(5, 5, "done")

    def rename_style(self, old: str, new: str) -> None:
        self._touch(f"rename:{old}->{new}")
        if new in self._styles:
            raise UserFacingError(f"A style named “{new}” already exists.")
        info = self._styles.pop(old)
        self._styles[new] = StyleInfo(new, info.documents, info.tokens, info.tokenizer, info.fingerprint)

    def delete_style(self, style: str) -> None:
        self._touch(f"delete:{style}")
        self._styles.pop(style, None)
        self._blends.pop(style, None)

    def style_details(self, style: str) -> StyleDetails:
        self._touch(f"details:{style}")
        if style not in self._styles:
            raise UserFacingError(f"No style named “{style}”.")
        docs = self._docs.get(style, [])
        return StyleDetails(style, list(docs), [("/tmp/empty.txt", "empty")], {1: 10, 2: 20, 3: 30})

    def remove_document(self, style: str, sha256: str) -> None:
        self._touch(f"remove_document:{style}:{sha256}")
        docs = [d for d in self._docs.get(style, []) if d[0] != sha256]
        self._docs[style] = docs
        info = self._styles[style]
        self._styles[style] = StyleInfo(style, len(docs), sum(d[2] for d in docs), info.tokenizer, info.fingerprint)

    def export_style(self, style: str, file: Path) -> Path:
        self._touch(f"export:{style}")
        Path(file).write_text(f"fake style {style}\n", encoding="utf-8")
        return Path(file)

    def import_style_file(self, file: Path) -> str:
        self._touch(f"import_file:{file}")
        text = Path(file).read_text(encoding="utf-8")
        if not text.startswith("fake style "):
            raise UserFacingError(f"{Path(file).name} is not a StyleSteer style file")
        name = text.split(" ", 2)[2].strip() + " (imported)"
        self._styles[name] = StyleInfo(name, 1, 10, "fake-tokenizer", "fakefp")
        return name

    def _check_ready(self, steer: SteerParams) -> None:
        if self._model is None:
            raise UserFacingError("No model is loaded yet.")
        if not steer.style or steer.style in self._styles:
            return
        if steer.style in self._blends:
            self._check_parts([n for n, _ in self._blends[steer.style]])
        elif ":" in steer.style:
            from styles.blend import BlendError, parse_blend

            try:
                self._check_parts(parse_blend(steer.style).names)
            except BlendError as exc:
                raise UserFacingError(str(exc)) from exc
        else:
            raise UserFacingError(f"No style named “{steer.style}”.")

    def assemble_context(self, text: str, max_new_tokens: int, memory: str = "", authors_note: str = "",
                         note_depth: int = DEFAULT_NOTE_DEPTH, context_limit: int = 0) -> Any:
        from engine.context import ContextError, assemble_context

        self._touch("assemble_context")
        if self._model is None:
            raise UserFacingError("Load a model before you generate.")
        try:
            return assemble_context(text, len(text), WordTokenizer(), context_window=self.options.context_window,
                                    max_new_tokens=max_new_tokens, user_limit=context_limit or None, memory=memory,
                                    authors_note=authors_note, note_depth=note_depth)
        except ContextError as exc:
            raise UserFacingError(str(exc)) from exc

    def count_tokens(self, text: str, cancel: threading.Event) -> Any:
        """The real chunked counter over the word tokenizer; None before a model is loaded, like the real one."""
        from engine.token_count import DocumentTokenCounter

        self._touch("count_tokens")
        if self._model is None:
            return None
        if self._counter is None:
            self._counter = DocumentTokenCounter(WordTokenizer())
        result = self._counter.count(text, cancel)
        if result is None:
            raise Cancelled()
        return result

    def generate(self, prompt: str, sampling: SamplingConfig, steer: SteerParams,
                 cancel: threading.Event) -> FakeGeneration:
        self._start("generate", steer)
        return FakeGeneration(self, prompt, sampling, steer, cancel)

    def compare(self, prompt: str, sampling: SamplingConfig, steer: SteerParams,
                cancel: threading.Event) -> FakeCompare:
        self._start("compare", steer)
        return FakeCompare(self, prompt, sampling, steer, cancel)

    def _start(self, kind: str, steer: SteerParams) -> None:
        self._touch(kind)
        self._check_ready(steer)
        self.lam = steer.lam if steer.style else 0.0

    def set_lam(self, lam: float) -> None:
        self.lam = float(lam)  # a float store is atomic under the GIL

    def sweep(self, style: str, params: dict[str, Any], *, progress: ProgressFn,
              cancel: threading.Event) -> str:
        self._touch("sweep")
        total = 10
        for i in range(total):
            if cancel.is_set():
                return f"Cancelled after {i} of {total} rows."
            progress(i, total, "")
            time.sleep(self.options.token_delay_s)
        progress(total, total, "")
        out = Path(params.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "summary.csv").write_text("mode,lam\n", encoding="utf-8")
        return f"Finished: {total} rows. Results are in {out}."

    def tune(self, style: str, params: dict[str, Any], *, progress: ProgressFn,
             cancel: threading.Event) -> Any:
        self._touch("tune")
        from engine.sweep import TuneResult

        lams = [0.0, 0.1, 0.2, 0.3]
        for i, lam in enumerate(lams):
            if cancel.is_set():
                raise Cancelled()
            progress(i, len(lams), f"λ = {lam:g}")
            time.sleep(self.options.token_delay_s)
        progress(len(lams), len(lams), "done")
        return TuneResult(style=style, mode=params.mode, margin=params.margin,
                          rows=[], proposed_lam=0.1, pareto=[])

    def check_style(self, style: str, text: str, *, cancel: threading.Event) -> Any:
        """engine.stylecheck's result shape: a word of the fake style (_WORDS) scores +1, any other word -1."""
        import numpy as np

        from engine.stylecheck import CheckResult, TokenScore, encode, sentence_scores, split_sentences

        self._touch("check_style")
        self._check_ready(SteerParams(style=style))
        time.sleep(self.options.token_delay_s)
        if cancel.is_set():
            raise Cancelled()
        ids, offsets = encode(WordTokenizer(), text)
        scores = np.array([np.nan if not text[a:b].strip() or not text[a].isalnum()
                           else (1.0 if text[a:b].lower() in _WORDS else -1.0) for a, b in offsets])
        tokens = [TokenScore(a, b, t, 0.0, 0.0, float(v) if np.isfinite(v) else None)
                  for (a, b), t, v in zip(offsets, ids, scores, strict=True)]
        return CheckResult(text, tokens, sentence_scores(split_sentences(text), offsets, scores), "fake")


class WordTokenizer:
    """HF-shaped: one token per run of word characters or of anything else, with offsets."""

    def __call__(self, text: str | list[str], *, add_special_tokens: bool = True,
                 return_offsets_mapping: bool = False, verbose: bool = False) -> dict[str, list]:
        import re

        if isinstance(text, list):  # a batch, as HF tokenizers take one
            return {"input_ids": [self(t, add_special_tokens=add_special_tokens)["input_ids"] for t in text]}
        spans = [m.span() for m in re.finditer(r"\w+|\W+", text)]
        out: dict[str, list] = {"input_ids": ([1] if add_special_tokens else []) + [7] * len(spans)}
        if return_offsets_mapping:
            out["offset_mapping"] = spans
        return out
