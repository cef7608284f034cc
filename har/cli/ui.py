"""``har ui``: the MLflow UI of the project's tracking store, with deep links into its model-training view.

MLflow 3's UI opens in its GenAI view (traces, token usage) and shows a telemetry notice on its home
page; the links printed here open a study's runs table and the model registry directly. The library
is imported inside the function body: ``har --help`` loads only typer and rich (``har/cli/__init__.py``).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Annotated

import typer

from har.cli.console import err, out
from har.cli.options import TrackingOpt
from har.errors import BadInput, HarError

START_SECONDS = 180  # importing MLflow and migrating the database on two busy cores takes a while
STOP_SECONDS = 15
MAX_STUDIES = 10  # links printed without --study
# the server's environment: no background job runner (a SQLite store, one worker), no telemetry
SERVER_ENV = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", "MLFLOW_DISABLE_TELEMETRY": "true",
              "DO_NOT_TRACK": "true"}  # fmt: skip
_PLAIN = {"markup": False, "highlight": False, "soft_wrap": True}  # URLs printed whole, never wrapped


def ui_cmd(
    study: Annotated[
        str | None,
        typer.Option("--study", "-s", help="Print the link to this study's runs (default: every study's)."),
    ] = None,
    host: Annotated[
        str, typer.Option(help="Address to listen on; 0.0.0.0 serves the network, without any login.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 5000,
    tracking_uri: TrackingOpt = None,
) -> None:
    """Start the MLflow UI (mlflow ui, one worker, telemetry off) on the project's tracking store and print
    links that open in its model-training view: each study's runs (or --study's), the registered models and,
    where the studies' Optuna database exists, the optuna-dashboard command. Ctrl-C stops it (exit 0).
    A tracking server (http://...) already serves the UI: then only the links are printed."""
    from har.tracking.store import connect, resolve_uri

    uri = resolve_uri(tracking_uri)
    if uri.startswith(("http://", "https://")):
        # a server that is down: say so at once, not after MLflow's minutes of retries
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "15")
        base = uri.rstrip("/")
        lines = _links(connect(uri, create=False), base, uri, study)
        out.print(f"MLflow UI: {base} (the tracking server serves it; nothing to start)", **_PLAIN)
        for line in lines:
            out.print(line, **_PLAIN)
        return
    _check_port(host, port)
    lines = _links(connect(uri, create=False), f"http://{_url_host(host)}:{port}", uri, study)
    _serve(uri, host, port, lines)


def _links(client, base: str, uri: str, study: str | None) -> list[str]:
    """The lines to print: study runs, registered models, the Optuna dashboard. BadInput for an unknown study."""
    from har.report.render import experiment_url, models_url

    studies = sorted(
        client.search_experiments(filter_string="tags.`har.kind` = 'study'"), key=lambda e: e.name
    )
    if study is not None:
        found = client.get_experiment_by_name(study)
        if found is None or found.lifecycle_stage != "active":
            known = ", ".join(e.name for e in studies) or "none yet: run 'har tune --study NAME'"
            raise BadInput(f"--study {study}: no MLflow experiment of that name at {uri} (studies: {known})")
        studies = [found]
    width = max([len(f"study {e.name}") for e in studies[:MAX_STUDIES]] + [len("registered models")]) + 1
    lines = [
        f"  {f'study {e.name}:':<{width}} {experiment_url(base, e.experiment_id)}"
        for e in studies[:MAX_STUDIES]
    ]
    if len(studies) > MAX_STUDIES:
        lines.append(f"  ... and {len(studies) - MAX_STUDIES} more studies: pass --study NAME")
    lines.append(f"  {'registered models:':<{width}} {models_url(base)}")
    dashboard = _optuna_dashboard(uri)
    if dashboard:
        lines.append(f"  {'Optuna studies:':<{width}} {dashboard}")
    return lines


def _optuna_dashboard(uri: str) -> str | None:
    """``optuna-dashboard URL`` for the studies' Optuna storage ($HAR_OPTUNA_STORAGE, else optuna.db beside
    the tracking database) when it is set or the file exists, else None."""
    from har.tune.optuna_store import OPTUNA_ENV, storage_url

    url = storage_url(None, uri)
    if not os.environ.get(OPTUNA_ENV) and not Path(url.removeprefix("sqlite:///")).is_file():
        return None
    hint = "" if shutil.which("optuna-dashboard") else "  (pip install 'har-lab[dashboard]')"
    return f"optuna-dashboard {url}{hint}"


