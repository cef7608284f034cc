"""One reader per published format. Each module defines ``Options`` (pydantic) and ``read``.

``read(root, spec, options) -> ReadResult`` turns the fetched files under ``root`` into windows;
``image_folder`` (image datasets) is prepared by :mod:`har.data.prepare_images` instead.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import ModuleType

from har.data.windows import Windows
from har.errors import BadInput

FORMATS = ("uci_hapt", "uci_har", "myogym", "opportunity", "watch", "custom", "image_folder")


@dataclass
class ReadResult:
    windows: Windows
    classes: list[str]
    notes: dict[str, object] = field(default_factory=dict)


def reader(fmt: str) -> ModuleType:
    """The reader module of format ``fmt``."""
    if fmt not in FORMATS:
        raise BadInput(f"unknown format {fmt!r} (known: {', '.join(FORMATS)})")
    return importlib.import_module(f"har.data.formats.{fmt}")
