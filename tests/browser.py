"""A real `mlflow ui` on 127.0.0.1 and Debian's Chromium driven headless by Playwright (helpers, no tests).

Chromium comes from the Debian package (`.ci/run` installs it); Playwright never downloads a browser.
Without /usr/bin/chromium the browser tests skip, except in CI (``CI`` set), where they fail."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli_helpers import BIN, REPO, env
from tests.servers import free_port

ARTIFACTS = Path(os.environ.get("HAR_TEST_ARTIFACTS", REPO / "test-artifacts"))
CHROMIUM_FLAGS = [  # the machine's network is closed: no background connections, no sandbox as root
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
]  # fmt: skip


def chromium_path() -> str:
    found = os.environ.get("HAR_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing in CI: .ci/run installs the Debian package 'chromium'")
        pytest.skip("no Chromium on this machine (apt-get install chromium)")
    return found


@contextlib.contextmanager
def mlflow_ui(backend_uri: str, workdir: Path) -> Iterator[str]:
    """`mlflow ui` (one worker, 127.0.0.1) until the block ends; yields its URL."""
    port = free_port()
    log = open(workdir / f"mlflow-ui-{port}.log", "wb")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [str(BIN / "mlflow"), "ui", "--backend-store-uri", backend_uri, "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1"],
        cwd=workdir, env={**env(), "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}, stdout=log,
        stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                log.flush()
                pytest.fail(
                    f"mlflow ui did not start: {(workdir / f'mlflow-ui-{port}.log').read_text()[-2000:]}"
                )
            time.sleep(0.5)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


@contextlib.contextmanager
def har_ui(tracking_uri: str, workdir: Path, study: str) -> Iterator[tuple[str, str]]:
    """`har ui --study STUDY` on a free port until the block ends; yields (its base URL, the study link it
    printed). Stopped by Ctrl-C (SIGINT), as a person stops it, then by process group if need be."""
    port = free_port()
    out = open(workdir / f"har-ui-{port}.log", "w+")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [str(BIN / "har"), "ui", "--tracking-uri", tracking_uri, "--port", str(port), "--study", study],
        cwd=workdir, env=env(), stdout=out, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.time() + 180
        while not re.search(rf"study {re.escape(study)}:\s+(\S+)", text := Path(out.name).read_text()):
            if proc.poll() is not None or time.time() > deadline:
                pytest.fail(f"har ui printed no study link: {text[-2000:]}")
            time.sleep(0.5)
        link = re.search(rf"study {re.escape(study)}:\s+(\S+)", text)
        assert link is not None
        yield f"http://127.0.0.1:{port}", link.group(1)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        out.close()


@contextlib.contextmanager
def browser_page(width: int = 1400, height: int = 900) -> Iterator:
    """A fresh headless Chromium page (Playwright's sync API)."""
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.set_default_timeout(60_000)
            yield page
        finally:
            browser.close()


def screenshot(page, name: str) -> Path:
    """Save the page as a test artifact (test-artifacts/, or $HAR_TEST_ARTIFACTS)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
