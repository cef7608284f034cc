"""The model zoo: ``build(name, n_channels, n_classes, window, **hparams)`` and published presets."""

from har.models import zoo  # noqa: F401  (importing it registers every architecture)
from har.models.registry import (
    build,
    count_parameters,
    defaults,
    entry,
    model_names,
    preset,
    restore_hparams,
)

__all__ = ["build", "count_parameters", "defaults", "entry", "model_names", "preset", "restore_hparams"]
