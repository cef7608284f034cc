"""The champion rule on a real MLflow registry (SQLite): a new version must beat the champion on the same
test split; a tie (the same score to the four decimals printed) keeps the champion and says so."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from har.tracking.registry import CHAMPION, TIE_TOLERANCE, register
from har.tracking.store import connect


@pytest.fixture()
def client(tmp_path: Path):
    return connect(f"sqlite:///{tmp_path / 'mlflow.db'}")


def _version(client, name: str, score: float, key: str = "test/macro_f1"):
    """Register a run's (empty) artifact folder as a version scoring ``score`` on split ``subjects-a``."""
    experiment = client.create_experiment(f"e-{uuid.uuid4().hex}")
    run = client.create_run(experiment)
    client.set_terminated(run.info.run_id)
    return register(
        client,
        name,
        f"{run.info.artifact_uri}/model",
        run.info.run_id,
        {key: score},
        key,
        score,
        "subjects-a",
    )


def test_a_tie_keeps_the_champion_and_says_it_tied(client) -> None:
    first = _version(client, "har-x-all", 0.9123)
    assert first.promoted and first.champion_version == first.version == "1" and not first.tied

    tie = _version(client, "har-x-all", 0.9123 + TIE_TOLERANCE / 2)  # same to four decimals
    assert not tie.promoted and tie.tied and tie.champion_version == "1"
    assert "ties champion v1" in tie.decision and "a tie keeps the champion" in tie.decision
    assert "beat" not in tie.decision
    assert str(client.get_model_version_by_alias("har-x-all", CHAMPION).version) == "1"
    assert client.get_model_version("har-x-all", "2").tags["champion_decision"] == tie.decision

    worse = _version(client, "har-x-all", 0.9)
    assert not worse.promoted and not worse.tied and "does not beat champion v1" in worse.decision

    better = _version(client, "har-x-all", 0.9125)  # 0.0002 above: a real win
    assert better.promoted and not better.tied and "beats champion v1" in better.decision
    assert str(client.get_model_version_by_alias("har-x-all", CHAMPION).version) == "4"


def test_a_tie_on_a_loss_keeps_the_champion_too(client) -> None:
    _version(client, "har-y-all", 0.31, key="test/loss")
    tie = _version(client, "har-y-all", 0.31 - TIE_TOLERANCE / 2, key="test/loss")  # lower, but a tie
    assert tie.tied and not tie.promoted
    lower = _version(client, "har-y-all", 0.30, key="test/loss")
    assert lower.promoted and "beats champion v1" in lower.decision
