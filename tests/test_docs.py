"""The figures of docs/results.md and docs/models.md are rendered from JSON records (docs/render.py):
a page that no longer matches its records, or a figure written by hand outside a rendered section, fails."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def render():
    spec = importlib.util.spec_from_file_location("docs_render", ROOT / "docs" / "render.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_docs_match_their_records(render):
    problems = render.check(render.load_records())
    assert not problems, "run 'python docs/render.py':\n" + "\n".join(problems)


def test_every_record_is_rendered_somewhere(render):
    records = render.load_records()
    assert set(records) == set(render.RECORDS)
    rendered = "".join(fn(records) for sections in render.PAGES.values() for fn in sections.values())
    for entry in records["accuracy"]["test"]:
        assert entry["label"] in rendered
        assert f"{entry['test_accuracy_mean']:.2f} +- {entry['test_accuracy_std']:.2f}" in rendered


def copy_docs(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    for page in ("results.md", "models.md"):
        shutil.copy(ROOT / "docs" / page, docs / page)
    return docs


def test_a_changed_json_value_fails_the_check(render, tmp_path):
    docs = copy_docs(tmp_path)
    records = render.load_records()
    assert render.check(records, docs) == []
    changed = json.loads(json.dumps(records))
    entry = next(e for e in changed["accuracy"]["test"] if e["label"] == "cnn_resbigru:model2")
    entry["test_accuracy_mean"] += 0.01
    problems = render.check(changed, docs)
    assert "results.md: section accuracy differs from its JSON rendering" in problems
    assert "models.md: section models_measured differs from its JSON rendering" in problems
    changed = json.loads(json.dumps(records))
    changed["throughput"]["models"][0]["train"]["windows_per_s"] += 100
    assert "results.md: section throughput differs from its JSON rendering" in render.check(changed, docs)


def test_rendering_fixes_a_stale_page(render, tmp_path):
    docs = copy_docs(tmp_path)
    page = docs / "results.md"
    page.write_text(page.read_text().replace("| tpe+asha |", "| tpe+asha (edited) |"))
    records = render.load_records()
    assert render.check(records, docs) == ["results.md: section search differs from its JSON rendering"]
    for path, text in render.render(records, docs).items():
        path.write_text(text)
    assert render.check(records, docs) == []


def test_a_hand_written_figure_fails_the_check(render, tmp_path):
    docs = copy_docs(tmp_path)
    page = docs / "models.md"
    page.write_text(page.read_text() + "\nThis model reaches 95.10% on UCI HAR.\n")
    assert render.check(render.load_records(), docs) == [
        "models.md: hand-written figure '95.10%' outside the rendered sections"
    ]
    assert render.stray_figures("<!-- section:x -->\n1.5 ms\n<!-- /section:x -->\nfree text") == []
