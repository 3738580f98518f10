"""GUI test set-up: private QSettings, a fake engine, windows that close, no leftover threads."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings

from tests.fake_engine import FakeBackend, FakeOptions


@pytest.fixture(autouse=True)
def private_settings(tmp_path: Path) -> Iterator[Path]:
    """QSettings write into the test's tmp folder, never the user's real settings."""
    from app.gui.settings import init_application_names

    folder = tmp_path / "qsettings"
    folder.mkdir()
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(folder))
    init_application_names()
    yield folder


@pytest.fixture(autouse=True)
def no_leftover_threads() -> Iterator[None]:
    """Fail a test that leaves a worker thread running (windows must shut their worker down)."""
    from app.jobs.worker import running_threads

    before = set(map(id, running_threads()))
    yield
    leftover = [t for t in running_threads() if id(t) not in before]
    for t in leftover:  # stop them, so one failure does not cascade into the next tests
        t.quit()
        t.wait(5000)
    assert not leftover, f"{len(leftover)} worker thread(s) left running"


@pytest.fixture
def fake_options() -> FakeOptions:
    return FakeOptions(token_delay_s=0.003, load_delay_s=0.02, file_delay_s=0.002)


@pytest.fixture
def fake_backend(fake_options: FakeOptions) -> FakeBackend:
    return FakeBackend(fake_options)


@pytest.fixture
def window(qtbot, fake_backend: FakeBackend):
    """A main window over the fake engine with the model loaded."""
    from app.gui.main_window import MainWindow

    win = MainWindow(fake_backend, interactive=False)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: win.worker.model is not None, timeout=5000)
    yield win
    win.close()
    assert not win.worker.thread.isRunning()


@pytest.fixture
def corpus_files(tmp_path: Path) -> list[Path]:
    """Two small text files, one empty and one binary: the import skips two with reasons."""
    d = tmp_path / "corpus"
    d.mkdir()
    (d / "a.txt").write_text("It was a dark and stormy night; the rain fell in torrents.\n" * 20)
    (d / "b.md").write_text("# Chapter\n\nThe sea was calm and the ship rode easy at anchor.\n" * 10)
    (d / "empty.txt").write_text("")
    (d / "blob.bin").write_bytes(b"\x00\x01\x02" * 100)
    return sorted(d.iterdir())


def pytest_collection_modifyitems(config, items) -> None:
    # The offscreen platform warns that it cannot size or raise native windows; not our bug.
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).parent == here:
            item.add_marker(pytest.mark.qt_log_ignore("This plugin does not support"))
