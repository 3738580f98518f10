"""Choose the model: TinyLlama, a local folder or the bundled demo; the device; 8/4-bit quantization;
the weights' precision on the CPU, with the memory the choice will take before it loads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
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

from app.display import format_bytes
from engine.types import PRECISION_CHOICES, QUANTIZE_CHOICES

if TYPE_CHECKING:
    from engine.weight_estimate import ParamCounts

TINYLLAMA = "TinyLlama/TinyLlama-1.1B-Chat-v1.0"
DEMO = "demo"
DEVICES = (("Automatic (GPU if present)", "auto"), ("CPU", "cpu"), ("CUDA GPU", "cuda"), ("Apple MPS", "mps"))
QUANTS = (("None (full precision)", "none"),
          *((f"{q[:-3]}-bit (CUDA only)", q) for q in QUANTIZE_CHOICES))
PRECISION_LABELS = {"auto": "auto (measured once: the fastest at fp32's quality)", "fp32": "fp32",
                    "bf16": "bf16", "int8": "int8 (weights; the output head stays fp32)"}
PRECISIONS = tuple((PRECISION_LABELS.get(p, p), p) for p in PRECISION_CHOICES)
BF16_UNSUPPORTED = "This CPU has no bf16 instructions (AVX-512-BF16 or AMX): bf16 would be slower than fp32 here."


@dataclass(frozen=True)
class ModelChoice:
    spec: str  # "demo", a hub id or a folder
    device: str  # "auto" | "cpu" | "cuda" | "mps"
    quantize: str  # "none" | "8bit" | "4bit"
    precision: str = "fp32"  # on the CPU: "auto" | "fp32" | "bf16" | "int8" (engine.precision)

    @property
    def device_arg(self) -> str | None:
        return None if self.device == "auto" else self.device

    @property
    def quantize_arg(self) -> str | None:
        return None if self.quantize == "none" else self.quantize

    @property
    def precision_arg(self) -> str | None:
        """The precision to load with; None where it does not apply (a GPU, or 8/4-bit quantization).
        A remembered bf16 loads as fp32 on a CPU without bf16 instructions (settings moved to another machine)."""
        if not runs_on_cpu(self.device, self.quantize):
            return None
        return "fp32" if self.precision == "bf16" and not bf16_supported() else self.precision


def runs_on_cpu(device: str, quantize: str) -> bool:
    """Whether a load with this device and quantization runs on the CPU (where the precision applies)."""
    if quantize not in ("", "none") or device in ("cuda", "mps"):
        return False
    if device == "cpu":
        return True
    from engine.models import pick_device

    return pick_device(None).type == "cpu"


def bf16_supported() -> bool:
    from engine.precision import cpu_has_bf16

    return cpu_has_bf16()


def memory_text(counts: ParamCounts | None, precision: str, device: str, quantize: str) -> str:
    """What weights of these parameter counts will take with this choice."""
    from engine.weight_estimate import bytes_at

    if counts is None:
        return "Weights: unknown until loaded (no local weight files to read)"
    if quantize in QUANTIZE_CHOICES:
        bits = 8 if quantize == "8bit" else 4
        return f"about {format_bytes(counts.linear * bits // 8 + counts.other * 2)} of weights ({quantize})"
    if not runs_on_cpu(device, quantize):
        return f"about {format_bytes(counts.total * 2)} of weights (the device's 16-bit dtype)"
    if precision == "auto":
        low, high = bytes_at(counts, "int8") or 0, bytes_at(counts, "fp32") or 0
        return (f"{format_bytes(low)} to {format_bytes(high)} of weights (auto: the first load "
                f"measures which precision is fastest here, once)")
    size = bytes_at(counts, precision)
    return "Weights: unknown" if size is None else f"about {format_bytes(size)} of weights ({precision})"


class ModelDialog(QDialog):
    def __init__(self, current: ModelChoice, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Choose model")
        self._counts: dict[str, ParamCounts | None] = {}
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
        self.precision = QComboBox()
        self.precision.setAccessibleName("Precision")
        for label, value in PRECISIONS:
            self.precision.addItem(label, value)
        if not bf16_supported():
            i = self.precision.findData("bf16")
            item = self.precision.model().item(i)  # type: ignore[attr-defined]
            item.setEnabled(False)
            self.precision.setItemData(i, BF16_UNSUPPORTED, Qt.ItemDataRole.ToolTipRole)
        self.memory = QLabel()
        self.memory.setAccessibleName("Memory the weights will take")
        self.memory.setWordWrap(True)
        form.addRow("Device:", self.device)
        form.addRow("Quantization:", self.quant)
        form.addRow("Precision:", self.precision)
        form.addRow("Memory:", self.memory)
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
        group.idToggled.connect(lambda _i, on: on and self.update_memory())
        self.path.editingFinished.connect(self.update_memory)
        for combo in (self.device, self.quant, self.precision):
            combo.currentIndexChanged.connect(lambda _i: self.update_memory())
        self.update_memory()

    def update_memory(self) -> None:
        """Enable the precision where it applies and say what the weights will take."""
        choice = self.choice()
        on_cpu = runs_on_cpu(choice.device, choice.quantize)
        self.precision.setEnabled(on_cpu)
        self.precision.setToolTip("" if on_cpu else "The precision is for the CPU: on a GPU (or with 8/4-bit "
                                  "quantization) the device's own dtype is used.")
        if choice.spec not in self._counts:  # headers only, read once per model while the dialog is open
            from engine.weight_estimate import param_counts

            self._counts[choice.spec] = param_counts(choice.spec)
        counts = self._counts[choice.spec]
        self.memory.setText(memory_text(counts, choice.precision, choice.device, choice.quantize))

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Model folder")
        if folder:
            self.path.setText(folder)
            self.local.setChecked(True)
            self.update_memory()

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
        wanted = choice.precision if choice.precision != "bf16" or bf16_supported() else "fp32"
        self.precision.setCurrentIndex(max(0, self.precision.findData(wanted)))

    def choice(self) -> ModelChoice:
        if self.tiny.isChecked():
            spec = TINYLLAMA
        elif self.local.isChecked() and self.path.text().strip():
            spec = self.path.text().strip()
        else:
            spec = DEMO
        return ModelChoice(spec, self.device.currentData(), self.quant.currentData(), self.precision.currentData())
