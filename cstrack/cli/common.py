"""Helpers shared by the CLI modules: argument parsing and error reporting."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from cstrack.errors import ConfigError, CSTrackError

F = TypeVar("F", bound=Callable[..., Any])


def parse_size(text: str, param: str = "--size") -> tuple[int, int]:
    """Parse ``WxH`` (e.g. ``1088x608``) into ``(width, height)``."""
    try:
        w_s, h_s = text.lower().split("x")
        w, h = int(w_s), int(h_s)
    except ValueError:
        raise ConfigError(f"{param}: expected WxH such as 1088x608, got {text!r}") from None
    if w <= 0 or h <= 0:
        raise ConfigError(f"{param}: width and height must be positive, got {text!r}")
    return w, h


def guarded(fn: F) -> F:
    """Turn a project error into a one-line message on stderr and exit status 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except CSTrackError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(code=2) from None

    return wrapper  # type: ignore[return-value]


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, sort_keys=False) + "\n")
