"""`har ui` for real: the MLflow UI started on 127.0.0.1 over a small SQLite store written through
MlflowClient, its printed deep links fetched over HTTP and opened in headless Chromium (the study's runs
in the model-training view, the registry), Ctrl-C stopping it and its server; bad input in one line."""

from __future__ import annotations

import contextlib
import json
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import psutil
import pytest
from mlflow.tracking import MlflowClient

from har.report.render import experiment_url, model_url, models_url, run_url
from tests.browser import browser_page, screenshot
from tests.cli_helpers import BIN, env, har, har_in_process, one_line_error
from tests.servers import free_port

RUN_NAME = "lstm hidden=12 [t0]"
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # 127.0.0.1, never via a proxy


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    """Two studies (one run in 'demo'), a registered model and an Optuna database beside mlflow.db."""
    root = tmp_path_factory.mktemp("ui").resolve()
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.create_experiment("demo", tags={"har.kind": "study"})
    client.create_experiment("other", tags={"har.kind": "study"})
    run = client.create_run(experiment, run_name=RUN_NAME, tags={"har.role": "trial", "har.model": "lstm"})
    client.log_metric(run.info.run_id, "best/val/macro_f1", 0.8)
    client.set_terminated(run.info.run_id, "FINISHED")
    client.create_registered_model("har-demo-all")
    (root / "optuna.db").touch()
    return root, uri, experiment


def test_links_open_the_model_training_view() -> None:
    base = "http://127.0.0.1:5000"
    assert experiment_url(base, "7") == f"{base}/#/experiments/7/runs?workflowType=machine_learning"
    assert run_url(base, "7", "ab12") == f"{base}/#/experiments/7/runs/ab12?workflowType=machine_learning"
    assert models_url(base) == f"{base}/#/models"
    assert model_url(base, "har-a b") == f"{base}/#/models/har-a%20b?workflowType=machine_learning"


def _get(url: str) -> tuple[int, str]:
    with OPENER.open(url, timeout=10) as reply:
        return reply.status, reply.read().decode()


def test_ui_serves_deep_links_and_stops_on_ctrl_c(store: tuple[Path, str, str]) -> None:
    root, uri, experiment = store
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    errors = open(root / f"har-ui-{port}.err", "w+")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [str(BIN / "har"), "ui", "--tracking-uri", uri, "--port", str(port), "--study", "demo"],
        cwd=root, env={k: v for k, v in env().items() if k != "HAR_OPTUNA_STORAGE"}, stdout=subprocess.PIPE,
        stderr=errors, text=True,
    )  # fmt: skip
    lines: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)

    threading.Thread(target=read, daemon=True).start()
    server: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 240
        while not any("Optuna studies:" in line for line in lines):
            errors.seek(0)
            assert proc.poll() is None, f"har ui exited {proc.returncode}: {errors.read()}"
            assert time.monotonic() < deadline, f"no links printed: {lines} {errors.read()}"
            time.sleep(0.5)
        text = "".join(lines)
        server = psutil.Process(proc.pid).children(recursive=True)
        assert any("mlflow" in " ".join(p.cmdline()) for p in server), server
        # the printed links: the study's runs, the registry, the Optuna dashboard of optuna.db beside mlflow.db
        study_link = re.search(r"study demo:\s+(\S+)", text)
        assert study_link and study_link.group(1) == experiment_url(base, experiment), text
        assert re.search(rf"registered models:\s+{re.escape(models_url(base))}\n", text), text
        assert f"optuna-dashboard sqlite:///{root / 'optuna.db'}" in text
        assert "study other" not in text  # --study: only that study's link
        assert _get(f"{base}/health") == (200, "OK")
        linked = re.search(r"#/experiments/(\w+)/runs", study_link.group(1))
        assert linked is not None
        status, body = _get(f"{base}/ajax-api/2.0/mlflow/experiments/get?experiment_id={linked.group(1)}")
        assert status == 200 and json.loads(body)["experiment"]["name"] == "demo"
        # a tracking server serves the UI itself: har ui only prints its links there
        served = har("ui", "--tracking-uri", base, "--study", "demo", cwd=root)
        assert served.returncode == 0, served.stderr
        assert "nothing to start" in served.stdout and experiment_url(base, experiment) in served.stdout
        # what a person sees: the run in the runs table of the model-training view, the registered model
        with browser_page() as page:
            page.goto(study_link.group(1))
            page.get_by_text(RUN_NAME).first.wait_for()
            page.get_by_text("Model registry").first.wait_for()  # the model-training view's sidebar
            assert "workflowType=machine_learning" in page.url and "Token Usage" not in page.inner_text(
                "body"
            )
            screenshot(page, "har-ui-study-runs")
            page.goto(models_url(base))
            page.get_by_role("row").filter(has_text="har-demo-all").first.wait_for()
        # Ctrl-C: exit 0 without a traceback, the server's processes gone, the port free again
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
        errors.seek(0)
        said = errors.read()
        assert "stopped the MLflow UI" in said and "Traceback" not in said, said
        deadline = time.monotonic() + 20
        while alive := [p for p in server if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]:
            assert time.monotonic() < deadline, f"left running: {alive}"
            time.sleep(0.2)
        with socket.socket() as again:  # as a server binds it (closed connections may linger in TIME_WAIT)
            again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            again.bind(("127.0.0.1", port))
    finally:  # a failed check: stop them by process id
        if proc.poll() is None:
            proc.kill()
        for process in server:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        proc.wait(timeout=30)
        errors.close()


def test_bad_input_is_one_line(store: tuple[Path, str, str], tmp_path: Path) -> None:
    _, uri, _ = store
    with socket.socket() as busy:  # a port something else listens on
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        taken = har_in_process("ui", "--tracking-uri", uri, "--port", str(port), cwd=tmp_path)
    assert taken.returncode == 2
    assert f"port {port} on 127.0.0.1 is busy; pass another --port" in one_line_error(taken)
    missing = har_in_process(
        "ui", "--tracking-uri", f"sqlite:///{tmp_path}/none.db", "--port", str(free_port()), cwd=tmp_path
    )
    assert missing.returncode == 2 and "no MLflow database" in one_line_error(missing)
    # the console script where the command opens the database (it sets MLflow's process-wide tracking URI)
    unknown = har("ui", "--tracking-uri", uri, "--port", str(free_port()), "--study", "nope", cwd=tmp_path)
    assert unknown.returncode == 2
    assert "--study nope: no MLflow experiment" in (line := one_line_error(unknown))
    assert "(studies: demo, other)" in line
