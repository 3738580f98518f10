"""The weights' precision in the model dialog: the choices, the memory they take, the load, the settings."""

from __future__ import annotations

import threading

import pytest
from PySide6.QtCore import Qt

from app.gui import model_dialog
from app.gui.main_window import MainWindow
from app.gui.model_dialog import ModelChoice, ModelDialog
from app.gui.settings import Settings
from engine.weight_estimate import ParamCounts

COUNTS = {"demo": ParamCounts(linear=100 * 2**20, linear_rows=2**20, other=30 * 2**20),
          "/models/big": ParamCounts(linear=1000 * 2**20, linear_rows=2**20, other=300 * 2**20)}


@pytest.fixture
def counts(monkeypatch) -> dict[str, ParamCounts]:
    """Parameter counts per model without reading any file (the estimate itself is tested in engine)."""
    import engine.weight_estimate

    monkeypatch.setattr(engine.weight_estimate, "param_counts", lambda spec: COUNTS.get(spec))
    monkeypatch.setattr(model_dialog, "bf16_supported", lambda: True)
    return COUNTS


def _dialog(qtbot, choice: ModelChoice) -> ModelDialog:
    dlg = ModelDialog(choice)
    qtbot.addWidget(dlg)
    return dlg


def test_the_combo_lists_the_precisions(qtbot, counts) -> None:
    dlg = _dialog(qtbot, ModelChoice("demo", "cpu", "none"))
    assert [dlg.precision.itemData(i) for i in range(dlg.precision.count())] == ["auto", "fp32", "bf16", "int8"]
    assert dlg.precision.isEnabled() and dlg.choice().precision == "fp32"
    dlg.precision.setCurrentIndex(dlg.precision.findData("int8"))
    assert dlg.choice() == ModelChoice("demo", "cpu", "none", "int8")
    assert dlg.choice().precision_arg == "int8"
    dlg.set_choice(ModelChoice("demo", "cpu", "none", "bf16"))
    assert dlg.choice().precision == "bf16"


def test_the_memory_follows_the_precision_and_the_model(qtbot, counts) -> None:
    dlg = _dialog(qtbot, ModelChoice("demo", "cpu", "none"))
    assert dlg.memory.text() == "about 520.0 MiB of weights (fp32)"  # 130 Mi parameters × 4 bytes
    dlg.precision.setCurrentIndex(dlg.precision.findData("bf16"))
    assert dlg.memory.text() == "about 260.0 MiB of weights (bf16)"
    dlg.precision.setCurrentIndex(dlg.precision.findData("int8"))
    assert dlg.memory.text() == "about 222.0 MiB of weights (int8)"  # 100 + 2 (scales) + 30 × 4
    dlg.precision.setCurrentIndex(dlg.precision.findData("auto"))
    assert "222.0 MiB to 520.0 MiB" in dlg.memory.text() and "measures" in dlg.memory.text()
    dlg.precision.setCurrentIndex(dlg.precision.findData("fp32"))
    qtbot.keyClicks(dlg.path, "/models/big")
    dlg.path.editingFinished.emit()
    assert dlg.memory.text() == "about 5.1 GiB of weights (fp32)"
    dlg.tiny.setChecked(True)  # not downloaded: no headers to read
    assert "unknown" in dlg.memory.text()
    dlg.demo.setChecked(True)
    assert dlg.memory.text() == "about 520.0 MiB of weights (fp32)"


def test_on_a_gpu_or_quantized_the_precision_does_not_apply(qtbot, counts) -> None:
    dlg = _dialog(qtbot, ModelChoice("demo", "cpu", "none", "int8"))
    dlg.device.setCurrentIndex(dlg.device.findData("cuda"))
    assert not dlg.precision.isEnabled() and "device's own dtype" in dlg.precision.toolTip()
    assert dlg.memory.text() == "about 260.0 MiB of weights (the device's 16-bit dtype)"
    assert dlg.choice().precision_arg is None  # remembered, but not sent to a GPU load
    dlg.device.setCurrentIndex(dlg.device.findData("cpu"))
    dlg.quant.setCurrentIndex(dlg.quant.findData("4bit"))
    assert not dlg.precision.isEnabled() and dlg.choice().precision_arg is None
    dlg.quant.setCurrentIndex(dlg.quant.findData("none"))
    assert dlg.precision.isEnabled() and dlg.choice().precision_arg == "int8"


def test_bf16_is_disabled_where_the_cpu_lacks_it(qtbot, counts, monkeypatch) -> None:
    monkeypatch.setattr(model_dialog, "bf16_supported", lambda: False)
    dlg = _dialog(qtbot, ModelChoice("demo", "cpu", "none", "bf16"))
    i = dlg.precision.findData("bf16")
    assert not dlg.precision.model().item(i).isEnabled()
    assert "AVX-512-BF16" in dlg.precision.itemData(i, Qt.ItemDataRole.ToolTipRole)
    assert dlg.choice().precision == "fp32"  # a remembered bf16 falls back where it cannot run
    assert dlg.precision.model().item(dlg.precision.findData("int8")).isEnabled()
    assert ModelChoice("demo", "cpu", "none", "bf16").precision_arg == "fp32"  # what a start-up load sends


