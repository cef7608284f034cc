"""The MLflow model registry: one model ``har-<dataset>-<permutation>``, a version per winner, and a
``champion`` alias that moves only when a new version wins on the same test split; downloading a
registered version's checkpoint back (``har predict``)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
from mlflow.exceptions import MlflowException

from har.errors import BadInput, HarError
from har.tracking.store import CHECKPOINT_DIR, connect, quote, resolve_uri

CHAMPION = "champion"


TEST_KEYS = ("test/accuracy", "test/macro_f1", "test/weighted_f1", "test/loss")

# Scores are printed to four decimals: a new version within half of the last digit of the champion's score
# ties it, and a tie keeps the champion (moving the alias would change the served model for no gain).
TIE_TOLERANCE = 5e-5


def model_name(dataset: str, permutation: str) -> str:
    return f"har-{dataset}-{permutation}"


@dataclass
class Registration:
    name: str
    version: str
    promoted: bool
    decision: str
    champion_version: str
    tied: bool = False


def register(
    client,
    name: str,
    model_uri: str,
    run_id: str,
    tags: dict[str, str],
    score_key: str,
    score: float,
    test_split: str,
    rescore_champion: Callable[[Path], float] | None = None,
) -> Registration:
    """A new version of ``name``; the ``champion`` alias moves only if it beats the champion's
    ``score_key`` on the same test split by more than ``TIE_TOLERANCE`` (a tie keeps the champion; the
    champion is re-scored on this split when its own tag names another one; without
    ``rescore_champion`` it then stays)."""

    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name, tags={"har.kind": "dataset x permutation"})
    # MLflow 3 logged models (models:/m-...): a tracking server requires the model id with the source
    model_id = model_uri.removeprefix("models:/") if model_uri.startswith("models:/m-") else None
    version = client.create_model_version(
        name, model_uri, run_id=run_id, tags={k: str(v) for k, v in tags.items()}, model_id=model_id
    )
    version_id = str(version.version)
    client.set_model_version_tag(name, version_id, "test_split", test_split)
    try:
        current = client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        current = None
    higher_is_better = not score_key.endswith("loss")
    tied = False
    if current is None:
        promoted, decision = True, f"first version: champion with {score_key} {score:.4f}"
    else:
        if current.tags.get("test_split") == test_split and score_key in current.tags:
            theirs = float(current.tags[score_key])
            how = "stored"
        elif rescore_champion is not None:
            theirs = rescore_champion(download_checkpoint(f"{name}/{current.version}", client=client))
            how = "re-scored on this test split"
        else:
            theirs, how = float("inf") if higher_is_better else float("-inf"), "other test split"
        tied = abs(score - theirs) <= TIE_TOLERANCE
        better = score > theirs if higher_is_better else score < theirs
        promoted = bool(better) and not tied
        if tied:
            decision = (
                f"{score_key} {score:.4f} ties champion v{current.version} ({theirs:.4f}, {how}): "
                "a tie keeps the champion"
            )
        else:
            verb = "beats" if promoted else "does not beat"
            decision = f"{score_key} {score:.4f} {verb} champion v{current.version} ({theirs:.4f}, {how})"
    client.set_model_version_tag(name, version_id, "champion_decision", decision)
    if promoted:
        client.set_registered_model_alias(name, CHAMPION, version_id)
    champion = version_id if promoted else str(current.version)
    return Registration(name, version_id, promoted, decision, champion, tied)


def promote(client, name: str, version: str) -> None:

    try:
        client.get_model_version(name, version)
    except MlflowException as exc:
        raise BadInput(
            f"registered model {name!r} has no version {version!r} (see 'har models list')"
        ) from exc
    client.set_registered_model_alias(name, CHAMPION, version)
    client.set_model_version_tag(name, version, "champion_decision", "promoted by hand (har models promote)")


def registered_models(client) -> list[dict[str, Any]]:
    """Every har-lab registered model with its champion version, tags and version count."""

    rows = []
    for rm in client.search_registered_models(max_results=1000):
        if not rm.name.startswith("har-"):
            continue
        versions = client.search_model_versions(f"name = '{quote(rm.name)}'", max_results=10_000)
        try:
            champion = client.get_model_version_by_alias(rm.name, CHAMPION)
        except MlflowException:
            champion = None
        rows.append({"name": rm.name, "versions": len(versions), "champion": champion})
    return sorted(rows, key=lambda r: r["name"])


def parse_ref(ref: str) -> tuple[str, str | None, str | None]:
    """``name@alias`` / ``name/version`` / ``models:/...`` -> (name, alias, version)."""
    ref = ref.removeprefix("models:/")
    if "@" in ref:
        name, alias = ref.split("@", 1)
        return name, alias, None
    if "/" in ref:
        name, version = ref.rsplit("/", 1)
        return name, None, version
    return ref, CHAMPION, None


def download_checkpoint(ref: str, tracking_uri: str | None = None, client=None) -> Path:
    """The har-lab checkpoint folder of a registered model version (downloaded once, then cached)."""

    client = client or connect(resolve_uri(tracking_uri), create=False)
    name, alias, version = parse_ref(ref)
    try:
        mv = (
            client.get_model_version_by_alias(name, alias)
            if alias
            else client.get_model_version(name, version)
        )
    except MlflowException as exc:
        raise BadInput(
            f"model {ref!r}: not in the registry at {client.tracking_uri} (see 'har models list')"
        ) from exc
    if not mv.run_id:
        raise HarError(f"model {ref!r}: version {mv.version} has no source run with a har-lab checkpoint")
    cache = (
        Path(os.environ.get("HAR_CACHE", Path.home() / ".cache" / "har-lab"))
        / "models"
        / name
        / str(mv.version)
    )
    if (cache / CHECKPOINT_DIR / "checkpoint.json").is_file():
        return cache / CHECKPOINT_DIR
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix=".download-") as tmp:
        local = mlflow.artifacts.download_artifacts(
            run_id=mv.run_id, artifact_path=CHECKPOINT_DIR, dst_path=tmp, tracking_uri=client.tracking_uri
        )
        os.replace(local, cache / CHECKPOINT_DIR)
    return cache / CHECKPOINT_DIR


def champion_version(client, name: str):
    """The version ``name@champion`` points at, or None (no such model, or no champion yet)."""
    try:
        return client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None
