"""Starting the app: imports behind a splash screen, the window, recovery, errors that reach the user."""

from __future__ import annotations

import gc
import os
import sys
import traceback
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QApplication

from app.gui import resources
from app.gui.main_window import MainWindow
from app.gui.settings import init_application_names


def _install_excepthook(window_ref: list[MainWindow]) -> None:
    """An exception in a slot is never silent: it reaches the user with its traceback."""
    previous = sys.excepthook

    def hook(exc_type, exc, tb) -> None:
        text = "".join(traceback.format_exception(exc_type, exc, tb))
        previous(exc_type, exc, tb)
        if window_ref:
            window_ref[0].show_error(f"Unexpected error: {exc_type.__name__}: {exc}", text,
                                     "StyleSteer: unexpected error")

    sys.excepthook = hook


def preload_engine(app: QApplication | None = None) -> None:
    """Import torch and transformers before the event loop runs, behind a splash screen.

    Importing them later on the worker thread would hold the GIL for long stretches
    (C extensions load without releasing it) and freeze the window for seconds.
    """
    splash = None
    if app is not None:
        from PySide6.QtWidgets import QSplashScreen

        pix = QPixmap.fromImage(resources.render_svg(resources.read_bytes("stylesteer.svg"), 256))
        splash = QSplashScreen(pix)
        splash.showMessage("Starting StyleSteer…", Qt.AlignmentFlag.AlignBottom | Qt.AlignmentFlag.AlignHCenter)
        splash.show()
        app.processEvents()
    import torch  # noqa: F401
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: F401

    import engine.decode
    import engine.metrics
    import engine.models
    import engine.steering  # noqa: F401
    import styles.importer
    import styles.prior
    import styles.store  # noqa: F401

    try:  # the architectures the bundled and default models use
        import transformers.models.llama.modeling_llama  # noqa: F401
    except ImportError:
        pass
    # torch and transformers leave ~350k long-lived objects; a full cyclic collection over them
    # takes 100-300 ms with the GIL held, on whichever thread triggers it. Freezing moves them out
    # of the collector's sight, so later collections stay short.
    gc.freeze()
    if splash is not None:
        splash.close()


def run_gui(model: str | None = None, document: Path | None = None) -> int:
    """Open the app (`stylesteer` with no arguments); `model` overrides the remembered one; `document` is opened
    once the window is up (after any offer of unsaved text to recover)."""
    init_application_names()
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setWindowIcon(resources.app_icon())
    app.setDesktopFileName("stylesteer")
    ref: list[MainWindow] = []
    _install_excepthook(ref)
    preload_engine(app)
    window = MainWindow(model=model)
    ref.append(window)
    window.show()
    if os.environ.get("STYLESTEER_STARTUP_LOG"):  # the packaged build's smoke test times these lines
        print("stylesteer: window shown", file=sys.stderr, flush=True)
        window.worker.modelLoaded.connect(
            lambda info: print(f"stylesteer: model ready: {info.name}", file=sys.stderr, flush=True))
    QTimer.singleShot(0, window.doc.check_recovery)
    if document is not None:
        QTimer.singleShot(0, lambda: window.open_path(document))
    code = app.exec()
    if window.worker.stuck:
        # A job (e.g. a model download) outlived the window; nothing is unsaved, so leave now.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code
