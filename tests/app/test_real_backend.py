"""The real backend's style library paths (SQLite on the worker thread), with a tiny tokenizer, no model."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from app.jobs.backend import ImportReport
from app.jobs.real_backend import RealBackend
from app.jobs.worker import JobError, Worker
from styles.tokenizers import tokenizer_fingerprint
from tests.styles.tiny_tokenizer import TinyTokenizer


@pytest.fixture
def worker(qtbot, tmp_path):
    backend = RealBackend(tmp_path / "styles.db")
    tok = TinyTokenizer()
    # Stands in for a LoadedModel: the style library only needs its tokenizer and fingerprint.
    backend.lm = SimpleNamespace(tokenizer=tok, fingerprint=tokenizer_fingerprint(tok), name="tiny")
    w = Worker(backend)
    yield w
    w.shutdown()


def run(qtbot, submit, *args, **kwargs):
    """Submit a job and wait: (result, error)."""
    out: dict = {}
    submit(*args, on_done=lambda r: out.setdefault("done", r), on_error=lambda e: out.setdefault("error", e),
           on_cancelled=lambda: out.setdefault("cancelled", True), **kwargs)
    qtbot.waitUntil(lambda: bool(out), timeout=20000)
    return out.get("done"), out.get("error")


def test_style_library_round_trip(qtbot, worker: Worker, corpus_files: list[Path], tmp_path: Path) -> None:
    report, err = run(qtbot, worker.import_paths, "stormy", corpus_files)
    assert err is None and isinstance(report, ImportReport)
    assert len(report.imported) == 2 and report.tokens > 1000
    reasons = {Path(p).name: why for p, why in report.skipped}
    assert set(reasons) == {"empty.txt", "blob.bin"} and all(reasons.values())

    styles, _ = run(qtbot, worker.list_styles)
    assert [(s.name, s.documents, s.compatible) for s in styles] == [("stormy", 2, True)]

    details, _ = run(qtbot, worker.style_details, "stormy")
    assert len(details.documents) == 2 and set(details.ngrams) == {1, 2, 3}
    sha = details.documents[0][0]
    _, err = run(qtbot, worker.remove_document, "stormy", sha)
    assert err is None
    details, _ = run(qtbot, worker.style_details, "stormy")
    assert len(details.documents) == 1

    _, err = run(qtbot, worker.rebuild_style, "stormy")
    assert err is None
    _, err = run(qtbot, worker.rename_style, "stormy", "gothic")
    assert err is None
    out = tmp_path / "gothic.stylesteer"
    _path, err = run(qtbot, worker.export_style, "gothic", out)
    assert err is None and out.exists()
    _, err = run(qtbot, worker.delete_style, "gothic")
    assert err is None
    name, err = run(qtbot, worker.import_style_file, out)
    assert err is None and name == "gothic"
    styles, _ = run(qtbot, worker.list_styles)
    assert [s.name for s in styles] == ["gothic"]


def test_library_errors_are_one_clear_line(qtbot, worker: Worker, tmp_path: Path) -> None:
    _, err = run(qtbot, worker.rename_style, "nope", "other")
    assert isinstance(err, JobError) and err.user and "nope" in err.message
    bad = tmp_path / "bad.stylesteer"
    bad.write_text("not a style")
    _, err = run(qtbot, worker.import_style_file, bad)
    assert err.user and "not" in err.message and "\n" not in err.message
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    _, err = run(qtbot, worker.import_paths, "blank", [empty])
    assert err.user and "empty.txt" in err.message


def test_import_can_be_cancelled_and_leaves_the_store_unchanged(qtbot, worker: Worker, tmp_path: Path) -> None:
    d = tmp_path / "many"
    d.mkdir()
    for i in range(40):
        (d / f"{i}.txt").write_text(f"line {i} of some text to count\n" * 2000)
    out: dict = {}
    job = worker.import_paths("many", [d], on_progress=lambda *a: out.setdefault("progress", a),
                              on_done=lambda r: out.setdefault("done", r),
                              on_cancelled=lambda: out.setdefault("cancelled", True),
                              on_error=lambda e: out.setdefault("error", e))
    qtbot.waitUntil(lambda: "progress" in out, timeout=20000)
    worker.cancel(job)
    qtbot.waitUntil(lambda: len(out) > 1, timeout=20000)
    if "done" in out:
        pytest.skip("the import finished before the cancel arrived")
    assert out.get("cancelled")
    styles, _ = run(qtbot, worker.list_styles)
    assert styles == []


def test_generation_without_a_model_says_so(qtbot, tmp_path: Path) -> None:
    from app.jobs.backend import SteerParams
    from engine.types import SamplingConfig

    w = Worker(RealBackend(tmp_path / "s.db"))
    try:
        _, err = run(qtbot, w.generate, "Hello", SamplingConfig(), SteerParams(None))
        assert err.user and "Load a model" in err.message
    finally:
        w.shutdown()


def test_the_context_job_puts_memory_first_and_refuses_one_too_long(qtbot, worker: Worker) -> None:
    from tests.fake_engine import WordTokenizer

    worker.backend.lm = SimpleNamespace(tokenizer=WordTokenizer(), context_length=60, name="tiny")
    ctx, err = run(qtbot, worker.assemble_context, "One.\n\nTwo.\n\nThree", 10, "Memory here.", "[Note]", 1)
    assert err is None and ctx.prompt == "Memory here.\n\nOne.\n\nTwo.\n\n[Note]\n\nThree"
    _, err = run(qtbot, worker.assemble_context, "Text.", 10, "word " * 40, "", 1)
    assert err.user and err.message.startswith("Memory is too long") and "over the 50-token budget" in err.message
