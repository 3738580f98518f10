"""The banned phrases and bias editor, its saved list, and the inspector's flag."""

from __future__ import annotations

from PySide6.QtWidgets import QDoubleSpinBox

from app.gui.editor import TokenRef
from app.gui.inspector import Inspector
from app.gui.phrase_dialog import PhraseRulesDialog
from app.gui.settings import Settings
from engine.phrase_rules import PhraseRules
from engine.types import TokenStep


def _step(adjusted: bool) -> TokenStep:
    return TokenStep("steered", 0, 7, " down", 0.4, 0.5, 0.01, 0.3, adjusted=adjusted)


def test_inspector_shows_banned_or_biased_steps(qtbot):
    ins = Inspector()
    qtbot.addWidget(ins)
    ins.show_token(TokenRef(_step(True), 0, 5, True, 0, 0))
    assert ins.rules.text() == "banned/biased"
    ins.show_token(TokenRef(_step(False), 0, 5, True, 0, 1))
    assert ins.rules.text() == "–"


def test_dialog_refuses_an_empty_phrase_and_keeps_the_rows(qtbot):
    dlg = PhraseRulesDialog(PhraseRules(bans=("shivers down",), biases=((" suddenly", -5.0),)))
    qtbot.addWidget(dlg)
    assert dlg.bans.rowCount() == 1 and dlg.biases.rowCount() == 1
    dlg.add_ban("")
    dlg._try_accept()
    assert dlg.error.isVisibleTo(dlg) and "Banned phrase 2" in dlg.error.text() and "empty" in dlg.error.text()
    assert dlg.result_rules is None and dlg.bans.rowCount() == 2  # nothing typed is lost
    dlg.bans.selectRow(1)
    dlg._remove_selected(dlg.bans)
    spin = dlg.biases.cellWidget(0, 1)
    assert isinstance(spin, QDoubleSpinBox) and spin.minimum() == -100 and spin.maximum() == 100
    spin.setValue(-12.5)
    dlg.ignore_case.setChecked(True)
    dlg._try_accept()
    assert dlg.result_rules == PhraseRules(("shivers down",), ((" suddenly", -12.5),), ignore_case=True)


def test_menu_edits_the_global_list_and_generation_uses_it(qtbot, window):
    act = next(a for a in window.findChildren(type(window.generate_action)) if "Banned Phrases" in a.text())
    act.trigger()
    dlg = window.findChild(PhraseRulesDialog)
    assert dlg is not None and dlg.bans.rowCount() == 0
    dlg.add_ban("shivers down")
    dlg.add_bias(" suddenly", -5.0)
    dlg._try_accept()
    expected = PhraseRules(("shivers down",), ((" suddenly", -5.0),))
    assert window.controls.sampling().rules == expected
    assert Settings().phrase_rules() == expected  # kept for the next start
    seen = []
    backend_generate = window.worker.backend.generate

    def spy(prompt, sampling, steer, cancel):
        seen.append(sampling)
        return backend_generate(prompt, sampling, steer, cancel)

    window.worker.backend.generate = spy
    window.editor.setPlainText("It was a dark night")
    window.generate()
    qtbot.waitUntil(lambda: bool(seen), timeout=5000)
    assert seen[0].rules == expected
    window.discard_suggestion()


def test_an_unreadable_saved_list_reads_as_empty():
    s = Settings()
    s._set("phrases/rules", "{not json")
    assert s.phrase_rules() == PhraseRules()
    s._set("phrases/rules", '{"bans": [""]}')
    assert s.phrase_rules() == PhraseRules()
