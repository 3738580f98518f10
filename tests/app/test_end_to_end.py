"""The real app on the bundled model: import a corpus, generate steered text, accept, undo, compare.

The GUI heartbeat runs throughout: the GUI thread must never stall for 50 ms or more.
"""

from __future__ import annotations

import time

import pytest
from PySide6.QtCore import Qt

from tests.app.heartbeat import Heartbeat
from tests.conftest import bpe_build_ms

pytestmark = [pytest.mark.model, pytest.mark.corpora]

MAX_STALL_MS = 50.0


def test_real_app_end_to_end(qtbot, corpora_dir) -> None:
    from app.gui.main_window import MainWindow
    from app.gui.startup import preload_engine

    t0 = time.perf_counter()
    preload_engine(None)  # as run_gui does before the window exists
    beat = Heartbeat()
    stalls: dict[str, float] = {}
    times: list[str] = []
    mark = [time.perf_counter()]

    def phase(name: str) -> None:
        now = time.perf_counter()
        times.append(f"{name} {now - mark[0]:.1f} s")
        mark[0] = now

    phase("preload")

    win = MainWindow(interactive=False, autoload=False)  # the real backend
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: not win.worker.busy, timeout=10_000)
    qtbot.wait(100)
    beat.start()
    win.load_model(win.model_choice())  # the demo model unless told otherwise
    qtbot.waitUntil(lambda: win.worker.model is not None or bool(win.errors), timeout=120_000)
    stalls["model load"] = beat.stop()
    phase(f"model load ({beat.worst(3)})")
    assert not win.errors, win.errors
    assert "demo" in win.model_label.text() and "cpu" in win.model_label.text()

    # Import a corpus as a style, through the panel.
    beat.start()
    with qtbot.waitSignal(win.styles.reportReady, timeout=120_000) as blocker:
        win.styles.start_import([corpora_dir / "sherlock_holmes.txt"], style="sherlock")
    qtbot.waitUntil(lambda: win.styles.style_names() == ["sherlock"], timeout=10_000)
    stalls["import"] = beat.stop()
    phase(f"import ({beat.worst(3)})")
    report = blocker.args[0]
    assert report.tokens > 50_000 and len(report.imported) == 1
    assert win.styles.active() == "sherlock"

    # Generate a steered continuation into the editor, accept it, undo it.
    win.controls.set_lam(0.3)
    win.controls.max_tokens.setValue(24)
    win.editor.setFocus()
    qtbot.keyClicks(win.editor, "I had called upon my friend")
    # The status bar counts the text's tokens with the model's own tokenizer, exactly.
    tokenizer = win.worker.backend.lm.tokenizer
    n = len(tokenizer("I had called upon my friend", add_special_tokens=False)["input_ids"])
    qtbot.waitUntil(lambda: win.token_label.text() == f"{n} tokens", timeout=10_000)
    beat.start()
    with qtbot.waitSignal(win.generationFinished, timeout=120_000) as gen:
        qtbot.keyClick(win.editor, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    stalls["generate"] = beat.stop()
    phase(f"generate ({beat.worst(3)})")
    summary = gen.args[0]
    assert summary.token_ids and summary.metrics["style_ppl"] is not None
    tokens = win.editor.tokens()
    assert len(tokens) == len(summary.token_ids)
    assert any(t.step.js_bits > 0 for t in tokens)  # steering moved the distribution
    ghost = win.editor.ghost_text()
    assert ghost == summary.text
    assert win.editor.text() == "I had called upon my friend"
    qtbot.keyClick(win.editor, Qt.Key.Key_Tab)
    assert win.editor.text() == "I had called upon my friend" + ghost
    win.undo_action.trigger()
    assert win.editor.text() == "I had called upon my friend"

    # The compare view, streaming both sides, with its metrics filled.
    win.open_compare()
    view = win.compare_view
    beat.start()
    view.run_button.click()
    qtbot.waitUntil(lambda: view.summaries is not None or bool(win.errors), timeout=120_000)
    stalls["compare"] = beat.stop()
    phase(f"compare ({beat.worst(3)})")
    assert not win.errors, win.errors
    assert view.n_pairs > 0 and view.baseline_text and view.steered_text
    for metric in ("style_ppl", "base_ppl", "js_mean_bits", "unigram_overlap", "bigram_seen", "distinct_2"):
        assert view.metric_text(metric, 1) not in ("", "–"), metric
    assert float(view.metric_text("js_mean_bits", 1)) > 0
    assert float(view.metric_text("js_mean_bits", 0)) == 0

    win.close()
    print(f"\nend to end in {time.perf_counter() - t0:.1f} s: " + "; ".join(times))
    print("max GUI stall (ms): " + ", ".join(f"{k} {v:.1f}" for k, v in stalls.items()))
    # Loading runs one call into the tokenizers library that holds the GIL and cannot be split
    # (building the BPE model): its bound is set against that call, timed on this machine.
    bounds = dict.fromkeys(stalls, MAX_STALL_MS)
    bounds["model load"] = max(MAX_STALL_MS, 1.5 * bpe_build_ms(win.worker.model.source) + 30)
    for phase_name, stall in stalls.items():
        assert stall < bounds[phase_name], f"the GUI stalled {stall:.1f} ms during {phase_name}"


def test_real_sweep_and_tune_jobs(qtbot, corpora_dir, tmp_path) -> None:
    """The worker's sweep and tune jobs on the bundled model: files and figures written, λ proposed."""
    from app.jobs.backend import ImportReport, SweepParams, TuneParams
    from app.jobs.real_backend import RealBackend
    from app.jobs.worker import Worker

    w = Worker(RealBackend())
    out: dict = {}

    def wait(key: str, timeout: int = 300_000) -> object:
        qtbot.waitUntil(lambda: key in out or "error" in out, timeout=timeout)
        assert "error" not in out, out["error"].message
        return out.pop(key)

    try:
        w.load_model("demo", on_done=lambda m: out.setdefault("model", m),
                     on_error=lambda e: out.setdefault("error", e))
        wait("model")
        w.import_paths("sherlock", [corpora_dir / "sherlock_holmes.txt"], on_done=lambda r: out.setdefault("imp", r),
                       on_error=lambda e: out.setdefault("error", e))
        assert isinstance(wait("imp"), ImportReport)
        params = SweepParams(out_dir=tmp_path / "sweep", modes=("dense",), lams="0, 0.3", max_new_tokens=3)
        w.sweep("sherlock", params, on_done=lambda r: out.setdefault("sweep", r),
                on_error=lambda e: out.setdefault("error", e))
        text = wait("sweep")
        assert "Finished" in text
        assert (tmp_path / "sweep" / "summary.csv").exists() and list((tmp_path / "sweep").glob("*.png"))
        w.tune("sherlock", TuneParams(mode="dense", n_prompts=1, max_new_tokens=3),
               on_done=lambda r: out.setdefault("tune", r), on_error=lambda e: out.setdefault("error", e))
        result = wait("tune")
        assert result.style == "sherlock" and result.rows
    finally:
        w.shutdown()
