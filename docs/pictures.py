"""Regenerate the pictures of docs/tutorial.md from a project where `make run` has finished.

    .venv/bin/python docs/pictures.py [PROJECT]     # default: this checkout; needs the dev extras + Chromium

Screenshots of the report, of `dvc plots show` and of the MLflow UI (a real `mlflow ui` driven by
headless Chromium, as in tests/browser.py), plus two of the report's own figures, into docs/img/."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from tests.browser import browser_page, mlflow_ui  # noqa: E402
from tests.cli_helpers import BIN, env  # noqa: E402

IMG = HERE / "img"
STUDY = "quickstart"


def tidy(page) -> None:
    """Close MLflow's announcement dialog and its assistant panel: they cover what the picture shows."""
    page.keyboard.press("Escape")
    for button in page.get_by_role("button", name="Close").all():
        if button.is_visible():
            button.click()
    page.wait_for_timeout(500)


def shot(page, name: str, full: bool = False) -> None:
    page.screenshot(path=str(IMG / f"{name}.png"), full_page=full)
    print(f"docs/img/{name}.png")


def main(project: Path) -> None:
    IMG.mkdir(exist_ok=True)
    report = project / "reports" / STUDY
    if not (report / "index.html").is_file():
        sys.exit(f"{report}/index.html: missing; run 'make run' (or 'har report --study {STUDY}') first")
    subprocess.run([str(BIN / "dvc"), "plots", "show", "-o", "dvc_plots"], cwd=project, env=env(), check=True,
                   capture_output=True)  # fmt: skip
    for name in ("permutations", "pareto"):
        shutil.copyfile(report / "img" / f"{name}.png", IMG / f"report-{name}.png")
        print(f"docs/img/report-{name}.png")
    with sqlite3.connect(project / "mlflow.db") as db:
        (experiment_id,) = db.execute(
            "select experiment_id from experiments where name = ?", (STUDY,)
        ).fetchone()
        (parent,) = db.execute(
            "select r.name from runs r join tags t on t.run_uuid = r.run_uuid where r.experiment_id = ? and "
            "t.key = 'har.permutation' and t.value = 'all' order by r.start_time desc limit 1",
            (experiment_id,),
        ).fetchone()
    with browser_page(1280, 800) as page:
        page.goto((report / "index.html").as_uri())
        page.wait_for_timeout(500)
        shot(page, "report-top")
        page.goto((project / "dvc_plots" / "index.html").as_uri())
        page.wait_for_timeout(2000)
        shot(page, "dvc-plots")
        with mlflow_ui("sqlite:///mlflow.db", project) as url:
            page.goto(f"{url}/#/experiments/{experiment_id}/runs")
            row = page.get_by_role("row").filter(has_text=parent)
            row.first.wait_for()
            row.first.locator('button[data-component-id*="runnamecellrenderer"]').click()
            page.wait_for_timeout(1500)
            tidy(page)
            shot(page, "mlflow-runs")
            page.goto(f"{url}/#/models")
            page.get_by_text("har-uci_hapt_sample-all").first.wait_for()
            page.wait_for_timeout(1000)
            tidy(page)
            shot(page, "mlflow-registry")


if __name__ == "__main__":
    main(Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else HERE.parent)