def _url_host(host: str) -> str:
    """The host part of the links: a wildcard address is reached on this machine's loopback."""
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def _check_port(host: str, port: int) -> None:
    """BadInput unless ``host:port`` can be listened on (bound as uvicorn binds it: SO_REUSEADDR)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise BadInput(f"--host {host}: not an address of this machine ({exc.strerror})") from exc
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise BadInput(f"port {port} on {host} is busy; pass another --port") from exc
            raise BadInput(f"--host {host} --port {port}: cannot listen there ({exc.strerror})") from exc


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _serve(uri: str, host: str, port: int, lines: list[str]) -> None:
    """Run ``mlflow ui`` in its own process group until Ctrl-C (or SIGTERM / SIGHUP), then stop that group."""
    base = f"http://{_url_host(host)}:{port}"
    fd, name = tempfile.mkstemp(prefix="har-ui-", suffix=".log")
    log = Path(name)
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", uri, "--host", host,
               "--port", str(port), "--workers", "1"]  # fmt: skip
    # Ctrl-C and SIGTERM stop it even where SIGINT came ignored (`har ui &` in a script); a closed terminal
    # too, unless it runs under nohup
    stops = [signal.SIGINT, signal.SIGTERM]
    if signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:
        stops.append(signal.SIGHUP)
    previous = {s: signal.signal(s, _interrupt) for s in stops}
    proc = None
    stopped = False
    try:
        with os.fdopen(fd, "wb") as sink:
            proc = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
                env={**os.environ, **SERVER_ENV}, start_new_session=True,
            )  # fmt: skip
        if host not in ("127.0.0.1", "localhost", "::1"):
            err.print(f"note: --host {host} serves the UI to the network without any login", **_PLAIN)
        err.print(f"starting the MLflow UI on {base} (log: {log}) ...", **_PLAIN)
        _wait_healthy(proc, base, host, port, log)
        out.print(f"MLflow UI of {uri}: {base} (Ctrl-C stops it)", **_PLAIN)
        for line in lines:
            out.print(line, **_PLAIN)
        code = proc.wait()
        raise HarError(f"the MLflow UI stopped by itself (exit {code}): {_last_line(log)}; log: {log}")
    except KeyboardInterrupt:
        stopped = True
    finally:
        for sig in stops:  # a second Ctrl-C must not cut the clean-up short
            signal.signal(sig, signal.SIG_IGN)
        try:
            if proc is not None:
                _stop(proc)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    if stopped:
        log.unlink(missing_ok=True)
        err.print("stopped the MLflow UI", **_PLAIN)


def _wait_healthy(proc: subprocess.Popen, base: str, host: str, port: int, log: Path) -> None:
    """Until ``/health`` answers; BadInput if the port was taken meanwhile, HarError if the server died."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via an http_proxy
    deadline = time.monotonic() + START_SECONDS
    while True:
        with contextlib.suppress(OSError), opener.open(f"{base}/health", timeout=2) as reply:
            if reply.status == 200:
                return
        code = proc.poll()
        if code is not None:
            text = log.read_text(errors="replace").lower()
            if "address already in use" in text:  # taken since _check_port
                log.unlink(missing_ok=True)
                raise BadInput(f"port {port} on {host} is busy; pass another --port")
            raise HarError(f"mlflow ui exited ({code}) before serving: {_last_line(log)}; log: {log}")
        if time.monotonic() > deadline:
            raise HarError(f"the MLflow UI did not answer on {base} within {START_SECONDS} s; log: {log}")
        time.sleep(0.5)


def _last_line(log: Path) -> str:
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    return lines[-1][:200] if lines else "no output"


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the server's process group (mlflow ui and its uvicorn), SIGKILL what is left after a while."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_SECONDS
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=STOP_SECONDS)
    while time.monotonic() < deadline:  # the group outlives its leader while uvicorn shuts down
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
