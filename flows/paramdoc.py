"""The parameters of a flow as text: what ``python -m flows FLOW --help`` prints.

Every field of the flow's parameter model (:mod:`flows.params`), nested models flattened into
dotted names (``model.weights``, ``cluster.dask_address``), with its type, default and description,
so the help can never list fewer parameters than the flow takes (``tests/flows/test_flow_help.py``).
"""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined


def _type_name(t: Any) -> str:
    origin = typing.get_origin(t)
    if origin is typing.Literal:
        return "|".join(str(a) for a in typing.get_args(t))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(t))
    if origin is not None:
        args = ", ".join(_type_name(a) for a in typing.get_args(t))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    if t is type(None):
        return "null"
    return getattr(t, "__name__", str(t))


def _model_of(t: Any) -> type[BaseModel] | None:
    """The model a field holds (directly, or as ``Model | None``), else None (lists stay leaves)."""
    if isinstance(t, type) and issubclass(t, BaseModel):
        return t
    if typing.get_origin(t) in (typing.Union, types.UnionType):
        models = [a for a in typing.get_args(t) if isinstance(a, type) and issubclass(a, BaseModel)]
        return models[0] if len(models) == 1 else None
    return None


def parameters(model: type[BaseModel], prefix: str = "") -> list[tuple[str, str, str, str]]:
    """``(dotted name, type, default, description)`` of every field, nested models flattened."""
    out: list[tuple[str, str, str, str]] = []
    for name, f in model.model_fields.items():
        dotted = f"{prefix}{name}"
        sub = _model_of(f.annotation)
        if f.default is PydanticUndefined and f.default_factory is None:
            default = "(required)"
        elif f.default_factory is not None:
            default = repr(f.default_factory()) if sub is None else ""  # type: ignore[call-arg]  # pydantic types it as taking the validated data
        else:
            default = "null" if f.default is None else repr(f.default)
        out.append((dotted, _type_name(f.annotation), default, f.description or ""))
        if sub is not None:
            out += parameters(sub, dotted + ".")
        elif typing.get_origin(f.annotation) is list:
            (item,) = typing.get_args(f.annotation)
            if isinstance(item, type) and issubclass(item, BaseModel):  # each element's fields: datasets[].name
                out += parameters(item, dotted + "[].")
    return out


def help_text(flow: str, model: type[BaseModel]) -> str:
    """The ``--help`` of one flow: its parameters, one per line, and how to set them."""
    lines = [f"usage: python -m flows {flow} [PARAMS.yaml] [--set KEY=VALUE ...]", "",
             f"parameters of {flow} ({model.__name__}); set them in PARAMS.yaml or with --set KEY=VALUE "
             "(dotted keys for nested fields, VALUE parsed as YAML):", ""]
    for name, typ, default, desc in parameters(model):
        lines.append(f"  {name}: {typ}" + (f" = {default}" if default else ""))
        if desc:
            lines.append(f"      {desc}")
    return "\n".join(lines) + "\n"
