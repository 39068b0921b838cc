"""The gateway's request schemas (gateway/schemas/*.py) are its own copies — the public API is
the gateway's contract, and it imports no service's modules — while each service validates
what it is sent with its own. This keeps the two in step: a field, a type, a rule or a hook
changed on one side only fails here. Where they are meant to differ, say so here."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
from marshmallow import Schema, fields

COPIES = ("panel", "notify", "polls", "feedback")


def default_of(value: Any) -> Any:
    """A callable default by what it returns (a lambda has no comparable name)."""
    return ("callable", repr(value())) if callable(value) else repr(value)


def shape_of_field(field: fields.Field) -> dict[str, Any]:
    shape: dict[str, Any] = {
        "type": type(field).__name__,
        "required": field.required,
        "allow_none": field.allow_none,
        "load_default": default_of(field.load_default),
        "validators": [getattr(v, "__qualname__", None) or repr(v) for v in field.validators],
        "metadata": dict(field.metadata),
        # custom fields (feedback's Text) keep their rules in attributes
        "extra": {k: getattr(field, k) for k in ("max_length", "nonempty") if hasattr(field, k)},
    }
    if isinstance(field, fields.Nested):
        nested = field.nested
        shape["nested"] = shape_of(nested if isinstance(nested, type) else type(nested))
        shape["many"] = field.many
    if isinstance(field, fields.List):
        shape["inner"] = shape_of_field(field.inner)
    if isinstance(field, fields.Dict):
        shape["keys"] = field.key_field and shape_of_field(field.key_field)
        shape["values"] = field.value_field and shape_of_field(field.value_field)
    return shape


def shape_of(schema: type[Schema]) -> dict[str, Any]:
    return {
        "name": schema.__name__,
        "fields": {name: shape_of_field(f) for name, f in schema._declared_fields.items()},
        "hooks": sorted(str(key) for key, names in schema._hooks.items() if names),
        "hook_methods": sorted(n for names in schema._hooks.values() for n in names),
        "unknown": schema.Meta.unknown if hasattr(schema.Meta, "unknown") else None,
    }


def schemas_in(module: Any) -> dict[str, type[Schema]]:
    return {
        name: value
        for name, value in vars(module).items()
        if isinstance(value, type) and issubclass(value, Schema) and value is not Schema
    }


@pytest.mark.parametrize("service", COPIES)
def test_the_gateway_copy_of_a_services_schemas_matches_it(service: str) -> None:
    ours = schemas_in(importlib.import_module(f"gateway.schemas.{service}"))
    theirs = schemas_in(importlib.import_module(f"services.{service}.schemas"))
    assert ours, f"gateway.schemas.{service} has no schemas"
    for name, schema in ours.items():
        assert name in theirs, f"{name}: the gateway has it, services/{service} does not"
        assert shape_of(schema) == shape_of(theirs[name]), name


def test_the_gateway_imports_no_service_schemas() -> None:
    for service in COPIES:
        module = importlib.import_module(f"gateway.schemas.{service}")
        for schema in schemas_in(module).values():
            assert schema.__module__.startswith("gateway.schemas"), schema
