"""Project settings from params.yaml (``data:`` section), validated once; errors name file and key."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from har.data.registry import load_params
from har.errors import BadInput, validation_message

MIRROR_ENV = "HAR_DATA_MIRROR"


class DataSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    raw_dir: Path = Path("data/raw")
    prepared_dir: Path = Path("data/prepared")
    mirror: Path | None = None
    pins_dir: Path = Path(
        "pins"
    )  # 'har data pin' writes the user's own pins here (replacing the shipped ones)


def data_settings(params_path: Path = Path("params.yaml")) -> DataSettings:
    section = load_params(params_path).get("data") or {}
    try:
        return DataSettings.model_validate(section)
    except ValidationError as exc:
        raise BadInput(validation_message(params_path, "data", exc)) from exc


def resolve_mirror(flag: Path | None, settings: DataSettings) -> Path | None:
    """Mirror folder: --mirror flag, else $HAR_DATA_MIRROR, else params.yaml data.mirror."""
    if flag is not None:
        return flag
    env = os.environ.get(MIRROR_ENV)
    if env:
        return Path(env)
    return settings.mirror
