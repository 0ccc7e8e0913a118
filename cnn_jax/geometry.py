"""Window geometry as plain integers (no JAX): paddings, a conv or pool output's length, and
the stride of pooling windows left unset."""

from __future__ import annotations

PADDINGS = ("VALID", "SAME")


def window_stride(window: int, stride: int | None) -> int:
    """The stride of pooling windows: `stride`, or the window when None (windows side by side)."""
    return window if stride is None else stride


def output_size(size: int, window: int, stride: int = 1, padding: str = "VALID") -> int:
    """Length of a conv or pool output along one axis (VALID floors, SAME is ceil(size/stride))."""
    if padding == "SAME":
        return -(-size // stride)
    if padding != "VALID":
        raise ValueError(f"padding={padding!r} is not one of {', '.join(PADDINGS)}")
    if window > size:
        raise ValueError(f"window={window} is larger than the {size}-pixel input")
    return (size - window) // stride + 1
