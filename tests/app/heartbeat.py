"""Measure the longest gap between 10 ms timer ticks on the GUI thread: how long the GUI froze."""

from __future__ import annotations

from PySide6.QtCore import QElapsedTimer, QTimer


class Heartbeat:
    """start() ... stop() -> the longest gap in ms (the first tick is not counted)."""

    def __init__(self, interval_ms: int = 10) -> None:
        self.clock = QElapsedTimer()
        self.timer = QTimer()
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self._beat)
        self.gaps: list[float] = []
        self._last = 0.0

    def _beat(self) -> None:
        now = self.clock.nsecsElapsed() / 1e6
        self.gaps.append(now - self._last)
        self._last = now

    def start(self) -> None:
        self.gaps = []
        self.clock.start()
        self._last = 0.0
        self.timer.start()

    def stop(self) -> float:
        self.timer.stop()
        return max(self.gaps[1:], default=0.0)

    def worst(self, n: int = 5) -> list[float]:
        return sorted((round(g, 1) for g in self.gaps[1:]), reverse=True)[:n]
