"""One-line error messages: what a CLI prints after `error: ` and a failure record keeps."""

from __future__ import annotations


def first_line(error: BaseException | str | None) -> str:
    """The first non-blank line of an error's message; an exception without one gives its type
    name, an empty string stays empty."""
    text = str(error or "").strip()
    if text:
        return text.splitlines()[0].strip()
    return type(error).__name__ if isinstance(error, BaseException) else ""
