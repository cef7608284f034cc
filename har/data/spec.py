"""Typed description of a dataset: where it comes from, what its channels and classes are, how it is cut.

The published datasets are declared in :mod:`har.data.registry`; ``params.yaml`` may override the
window, split and reader options of any of them (see :func:`har.data.registry.resolve`).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


class Source(_Strict):
    """One downloadable file of a dataset (usually the official archive)."""

    url: str
    filename: str
    sha256: str | None = Field(
        default=None, description="sha256 of the file; None where the publisher gives no checksum"
    )
    git_blob_sha1: str | None = Field(
        default=None, description="git blob id of the file where it is only published in a git repository"
    )
    note: str = ""


class WindowSpec(_Strict):
    """Sliding-window cut of continuous recordings."""

    size: int = Field(gt=0, description="samples per window")
    step: int = Field(gt=0, description="samples between window starts (size/2 = 50% overlap)")
    label: Literal["segment", "last", "majority"] = Field(
        default="segment",
        description="segment: windows lie wholly inside one labelled segment; "
        "last: label of the window's last sample; majority: most frequent label",
    )
    train_step: int | None = Field(
        default=None,
        gt=0,
        description="denser windows for training only: extra windows every train_step samples (a divisor "
        "of step) are kept for training; validation, test and held-out subjects are always scored on the "
        "step windows, so figures stay comparable. None: every window is on the step grid",
    )

    @model_validator(mode="after")
    def _train_step_divides_step(self) -> WindowSpec:
        if self.train_step is not None and (self.train_step > self.step or self.step % self.train_step):
            raise ValueError(
                f"train_step {self.train_step} must divide step {self.step} (e.g. {self.step // 2})"
            )
        return self


class SplitSpec(_Strict):
    """Subject-wise train/test split and leave-subjects-out folds."""

    rule: str = Field(description="the split in words, as published")
    test_subjects: list[int] = Field(default_factory=list)
    train_subjects: list[int] | None = Field(
        default=None, description="None: every subject not in test_subjects"
    )
    folds: list[list[int]] = Field(
        default_factory=list, description="leave-subjects-out folds (each a list of held-out subjects)"
    )

    @model_validator(mode="after")
    def _disjoint(self) -> SplitSpec:
        if self.train_subjects is not None:
            both = sorted(set(self.train_subjects) & set(self.test_subjects))
            if both:
                raise ValueError(f"subjects {both} are in both train_subjects and test_subjects")
        return self


class DatasetSpec(_Strict):
    """Everything har-lab knows about one dataset before reading it."""

    name: str
    title: str
    format: str = Field(description="reader in har.data.formats")
    homepage: str = ""
    sources: list[Source] = Field(default_factory=list)
    checksums: str | None = Field(
        default=None, description="file in har/data/checksums pinning the sha256 of the extracted files"
    )
    unpinned: list[str] = Field(
        default_factory=list,
        description="files the reader reads that no pin covers (fnmatch patterns of raw-folder paths), "
        "each with the reason in the spec's notes; 'har data info' lists them",
    )
    bundled: str | None = Field(default=None, description="folder in the repository holding the data")
    kind: Literal["windows", "images"] = Field(
        default="windows",
        description="windows: sensor recordings cut into windows; images: one folder of images per class",
    )
    citation: str
    licence: str
    rate_hz: float | None = Field(default=None, gt=0, description="sampling rate (sensor datasets)")
    channels: list[str]
    groups: dict[str, list[str]]
    classes: list[str]
    window: WindowSpec | None = Field(default=None, description="sliding-window cut (sensor datasets)")
    split: SplitSpec
    options: dict[str, object] = Field(default_factory=dict, description="reader options")
    reference_windows: dict[str, int] | None = Field(
        default=None, description="published train/test window counts to compare the prepared data with"
    )
    notes: str = ""

    @field_validator("name")
    @classmethod
    def _name_is_identifier(cls, value: str) -> str:
        if not value.replace("_", "").isalnum() or not value[0].isalpha():
            raise ValueError(f"dataset name {value!r} must be letters, digits and '_' (start with a letter)")
        return value

    @model_validator(mode="after")
    def _windows_need_rate_and_window(self) -> DatasetSpec:
        if self.kind == "windows" and (self.rate_hz is None or self.window is None):
            raise ValueError("a sensor dataset needs rate_hz and window")
        return self

    @model_validator(mode="after")
    def _groups_cover_channels(self) -> DatasetSpec:
        known = set(self.channels)
        for group, members in self.groups.items():
            unknown = [m for m in members if m not in known]
            if unknown:
                raise ValueError(f"group {group!r} names unknown channels {unknown[:3]}")
            if group in ("all",) or "+" in group:
                raise ValueError(f"group name {group!r} is reserved")
        return self
