"""The winner's artifacts on its MLflow run: test metrics, confusion matrix, learning curves,
classification report, the har-lab checkpoint and the ``mlflow.pytorch`` model."""

from __future__ import annotations

import json
import tempfile
import warnings
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import torch
from mlflow.models import infer_signature

from har.metrics import scalars
from har.plots import confusion_matrix_png, learning_curves_png
from har.tracking.store import CHECKPOINT_DIR, log_metrics
from har.train.checkpoint import save_checkpoint


# -- the winner of a permutation ---------------------------------------------------------------
def log_winner(
    client,
    run_id: str,
    model,
    info: dict[str, Any],
    test: dict[str, Any],
    example,
) -> str:
    """Test metrics, confusion matrix, learning curves, classification report, the har-lab checkpoint
    and the ``mlflow.pytorch`` model (signature + input example) on the winner's run. Returns the
    logged model's URI."""

    classes = info["classes"]
    log_metrics(client, run_id, scalars(test), step=info.get("best_epoch", 0))
    with tempfile.TemporaryDirectory(prefix="har-winner-") as tmp:
        root = Path(tmp)
        save_checkpoint(root / CHECKPOINT_DIR, model, info)
        client.log_artifacts(run_id, str(root / CHECKPOINT_DIR), CHECKPOINT_DIR)
        title = f"{info['dataset']}/{info['sensors']} {info['model']} (test)"
        confusion_matrix_png(test["confusion_matrix"], classes, root / "confusion_matrix.png", title)
        learning_curves_png(info["history"], root / "learning_curves.png", title)
        (root / "classification_report.json").write_text(
            json.dumps({"per_class": test["per_class"], **scalars(test)}, indent=2) + "\n"
        )
        (root / "classification_report.txt").write_text(classification_report_text(test, classes))
        for name in (
            "confusion_matrix.png",
            "learning_curves.png",
            "classification_report.json",
            "classification_report.txt",
        ):
            client.log_artifact(run_id, str(root / name), "evaluation")
    model = model.cpu().eval()
    example = np.asarray(example, dtype=np.float32)
    with torch.no_grad():
        output = model(torch.from_numpy(example)).numpy()
    with mlflow.start_run(run_id=run_id), warnings.catch_warnings():
        # torch.export notes that nn.LSTM re-assigns its flat weights: harmless, and noise in the study log
        warnings.filterwarnings("ignore", message=".*were assigned during export.*")
        logged = mlflow.pytorch.log_model(
            model,
            name="model",
            signature=infer_signature(example, output),
            input_example=example,
            pip_requirements=[f"torch=={torch.__version__.split('+')[0]}", f"har-lab=={info['har_version']}"],
        )
    return logged.model_uri


def classification_report_text(test: dict[str, Any], classes: list[str]) -> str:
    width = max(len(c) for c in classes) + 2
    lines = [f"{'class':<{width}}precision  recall  f1      support"]
    for c in classes:
        row = test["per_class"][c]
        lines.append(
            f"{c:<{width}}{row['precision']:<11.4f}{row['recall']:<8.4f}{row['f1']:<8.4f}{row['support']}"
        )
    lines.append("")
    for key in ("test/accuracy", "test/macro_f1", "test/weighted_f1"):
        lines.append(f"{key:<{width}}{test[key]:.4f}")
    return "\n".join(lines) + "\n"
