"""Live progress of a study's searches in the terminal (a Ray Tune callback in the driver).

On a TTY: a rich table redrawn in place (counts, best so far, elapsed, estimated time left, the
trials now training). Elsewhere (CI, log files, `dvc repro`): one plain line per trial event, so a
log reads top to bottom."""

from __future__ import annotations

import sys
import time
from typing import Any

from ray.tune import Callback
from rich.console import Group
from rich.live import Live
from rich.table import Table

from har.report.data import count_outcomes
from har.tracking.trial_logger import trial_error_text, trial_outcome
from har.tune.permutations import permutation_of
from har.tune.study import StudySpec

REFRESH_SECONDS = 0.5


def clock(seconds: float) -> str:
    seconds = int(max(0, seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m{rest % 60:02d}s" if hours else f"{rest // 60}m{rest % 60:02d}s"


class StudyProgress(Callback):
    """Counts trials by state and keeps the best value of the study's metric, per permutation (one
    display for all the permutations a Tune run searches)."""

    def __init__(self, study: StudySpec, permutations: list[str], live: bool | None = None):
        self.study = study
        self.permutations = list(permutations)
        self.wants_live = live
        self._reset()

    def _reset(self) -> None:
        self.live = sys.stdout.isatty() if self.wants_live is None else self.wants_live
        self.started = time.monotonic()
        self.running: dict[str, dict[str, Any]] = {}  # trial id -> permutation, label, epoch, value
        self.ended: dict[str, tuple[str, str]] = {}  # trial id -> permutation, outcome
        self.best: dict[str, tuple[float, str, str]] = {}  # permutation -> value, trial id, label
        self._view = None
        self._drawn = 0.0
        self._synced = False

    def __getstate__(self) -> dict[str, Any]:  # Tune pickles callbacks with the experiment
        return {k: v for k, v in self.__dict__.items() if k in ("study", "permutations", "wants_live")}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._reset()

    # -- what is shown --------------------------------------------------------------------------
    def counts(self, perm: str) -> dict[str, int]:
        running = sum(info["perm"] == perm for info in self.running.values())
        return {"running": running, **count_outcomes([o for p, o in self.ended.values() if p == perm])}

    def _done(self, perm: str | None = None) -> int:
        return sum(perm is None or p == perm for p, _ in self.ended.values())

    def eta_seconds(self) -> float | None:
        """Time left if trials keep ending at the rate seen so far (None before the first ends)."""
        done = self._done()
        if not done:
            return None
        elapsed = time.monotonic() - self.started
        return (self.study.budget.trials * len(self.permutations) - done) * elapsed / done

    def summary(self, perm: str) -> str:
        c = self.counts(perm)
        eta = self.eta_seconds()
        best = self.best.get(perm)
        shown = (
            f"best {self.study.metric} {best[0]:.4f} ({best[2]}, trial {best[1]})"
            if best
            else "no result yet"
        )
        left = f"~{clock(eta)} left" if eta is not None else "estimating time left"
        return (
            f"[{perm}] {self._done(perm)}/{self.study.budget.trials} trials done: "
            f"{c['running']} running, {c['finished']} finished, {c['pruned']} pruned, {c['failed']} failed | "
            f"{shown} | {clock(time.monotonic() - self.started)} elapsed, {left}"
        )

    def table(self):
        """The live view: a row per permutation, then the trials training now; fits 80 columns."""
        eta = self.eta_seconds()
        caption = f"{clock(time.monotonic() - self.started)} elapsed" + (
            f", ~{clock(eta)} left" if eta else ""
        )
        head = Table(title=f"study {self.study.name}", title_justify="left", expand=False,
                     caption=caption, caption_justify="left")  # fmt: skip
        for column in ("sensors", "trials", "running", "finished", "pruned", "failed", "best"):
            head.add_column(column, justify="left" if column == "sensors" else "right")
        for perm in self.permutations:
            c, best = self.counts(perm), self.best.get(perm)
            head.add_row(
                perm,
                f"{self._done(perm)}/{self.study.budget.trials}",
                str(c["running"]),
                str(c["finished"]),
                str(c["pruned"]),
                str(c["failed"]),
                f"{best[0]:.4f}" if best else "-",
            )
        now = Table(title="training now", title_justify="left", expand=False)
        for column, justify in (("trial", "left"), ("sensors", "left"), ("model and drawn values", "left"),
                                ("epoch", "right"), (self.study.metric, "right")):  # fmt: skip
            now.add_column(column, justify=justify)  # type: ignore[arg-type]
        for trial_id, info in sorted(self.running.items(), key=lambda item: (item[1]["perm"], item[0])):
            value = info.get("value")
            now.add_row(
                trial_id,
                info["perm"],
                info["label"],
                f"{info.get('epoch', 0)}/{self.study.budget.max_epochs}",
                f"{value:.4f}" if isinstance(value, float) else "-",
            )
        return Group(head, now) if self.running else head

    def _say(self, line: str) -> None:
        if self.live:
            if self._view is not None:
                self._view.console.print(line, highlight=False, markup=False)
        else:
            print(line, flush=True)

    def _redraw(self, force: bool = False) -> None:
        if not self.live:
            return
        if self._view is None:
            self._view = Live(self.table(), refresh_per_second=4, transient=False)
            self._view.start()
        now = time.monotonic()
        if force or now - self._drawn >= REFRESH_SECONDS:
            self._view.update(self.table())
            self._drawn = now

    def _info(self, trial) -> dict[str, Any]:
        return self.running.setdefault(
            trial.trial_id,
            {"perm": permutation_of(trial), "label": self.study.label(trial.config), "epoch": 0},
        )

    # -- Tune's hooks ---------------------------------------------------------------------------
    def setup(self, **info):
        self._redraw(force=True)

    def on_trial_start(self, iteration, trials, trial, **info):
        info_ = self._info(trial)
        self._say(f"  [{info_['perm']}] trial {trial.trial_id} started: {info_['label']}")
        self._redraw()

    def on_trial_restore(self, iteration, trials, trial, **info):
        self._info(trial)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        value = result.get(self.study.objective_key)
        info_ = self._info(trial)
        info_.update(epoch=int(result.get("epoch", result.get("training_iteration", 0))), value=value)
        if isinstance(value, float) and value == value:  # not NaN
            sign = 1 if self.study.mode == "max" else -1
            best = self.best.get(info_["perm"])
            if best is None or sign * value > sign * best[0]:
                self.best[info_["perm"]] = (value, trial.trial_id, info_["label"])
        self._redraw()

    def on_trial_complete(self, iteration, trials, trial, **info):
        result = dict(trial.last_result or {})
        self._end(trial, trial_outcome(result, self.study.budget.max_epochs), result)

    def on_trial_error(self, iteration, trials, trial, **info):
        lines = trial_error_text(trial).strip().splitlines()
        self._end(trial, "failed", dict(trial.last_result or {}), lines[-1][:160] if lines else "")

    def on_trial_recover(self, iteration, trials, trial, **info):
        self._say(f"  trial {trial.trial_id} crashed (failure {getattr(trial, 'num_failures', '?')}): "
                  "retried from its last epoch")  # fmt: skip

    def _end(self, trial, outcome: str, result: dict[str, Any], error: str = "") -> None:
        info = self._info(trial)
        del self.running[trial.trial_id]
        self.ended[trial.trial_id] = (info["perm"], outcome)
        value = result.get(self.study.objective_key)
        shown = f"{self.study.metric} {value:.4f}" if isinstance(value, float) else "no result"
        self._say(f"  [{info['perm']}] trial {trial.trial_id} {outcome} at epoch {result.get('epoch', 0)}: "
                  f"{shown}  ({info['label']})" + (f"\n    {error}" if error else ""))  # fmt: skip
        if not self.live:
            print(self.summary(info["perm"]), flush=True)
        self._redraw(force=True)

    def on_step_begin(self, iteration, trials, **info):
        if self._synced:
            return
        self._synced = True  # a resumed study: count the trials that ended before the interruption
        for trial in trials:
            if trial.trial_id in self.ended:
                continue
            if trial.status == "TERMINATED":
                outcome = trial_outcome(dict(trial.last_result or {}), self.study.budget.max_epochs)
                self.ended[trial.trial_id] = (permutation_of(trial), outcome)
            elif trial.status == "ERROR":
                self.ended[trial.trial_id] = (permutation_of(trial), "failed")

    def on_step_end(self, iteration, trials, **info):
        self._redraw()

    def on_experiment_end(self, trials, **info):
        if self.live:  # plain mode printed the summary with the last trial's line
            self.close()
            for perm in self.permutations:
                print(self.summary(perm), flush=True)

    def close(self) -> None:
        """Stop redrawing (also called by the driver when Tune stops early, e.g. on Ctrl-C)."""
        if self._view is not None:
            self._view.update(self.table())
            self._view.stop()
            self._view = None
