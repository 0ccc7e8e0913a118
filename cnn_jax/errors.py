"""One-line error messages: what a CLI prints after `error: ` and a failure record keeps; a
config key worded for the caller (the command line's `data.dir=...`, Python's
`DataConfig(dir=...)`)."""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any


def first_line(error: BaseException | str | None) -> str:
    """The first non-blank line of an error's message; an exception without one gives its type
    name, an empty string stays empty."""
    text = str(error or "").strip()
    if text:
        return text.splitlines()[0].strip()
    return type(error).__name__ if isinstance(error, BaseException) else ""


# Whether the caller is the command line (experiments/ runs its commands inside
# `command_line()`), so a message tells it how to set a config key its own way.
_COMMAND_LINE: contextvars.ContextVar[bool] = contextvars.ContextVar("cnn_jax_command_line",
                                                                     default=False)
# The dataclass holding each config section's fields (a top-level key is Config's).
_SECTIONS = {"model": "ModelConfig", "optimizer": "OptimizerConfig", "data": "DataConfig",
             "train": "TrainConfig"}


@contextlib.contextmanager
def command_line() -> Iterator[None]:
    """Within it, messages name config keys as the command line sets them (`data.dir=...`)
    rather than as Python does (`DataConfig(dir=...)`)."""
    token = _COMMAND_LINE.set(True)
    try:
        yield
    finally:
        _COMMAND_LINE.reset(token)


def on_command_line() -> bool:
    """Whether the running code was called by the command line (inside `command_line()`)."""
    return _COMMAND_LINE.get()


def field_name(key: str) -> str:
    """A config key ('data.dir') named for the caller: `data.dir` on the command line,
    `DataConfig.dir` from Python."""
    if on_command_line():
        return key
    section, _, name = key.rpartition(".")
    return f"{_SECTIONS.get(section, 'Config')}.{name}"


def setting(key: str, value: Any) -> str:
    """How the caller sets config key `key` ('data.dir') to `value`: `data.dir=<folder>` on
    the command line, `DataConfig(dir=<folder>)` from Python. A string in <angle brackets> is
    a placeholder, written as it is."""
    placeholder = isinstance(value, str) and value.startswith("<")
    if on_command_line():
        words = {True: "true", False: "false", None: "null"}
        text = words[value] if value is None or isinstance(value, bool) else value
        return f"{key}={text}"
    section, _, name = key.rpartition(".")
    return f"{_SECTIONS.get(section, 'Config')}({name}={value if placeholder else repr(value)})"
