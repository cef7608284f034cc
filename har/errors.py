"""Errors that the CLI turns into exit codes: 2 for bad input, 1 for runtime failures."""

from __future__ import annotations


class HarError(Exception):
    """A failure with a message meant for the user (exit code 1)."""

    exit_code = 1


class BadInput(HarError):
    """The user's input (a file, key or value) is wrong; the message says what to fix (exit code 2)."""

    exit_code = 2


def validation_message(path: object, prefix: str, exc: Exception) -> str:
    """One line naming the file and dotted key of the first pydantic validation error."""
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return f"{path}: {prefix}: {exc}"
    err = errors()[0]
    loc = ".".join(str(p) for p in err["loc"])
    where = f"{prefix}.{loc}" if loc and prefix else (loc or prefix)
    message = str(err["msg"]).removeprefix("Value error, ")
    return f"{path}: {where}: {message}" if where else f"{path}: {message}"
