"""Command help that re-flows to the terminal: typer keeps the line breaks of a docstring's later
paragraphs, so text wrapped for the source file broke raggedly in an 80-column terminal."""

from __future__ import annotations

import inspect

import typer


def reflow(doc: str) -> str:
    """Join the lines of each paragraph; a paragraph with an indented line (an example block) or one
    marked ``\\b`` (click's keep-as-is marker) stays as written."""
    paragraphs = inspect.cleandoc(doc).split("\n\n")
    out = []
    for paragraph in paragraphs:
        lines = paragraph.split("\n")
        keep = paragraph.startswith("\b") or any(line.startswith((" ", "\t")) for line in lines)
        out.append(paragraph if keep else " ".join(line.strip() for line in lines))
    return "\n\n".join(out)


def reflow_app(app: typer.Typer) -> None:
    """Re-flow the help of every command and command group of ``app``, its sub-apps included."""
    for command in app.registered_commands:
        if command.help:
            command.help = reflow(command.help)
        elif command.callback is not None and command.callback.__doc__:
            command.help = reflow(command.callback.__doc__)
    for group in app.registered_groups:
        reflow_app(group.typer_instance)
