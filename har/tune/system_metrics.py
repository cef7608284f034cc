"""CPU, memory and (on CUDA nodes) GPU samples of a trial's node, with MLflow's own system-metrics
monitors, reported with every epoch as ``system/...`` metrics (the MLflow UI's System metrics tab).

The trial samples them itself, on the node that runs it, and reports them to Tune like any metric:
workers never write to MLflow (the driver's logger does), so this works with a SQLite store as well as
with a tracking server. Sampled every ``interval`` seconds in a daemon thread (a sample costs well
under a millisecond); each epoch reports the means since the previous one.
"""

from __future__ import annotations

import contextlib
import threading

from mlflow.system_metrics.metrics.cpu_monitor import CPUMonitor
from mlflow.system_metrics.metrics.gpu_monitor import GPUMonitor

PREFIX = "system/"


class SystemSampler:
    def __init__(self, interval: float):
        self.monitors = [CPUMonitor()]
        with contextlib.suppress(Exception):  # no pynvml, or no NVIDIA GPU on this node
            self.monitors.append(GPUMonitor())
        self.interval = interval
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sample()  # a first sample: even an epoch shorter than the interval reports something
        self._thread = threading.Thread(target=self._loop, name="har-system-metrics", daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        with self._lock:
            for monitor in self.monitors:
                with contextlib.suppress(Exception):  # a monitor that fails once must not end the trial
                    monitor.collect_metrics()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def take(self) -> dict[str, float]:
        """Means of the samples since the last call, as ``system/<name>``; the samples are cleared."""
        out: dict[str, float] = {}
        with self._lock:
            for monitor in self.monitors:
                if monitor.metrics:
                    out.update({PREFIX + k: float(v) for k, v in monitor.aggregate_metrics().items()})
                monitor.clear_metrics()
        return out

    def stop(self) -> None:
        self._stop.set()
