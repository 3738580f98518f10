"""The worker's engine state over engine/ and styles/: model, style store, active prior."""

from __future__ import annotations

import contextlib
import gc
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from app.display import short_tokenizer_name
from app.jobs.backend import (
    Cancelled,
    ImportReport,
    ModelInfo,
    ProgressFn,
    SteerParams,
    StyleDetails,
    StyleInfo,
    SweepParams,
    TuneParams,
    UserFacingError,
)
from engine.context import DEFAULT_NOTE_DEPTH
from engine.types import SamplingConfig


class RealBackend:
    """Owned by the worker thread: every method runs there (SQLite and torch included)."""

    def __init__(self, store_path: Path | None = None) -> None:
        self._store_path = store_path
        self.store: Any = None
        self.lm: Any = None
        self._info: ModelInfo | None = None
        self._priors: dict[tuple[str, str, str], Any] = {}  # (style, fingerprint, updated_at) -> prior
        self._processor: Any = None
        self._prefix: Any = None  # engine.kvcache.PrefixCache of the loaded model: the last context's KV cache
        self._counter: Any = None  # engine.token_count.DocumentTokenCounter for the loaded tokenizer

    # --- life cycle -------------------------------------------------------------------
    def open(self) -> str | None:
        """Open the style library; returns what the user must hear about it once (set aside as
        damaged, or read-only), else None."""
        from styles.store import StyleError, StyleStore

        try:
            self.store = StyleStore(self._store_path)
        except StyleError as exc:
            raise UserFacingError(_capital(str(exc))) from exc
        return _capital(self.store.notice) if self.store.notice else None

    def close(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None

    def _need_store(self) -> Any:
        if self.store is None:
            self.open()
        return self.store

    def _need_model(self, what: str) -> Any:
        if self.lm is None:
            raise UserFacingError(f"Load a model before you {what}.")
        return self.lm

    # --- model ------------------------------------------------------------------------------
    def model_info(self) -> ModelInfo | None:
        return self._info

    def load_model(self, spec: str | None, *, device: str | None, quantize: str | None,
                   progress: ProgressFn, cancel: threading.Event,
                   notify: Callable[[str], None], precision: str | None = None) -> ModelInfo:
        from engine.models import LoadCancelled, ModelLoadError, load_model

        def stage(name: str, fraction: float) -> None:
            progress(round(fraction * 100), 100, name, stage=True)

        try:
            lm = load_model(spec, device=device, quantize=quantize, progress=stage, cancel=cancel,
                            notify=notify, precision=precision)
        except LoadCancelled as exc:
            raise Cancelled() from exc
        except ModelLoadError as exc:
            raise UserFacingError(f"Could not load the model: {exc}") from exc
        except OSError as exc:
            raise UserFacingError(f"Could not load the model: {exc}") from exc
        if cancel.is_set():
            raise Cancelled()
        # Only now does the new model replace the old one: a failure above keeps what we had.
        self.lm = lm
        self._prefix = None  # the old model's keys and values mean nothing to the new one
        # The model's modules are long-lived: keep them out of full GC passes (see preload_engine).
        gc.freeze()
        self._processor = None
        dtype = str(lm.dtype).replace("torch.", "")
        self._info = ModelInfo(name=lm.name, source=str(lm.source), device=str(lm.device), dtype=dtype,
                               quantization=lm.quantization, memory_bytes=int(lm.memory_bytes()),
                               vocab_size=int(lm.vocab_size), fingerprint=lm.fingerprint,
                               notices=tuple(lm.notices),
                               precision=lm.precision if lm.device.type == "cpu" and not lm.quantization else None)
        return self._info

    # --- styles -----------------------------------------------------------------------------
    def list_styles(self) -> list[StyleInfo]:
        """The styles, then the saved blends (compatible when all their styles are)."""
        from styles import blend_store

        store = self._need_store()
        fp = self.lm.fingerprint if self.lm is not None else None
        styles = [StyleInfo(name=s.name, documents=s.n_documents, tokens=s.n_tokens,
                            tokenizer=short_tokenizer_name(s.tokenizer_name), fingerprint=s.tokenizer_fingerprint,
                            compatible=fp is None or s.tokenizer_fingerprint == fp)
                  for s in store.list_styles()]
        by_name = {s.name.casefold(): s for s in styles}
        for b in blend_store.list_blends(store):
            parts = [by_name.get(n.casefold()) for n in b.spec.names]
            styles.append(StyleInfo(name=b.name, documents=sum(p.documents for p in parts if p),
                                    tokens=sum(p.tokens for p in parts if p), tokenizer="blend",
                                    compatible=all(p is not None and p.compatible for p in parts),
                                    blend=b.spec.parts, missing=b.missing))
        return styles

    def import_paths(self, style: str, paths: Sequence[Path], *, progress: ProgressFn,
                     cancel: threading.Event) -> ImportReport:
        from styles import importer

        lm = self._need_model("import (styles are counted with the model's tokenizer)")
        store = self._need_store()

        def on_progress(p: Any) -> None:
            if getattr(p, "waiting", False):
                progress(0, 0, "waiting for another import…", stage=True)
                return
            label = f"{Path(p.current_path).name} · {p.files_done} of {p.files_total} files · {p.tokens:,} tokens"
            progress(int(p.bytes_done), max(1, int(p.bytes_total)), label)

        with _style_errors():
            rep = importer.import_paths(store, style, list(paths), lm.tokenizer, progress=on_progress,
                                        cancel=cancel, fingerprint=lm.fingerprint)
        if rep.cancelled:
            raise Cancelled()
        self._forget(style)
        skipped = [(s.path, s.reason) for s in rep.skipped] + [
            (d.path, f"already in the style ({d.reason})" if d.reason else "already in the style")
            for d in rep.duplicates]
        out = ImportReport(style=rep.style, imported=[d.path for d in rep.imported], skipped=skipped,
                           tokens=rep.n_tokens)
        if not rep.imported and not skipped:
            raise UserFacingError("No files found to import.")
        if not rep.imported and not rep.duplicates:
            reasons = "; ".join(f"{Path(p).name}: {why}" for p, why in skipped[:3])
            raise UserFacingError(f"Nothing could be imported into “{style}”: {reasons}")
        return out

    def rebuild_style(self, style: str, *, progress: ProgressFn, cancel: threading.Event) -> None:
        from styles import importer

        lm = self._need_model("rebuild a style")

        def on_progress(p: Any) -> None:
            progress(int(p.bytes_done), max(1, int(p.bytes_total)), Path(p.current_path).name)

        with _style_errors():
            rep = importer.rebuild(self._need_store(), style, lm.tokenizer, progress=on_progress, cancel=cancel,
                                   fingerprint=lm.fingerprint)
        if rep.cancelled:
            raise Cancelled()
        self._forget(style)

    def rename_style(self, old: str, new: str) -> None:
        with _style_errors():
            self._need_store().rename(old, new)
        self._forget(old)

    def delete_style(self, style: str) -> None:
        with _style_errors():
            self._need_store().delete(style)
        self._forget(style)

    def save_blend(self, name: str, spec: str | Sequence[tuple[str, float]]) -> None:
        from styles import blend_store
        from styles.blend import BlendSpec

        with _style_errors():
            blend_store.save_blend(self._need_store(), name, spec if isinstance(spec, str) else BlendSpec(tuple(spec)))
        self._forget(name)

    def style_details(self, style: str) -> StyleDetails:
        store = self._need_store()
        with _style_errors():
            info = store.get(style)
            docs = [(d.sha256, d.path, int(d.n_tokens)) for d in store.documents(style)]
            skipped = [(k.path, k.reason) for k in store.skipped(style)]
        return StyleDetails(info.name, docs, skipped, dict(info.ngrams))

    def remove_document(self, style: str, sha256: str) -> None:
        with _style_errors():
            self._need_store().remove_document(style, sha256)
        self._forget(style)

    def export_style(self, style: str, file: Path) -> Path:
        from styles.store import StyleError

        try:
            return self._need_store().export(style, file)
        except (StyleError, OSError) as exc:
            raise UserFacingError(f"Cannot export “{style}”: {exc}") from exc

    def import_style_file(self, file: Path) -> str:
        from styles.store import StyleError

        try:
            return self._need_store().import_file(file)
        except (StyleError, OSError) as exc:
            raise UserFacingError(str(exc)) from exc

    def _forget(self, style: str) -> None:
        self._priors = {k: v for k, v in self._priors.items() if k[0] != style}

    def prior(self, style: str) -> Any:
        """The prior of a style, saved blend or blend `NAME:W,NAME:W` for the loaded model, built once and cached."""
        from styles import blend_store
        from styles.errors import check_tokenizer
        lm = self._need_model("steer")
        store = self._need_store()
        with _style_errors():
            blend = blend_store.resolve(store, style)
            if blend is not None:
                return self._blend_prior(lm, *blend)
            info = store.get(style)
        key = (info.name, lm.fingerprint, info.updated_at)
        if key not in self._priors:
            with _style_errors():
                check_tokenizer(info.name, info.tokenizer_fingerprint, lm.fingerprint, model=lm.name)
            self._forget(info.name)
            self._priors[key] = store.load_prior(info.name, device=str(lm.device))
        return self._priors[key]

    def _blend_prior(self, lm: Any, name: str, spec: Any) -> Any:
        """A blend's prior, cached until its weights or one of its styles change (inside _style_errors)."""
        from styles import blend_store

        store = self._need_store()
        stamps = [store.get(part).updated_at for part in spec.names]
        key = (name, lm.fingerprint, repr((spec.parts, stamps)))
        if key not in self._priors:
            prior = blend_store.load_blend_prior(store, name, spec, device=str(lm.device), fingerprint=lm.fingerprint,
                                                 model=lm.name)
            self._forget(name)
            self._priors[key] = prior
        return self._priors[key]

    def _single_style(self, style: str, what: str) -> None:
        """Tune λ and the sweep measure one style against its held-out documents: not a blend."""
        from styles import blend_store

        with _style_errors():
            blend = blend_store.resolve(self._need_store(), style)
        if blend is not None:
            raise UserFacingError(f"{what} measures one style at a time, and “{blend[0]}” is a blend: "
                                  f"run it for each of its styles, or steer with the blend at a λ you choose.")

    # --- generation -------------------------------------------------------------------------
    def _processor_for(self, steer: SteerParams) -> Any:
        from engine.steering import StyleSteeringProcessor

        if not steer.style:
            self._processor = None
            return None
        try:
            proc = StyleSteeringProcessor(self.prior(steer.style), lam=steer.lam, mode=steer.mode,
                                          budget_bits=steer.budget_bits)
        except ValueError as exc:
            raise UserFacingError(str(exc)) from exc
        self._processor = proc
        return proc

    def assemble_context(self, text: str, max_new_tokens: int, memory: str = "", authors_note: str = "",
                         note_depth: int = DEFAULT_NOTE_DEPTH, context_limit: int = 0) -> Any:
        from engine.context import ContextError, assemble_for_model

        lm = self._need_model("generate")
        try:
            return assemble_for_model(lm, text, len(text), max_new_tokens, memory=memory, authors_note=authors_note,
                                      note_depth=note_depth, context_limit=context_limit)
        except ContextError as exc:
            raise UserFacingError(_capital(str(exc))) from exc

    def count_tokens(self, text: str, cancel: threading.Event) -> Any:
        """The document's engine.token_count.TokenCount with the loaded tokenizer; None before a model is loaded."""
        from engine.token_count import DocumentTokenCounter

        if self.lm is None:
            return None
        if self._counter is None or self._counter.tokenizer is not self.lm.tokenizer:
            self._counter = DocumentTokenCounter(self.lm.tokenizer)
        result = self._counter.count(text, cancel)
        if result is None:
            raise Cancelled()
        return result

    def generate(self, prompt: str, sampling: SamplingConfig, steer: SteerParams,
                 cancel: threading.Event) -> Any:
        from engine.decode import stream

        lm = self._need_model("generate")
        proc = self._processor_for(steer)
        try:
            return stream(lm, prompt, sampling, proc, cancel, prefix=self._prefix_cache())
        except ValueError as exc:  # PromptError and sampling validation: the user's to fix
            raise UserFacingError(_capital(str(exc))) from exc

    def compare(self, prompt: str, sampling: SamplingConfig, steer: SteerParams,
                cancel: threading.Event) -> Any:
        from engine.decode import compare_stream

        lm = self._need_model("compare")
        if not steer.style:
            raise UserFacingError("Choose a style to compare against.")
        proc = self._processor_for(steer)
        try:
            return compare_stream(lm, prompt, sampling, proc, cancel, prefix=self._prefix_cache())
        except ValueError as exc:
            raise UserFacingError(_capital(str(exc))) from exc

    def _prefix_cache(self) -> Any:
        """One PrefixCache per loaded model: re-generating at the same place prefills only what is new."""
        from engine.kvcache import PrefixCache

        if self._prefix is None:
            self._prefix = PrefixCache()
        return self._prefix

    def check_style(self, style: str, text: str, *, cancel: threading.Event) -> Any:
        """Score `text` against the style (engine.stylecheck.check_text)."""
        from engine.stylecheck import check_text

        lm = self._need_model("check a style")
        prior = self.prior(style)
        result = check_text(lm, prior, text, cancel=cancel.is_set)
        if cancel.is_set():
            raise Cancelled()
        return result

    def set_lam(self, lam: float) -> None:
        proc = self._processor  # read once: the worker may swap it
        if proc is not None:
            proc.lam = max(0.0, min(1.0, float(lam)))

    def sweep(self, style: str, params: SweepParams, *, progress: ProgressFn,
              cancel: threading.Event) -> str:
        return _run_sweep(self, style, params, progress, cancel)

    def tune(self, style: str, params: TuneParams, *, progress: ProgressFn,
             cancel: threading.Event) -> Any:
        from engine import sweep

        lm = self._need_model("tune λ")
        self._single_style(style, "Tune λ")
        self.prior(style)  # a clear message for a missing or mismatched style
        try:
            return sweep.tune(lm, self._need_store(), style, mode=params.mode, margin=params.margin,
                              n_prompts=params.n_prompts, max_new_tokens=params.max_new_tokens,
                              progress=lambda done, total: progress(done, total, ""), cancel=cancel)
        except (ValueError, TypeError) as exc:
            raise UserFacingError(f"Cannot tune λ: {exc}") from exc


def _sweep_summary(outcome: Any, out_dir: Path, plots: list[Path]) -> str:
    state = "Cancelled; the rows done so far are kept" if outcome.cancelled else "Finished"
    return (f"{state}: {outcome.done} rows decoded, {outcome.skipped} already there, of {outcome.total}, "
            f"in {outcome.seconds:.0f} s. Results, {len(plots)} figure(s) and report.md are in {out_dir}.")


def _run_sweep(backend_self: RealBackend, style: str, params: SweepParams, progress: ProgressFn,
               cancel: threading.Event) -> str:
    from engine import sweep
    from engine.plots import plot_dir, write_report

    lm = backend_self._need_model("run a sweep")
    backend_self._single_style(style, "The sweep")
    backend_self.prior(style)  # a clear message for a missing or mismatched style
    try:
        lams = sweep.parse_lams(params.lams) if params.lams.strip() else list(sweep.PAPER_LAMS)
        modes = list(params.modes) or ["paper"]
        tokens = params.max_new_tokens
        out_dir = Path(params.out_dir).expanduser()
        steer, held = sweep.split_priors(backend_self._need_store(), style, lm, lm.device)
        engine_backend = sweep.EngineBackend(lm, steer, held, sweep.sampling_config(tokens, params.sample),
                                             budget_bits=params.budget_bits)
        config = {"style": style, "model": lm.name, "max_new_tokens": tokens,
                  "sample": params.sample, "budget_bits": params.budget_bits}
        outcome = sweep.run_sweep(engine_backend, out_dir, prompts=sweep.default_prompts(), lams=lams,
                                  modes=modes, config=config, prompt_baseline=params.prompt_baseline,
                                  max_new_tokens=tokens, progress=lambda d, t: progress(d, t, ""),
                                  cancel=cancel)
    except (ValueError, OSError) as exc:  # SweepConfigError is a ValueError
        raise UserFacingError(f"Cannot run the sweep: {exc}") from exc
    plots: list[Path] = []
    if outcome.summary:
        plots = plot_dir(out_dir)
        write_report(out_dir, plots=plots)
    return _sweep_summary(outcome, out_dir, plots)


@contextlib.contextmanager
def _style_errors() -> Iterator[None]:
    """Style-library errors are the user's to act on: one line, never a traceback."""
    from styles.errors import StyleError

    try:
        yield
    except StyleError as exc:
        raise UserFacingError(str(exc)) from exc


def _capital(s: str) -> str:
    return s[:1].upper() + s[1:]
