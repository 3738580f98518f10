"""Choose the model: TinyLlama, a local folder or the bundled demo; the device; 8/4-bit quantization."""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from engine.types import QUANTIZE_CHOICES

TINYLLAMA = "TinyLlama/TinyLlama-1.1B-Chat-v1.0"
DEMO = "demo"
DEVICES = (("Automatic (GPU if present)", "auto"), ("CPU", "cpu"), ("CUDA GPU", "cuda"), ("Apple MPS", "mps"))
QUANTS = (("None (full precision)", "none"),
          *((f"{q[:-3]}-bit (CUDA only)", q) for q in QUANTIZE_CHOICES))


@dataclass(frozen=True)
class ModelChoice:
    spec: str  # "demo", a hub id or a folder
    device: str  # "auto" | "cpu" | "cuda" | "mps"
    quantize: str  # "none" | "8bit" | "4bit"

    @property
    def device_arg(self) -> str | None:
        return None if self.device == "auto" else self.device

    @property
    def quantize_arg(self) -> str | None:
        return None if self.quantize == "none" else self.quantize


class ModelDialog(QDialog):
    def __init__(self, current: ModelChoice, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Choose model")
        self.setAccessibleName("Choose model")
        layout = QVBoxLayout(self)
        self.demo = QRadioButton("Bundled demo model (SmolLM2-135M, fast, small)")
        self.tiny = QRadioButton("TinyLlama 1.1B Chat (the paper's model; downloaded once, ~2.2 GB)")
        self.local = QRadioButton("A local folder (Hugging Face format) or hub id:")
        group = QButtonGroup(self)
        for i, b in enumerate((self.demo, self.tiny, self.local)):
            group.addButton(b, i)
            layout.addWidget(b)
            b.setAccessibleName(b.text().split(" (")[0].rstrip(":"))
        row = QHBoxLayout()
        self.path = QLineEdit()
        self.path.setAccessibleName("Model folder or hub id")
        self.path.setPlaceholderText("/path/to/model or owner/name")
        browse = QPushButton("Browse…")
        browse.setAccessibleName("Browse for a model folder")
        browse.clicked.connect(self._browse)
        row.addWidget(self.path, 1)
        row.addWidget(browse)
        layout.addLayout(row)

        form = QFormLayout()
        self.device = QComboBox()
        self.device.setAccessibleName("Device")
        for label, value in DEVICES:
            self.device.addItem(label, value)
        self.quant = QComboBox()
        self.quant.setAccessibleName("Quantization")
        for label, value in QUANTS:
            self.quant.addItem(label, value)
        form.addRow("Device:", self.device)
        form.addRow("Quantization:", self.quant)
        layout.addLayout(form)
        note = QLabel("If the model cannot load, the app keeps the one it has.")
        note.setObjectName("hint")
        layout.addWidget(note)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Load")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.path.textEdited.connect(lambda _t: self.local.setChecked(True))
        self.set_choice(current)

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Model folder")
        if folder:
            self.path.setText(folder)
            self.local.setChecked(True)

    def set_choice(self, choice: ModelChoice) -> None:
        if choice.spec in ("", DEMO):
            self.demo.setChecked(True)
        elif choice.spec == TINYLLAMA:
            self.tiny.setChecked(True)
        else:
            self.local.setChecked(True)
            self.path.setText(choice.spec)
        self.device.setCurrentIndex(max(0, self.device.findData(choice.device)))
        self.quant.setCurrentIndex(max(0, self.quant.findData(choice.quantize)))

    def choice(self) -> ModelChoice:
        if self.tiny.isChecked():
            spec = TINYLLAMA
        elif self.local.isChecked() and self.path.text().strip():
            spec = self.path.text().strip()
        else:
            spec = DEMO
        return ModelChoice(spec, self.device.currentData(), self.quant.currentData())
