"""Run the installed ``har`` console script as a user would, or (``har_in_process``) the same entry point
in this interpreter, for the many bad-input checks that fail before any real work starts."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[1]


def env() -> dict[str, str]:
    return {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "DVC_NO_ANALYTICS": "1",
        "COLUMNS": "200",
    }


def har(*args: str, cwd: Path, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "har"), *args],
        cwd=cwd,
        env={**env(), **(extra_env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )


def har_in_process(
    *args: str, cwd: Path, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """``har(*args)`` without a new interpreter (whose imports of torch, MLflow, ... cost 8-12 s a call):
    ``har.cli.main`` itself, so the HarError -> one line + exit code mapping is the real one, with the
    environment, cwd, argv and std streams of ``har()`` swapped in, and those, torch's global RNG and the
    har modules' rich consoles restored afterwards.

    Only for commands that fail (or finish) before anything process-wide starts: no Ray (not even imported),
    no training, no MLflow tracking URI set, no signals, no native library writing to file descriptor 2
    (this captures ``sys.stdout`` and ``sys.stderr``, not the descriptors). A command that raises anything
    but HarError or SystemExit fails the test with its traceback."""
    import torch

    from har.cli import main

    argv, cwd_before, env_before = sys.argv, Path.cwd(), dict(os.environ)
    streams_before = {"stdout": sys.stdout, "stderr": sys.stderr}
    consoles = {id(c): (c, c._width, c._color_system) for c in _har_consoles()}
    stdout, stderr = io.StringIO(), io.StringIO()
    returncode = 0
    os.environ.update({**env(), **(extra_env or {})})
    try:
        os.chdir(cwd)
        sys.argv = [str(BIN / "har"), *args]
        with (
            torch.random.fork_rng(devices=[]),
            contextlib.redirect_stdout(stdout),
            contextlib.redirect_stderr(stderr),
        ):
            for console, _, _ in consoles.values():
                _as_if_created_now(console)  # as in a fresh process: COLUMNS=200, no colours on a pipe
            try:
                main()
            except SystemExit as exc:
                if isinstance(exc.code, str):
                    print(exc.code, file=sys.stderr)
                returncode = 0 if exc.code is None else int(exc.code) if isinstance(exc.code, int) else 1
    finally:
        sys.argv = argv
        os.chdir(cwd_before)
        for key in set(os.environ) - set(env_before):
            del os.environ[key]
        for key, value in env_before.items():
            if os.environ.get(key) != value:
                os.environ[key] = value
        for console in _har_consoles():  # module-level consoles, including any the command imported
            if id(console) in consoles:
                _, console._width, console._color_system = consoles[id(console)]
            else:
                _as_if_created_now(console)
        _unbind_logging({id(stdout): streams_before["stdout"], id(stderr): streams_before["stderr"]})
    return subprocess.CompletedProcess(
        [str(BIN / "har"), *args], returncode, stdout.getvalue(), stderr.getvalue()
    )


def _har_consoles() -> list:
    """The rich consoles that har's modules create at import (``har.cli.console.err`` and the like): they
    resolve sys.stdout/sys.stderr when they print, but fix their width and colours when created."""
    from rich.console import Console

    found = {}
    for name, module in list(sys.modules.items()):
        if name == "har" or name.startswith("har."):
            for value in list(vars(module).values()):
                if isinstance(value, Console):
                    found[id(value)] = value
    return list(found.values())


def _as_if_created_now(console) -> None:
    """The width and colour system ``Console()`` would choose now (from $COLUMNS and the current stream)."""
    columns = os.environ.get("COLUMNS", "")
    console._width = int(columns) - console.legacy_windows if columns.isdigit() else None
    console._color_system = console._detect_color_system()


def _unbind_logging(replacements: dict[int, object]) -> None:
    """Point logging handlers that a library imported during the call bound to a capture buffer back at
    the stream they would have found (a StreamHandler keeps the sys.stderr it was created with)."""
    import logging

    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    for logger in loggers:
        for handler in getattr(logger, "handlers", []):
            if isinstance(handler, logging.StreamHandler) and id(handler.stream) in replacements:
                handler.setStream(replacements[id(handler.stream)])


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    """The error message, asserting it is a single line on stderr."""
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr, got: {proc.stderr!r}"
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


def sample_project(root: Path, dataset: str = "uci_hapt_sample") -> Path:
    """A scratch project in ``root``: params.yaml, the bundled sample, ``dataset`` fetched and prepared."""
    shutil.copy(REPO / "params.yaml", root / "params.yaml")
    shutil.copytree(REPO / "sample", root / "sample")
    for step in ("fetch", "prepare"):
        proc = har("data", step, dataset, cwd=root)
        assert proc.returncode == 0, proc.stderr
    return root
