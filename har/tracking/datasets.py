"""The data a run saw, as MLflow dataset inputs: the UI's Dataset column and its dataset filter.

Named ``<dataset>/<permutation>``, one input per split with the context ``train``, ``validation`` or
``test``, its digest the prepared data's version (the DVC md5 where DVC tracks it) and the split, its
source the prepared folder, its profile the full data version and the examples per split. Plain dicts until they are logged, so that the Tune
callback that carries them stays picklable.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlflow.entities import Dataset, DatasetInput, InputTag
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

CONTEXTS = {"train": "train", "val": "validation", "test": "test"}
HASH_CHARS = 24  # MLflow stores at most 36 characters of a digest (PostgreSQL enforces it)


def dataset_digest(data_version: str, context: str) -> str:
    """``dvc-md5:<md5>`` / ``sha256:<hex>`` -> ``<hash prefix>-<context>``: each split is its own subset of
    the prepared data (MLflow keeps one input per dataset and run, so the splits need distinct digests)."""
    return f"{data_version.split(':', 1)[-1][:HASH_CHARS]}-{context}"


def dataset_inputs(
    dataset: str,
    permutation: str,
    data_version: str,
    folder: Path,
    windows: dict[str, int],
    splits: tuple[str, ...],
) -> list[dict[str, Any]]:
    """The inputs of ``splits`` (``train``, ``val``, ``test``) of one permutation's data."""
    return [
        {
            "name": f"{dataset}/{permutation}",
            "digest": dataset_digest(data_version, CONTEXTS[split]),
            "source": json.dumps({"uri": str(Path(folder).resolve())}),
            "profile": json.dumps({"data_version": data_version, "examples": windows}),
            "context": CONTEXTS[split],
        }
        for split in splits
    ]


def log_dataset_inputs(client, run_id: str, inputs: list[dict[str, Any]]) -> None:
    if not inputs:
        return
    client.log_inputs(
        run_id,
        datasets=[
            DatasetInput(
                Dataset(i["name"], i["digest"], "local", i["source"], profile=i["profile"]),
                tags=[InputTag(MLFLOW_DATASET_CONTEXT, i["context"])],
            )
            for i in inputs
        ],
    )
