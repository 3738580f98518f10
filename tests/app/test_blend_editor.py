"""The style panel's blend editor over the fake engine: weights, preview, use now, save, a missing part."""

from __future__ import annotations

import pytest

from app.gui.main_window import MainWindow
from app.jobs.backend import StyleInfo


@pytest.fixture
def two_styles(qtbot, window: MainWindow, fake_backend):
    for name in ("holmes", "bard"):
        fake_backend._styles[name] = StyleInfo(name, 1, 10, "fake-tokenizer", "fakefp")
    window.styles.refresh()
    qtbot.waitUntil(lambda: len(window.styles.blend_editor.weights_by_name()) == 2, timeout=5000)
    return window.styles


def test_blend_editor_previews_uses_and_saves(qtbot, window: MainWindow, fake_backend, two_styles) -> None:
    panel = two_styles
    editor = panel.blend_editor
    assert not editor.isVisible()
    panel.blend_button.click()
    assert editor.isVisible() and panel.blend_button.isChecked()
    assert not editor.use_button.isEnabled() and "at least one style" in editor.preview.text()
    editor.set_weight("holmes", 7)
    editor.set_weight("bard", 3)
    assert editor.preview.text() == "Blend: bard 30% + holmes 70%"  # normalised, by name
    editor.use_button.click()
    assert panel.active() == "bard:0.3,holmes:0.7"
    # Generating with it reaches the engine as the blend written out.
    window.editor.setPlainText("It was")
    window.generate()
    qtbot.waitUntil(lambda: window.editor.has_ghost() and not window.worker.busy, timeout=10000)
    assert window.steer_params().style == "bard:0.3,holmes:0.7"
    # Save it under a name: it is listed as a blend and can be used like a style.
    assert not editor.save_button.isEnabled()
    qtbot.keyClicks(editor.name_edit, "mix")
    editor.save_button.click()
    qtbot.waitUntil(lambda: "mix" in panel.style_names(), timeout=5000)
    info = next(s for s in panel.styles() if s.name == "mix")
    assert info.is_blend and info.blend == (("bard", pytest.approx(0.3)), ("holmes", pytest.approx(0.7)))
    assert editor.weights_by_name().keys() == {"holmes", "bard"}  # blends are not offered as parts
    panel.select("mix")
    panel.use_selected()
    assert panel.active() == "mix"
    row = panel.style_names().index("mix")
    assert panel.table.item(row, 3).text() == "blend" and "holmes 70%" in panel.table.item(row, 0).toolTip()


def test_an_active_blend_goes_when_its_style_is_deleted(qtbot, window: MainWindow, two_styles) -> None:
    panel = two_styles
    panel.blend_editor.set_weight("holmes", 1)
    panel.blend_editor.set_weight("bard", 1)
    panel.blend_editor.use()
    assert panel.active() == "bard:0.5,holmes:0.5"
    panel.refresh()  # still valid: stays active
    qtbot.wait(200)
    assert panel.active() == "bard:0.5,holmes:0.5"
    panel.select("bard")
    panel.delete_selected(confirm=True)
    qtbot.waitUntil(lambda: panel.active() is None, timeout=5000)


def test_saving_a_blend_under_a_styles_name_is_refused(qtbot, window: MainWindow, two_styles) -> None:
    panel = two_styles
    messages: list[str] = []
    panel.message.connect(messages.append)
    panel.blend_editor.set_weight("holmes", 1)
    panel.blend_editor.name_edit.setText("bard")
    panel.blend_editor.save_button.click()
    qtbot.waitUntil(lambda: any("already exists" in m for m in messages), timeout=5000)
    assert not any(s.is_blend for s in panel.styles())


def test_a_blend_in_use_is_remembered(qtbot, window: MainWindow, fake_backend, two_styles) -> None:
    two_styles.blend_editor.set_weight("holmes", 2)
    two_styles.blend_editor.set_weight("bard", 2)
    two_styles.blend_editor.use()
    window.close()
    again = MainWindow(fake_backend, interactive=False)
    qtbot.addWidget(again)
    qtbot.waitUntil(lambda: again.styles.active() == "bard:0.5,holmes:0.5", timeout=5000)
    again.close()