def test_the_capability_check_is_the_engines(monkeypatch) -> None:
    from engine import precision

    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: False)
    assert model_dialog.bf16_supported() is False
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda: True)
    assert model_dialog.bf16_supported() is True


def test_the_choice_reaches_the_load_and_is_remembered(qtbot, fake_backend, counts) -> None:
    win = MainWindow(fake_backend, interactive=False)
    qtbot.addWidget(win)
    qtbot.waitUntil(lambda: win.worker.model is not None, timeout=5000)
    win.load_model(ModelChoice("demo", "cpu", "none", "int8"))
    qtbot.waitUntil(lambda: win.worker.model.precision == "int8", timeout=5000)
    assert fake_backend.load_precisions[-1] == "int8"
    qtbot.waitUntil(lambda: "cpu · int8" in win.model_label.text(), timeout=5000)
    assert Settings().precision() == "int8"
    win.close()
    again = MainWindow(fake_backend, interactive=False)
    qtbot.addWidget(again)
    qtbot.waitUntil(lambda: again.worker.model is not None, timeout=5000)
    assert fake_backend.load_precisions[-1] == "int8"  # the next start loads it the same way
    assert again.model_choice() == ModelChoice("demo", "cpu", "none", "int8")
    dlg = ModelDialog(again.model_choice(), again)
    qtbot.addWidget(dlg)
    assert dlg.precision.currentData() == "int8"
    again.close()


def test_a_gpu_load_gets_no_precision(qtbot, fake_backend, counts) -> None:
    win = MainWindow(fake_backend, interactive=False)
    qtbot.addWidget(win)
    qtbot.waitUntil(lambda: win.worker.model is not None, timeout=5000)
    win.load_model(ModelChoice("demo", "cuda", "none", "int8"))
    qtbot.waitUntil(lambda: win.worker.model.device == "cuda", timeout=5000)
    assert fake_backend.load_precisions[-1] is None
    assert "int8" not in win.model_label.text()
    win.close()


def test_a_settings_value_from_elsewhere_falls_back_to_fp32() -> None:
    s = Settings()
    s.set_precision("fp4")
    assert s.precision() == "fp32"


def test_the_real_backend_loads_the_demo_in_int8(tmp_path) -> None:
    from app.jobs.backend import UserFacingError
    from app.jobs.real_backend import RealBackend

    backend = RealBackend(tmp_path / "styles.db")
    stages: list[str] = []
    try:
        info = backend.load_model("demo", device="cpu", quantize=None, precision="int8",
                                  progress=lambda _d, _t, text="", **_k: stages.append(text),
                                  cancel=threading.Event(), notify=lambda _line: None)
    except UserFacingError as exc:
        pytest.skip(str(exc))
    assert info.precision == "int8" and " · cpu · int8 · " in info.status_text()
    assert "converting the weights to int8" in stages
    from engine.weight_estimate import estimated_weight_bytes

    estimate = estimated_weight_bytes("demo", "int8")
    assert estimate is not None and abs(info.memory_bytes - estimate) < 4096


def test_auto_says_it_measures_on_the_first_load_only(tmp_path, monkeypatch) -> None:
    from app.jobs.backend import UserFacingError
    from app.jobs.real_backend import RealBackend
    from engine import precision as prec

    measured: list[int] = []

    def quick_measure(_model, _prompts, _tokens, precisions):  # int8 "measured" fastest, at fp32's quality
        measured.append(1)
        return {p: {"agreement": 1.0, "tps": 100.0 if p == "int8" else 10.0} for p in ["fp32", *precisions]}

    monkeypatch.setattr(prec, "measure", quick_measure)
    monkeypatch.setattr(prec, "cpu_precisions", lambda: ["fp32", "int8"])
    backend = RealBackend(tmp_path / "styles.db")

    def load() -> tuple[list[str], str]:
        stages: list[str] = []
        info = backend.load_model("demo", device="cpu", quantize=None, precision="auto",
                                  progress=lambda _d, _t, text="", **_k: stages.append(text),
                                  cancel=threading.Event(), notify=lambda _line: None)
        return stages, info.status_text()

    try:
        first, text = load()
    except UserFacingError as exc:
        pytest.skip(str(exc))
    assert "measuring which precision is fastest here (once for this model)" in first
    assert " · cpu · int8 · " in text and measured == [1]
    again, text = load()
    assert not any("measuring" in s for s in again) and " · cpu · int8 · " in text and measured == [1]
