"""The context's JSON shape without DRF's per-call machinery, for the snapshot build.

``ContextSerializer(context).data`` costs ~16 ms per build of a rich customer: every
nested serializer deep-copies its declared fields each time it is instantiated (once
per payment row, subscription, alert…), and every value goes through
``get_attribute``'s generic lookup. The snapshot builder runs on the first answer's
critical path, so it converts with ``context_to_json`` instead: a converter *compiled
once* from ``ContextSerializer``'s own declared fields, so there is one definition of
the shape (the serializer, which also documents it in the OpenAPI schema) and no hand
copy to drift from it.

Exactness, rule by rule, as ``Serializer.to_representation`` does it:

* a declared field is read from a mapping by key (an attribute otherwise); a missing
  key is ``None`` when the field allows null, else an error (the output serializers
  declare no defaults and no optional fields — checked when compiling);
* a value that is ``None`` is ``None`` whatever the field;
* a nested serializer converts its value with its own fields (a list of them with
  ``many=True``), undeclared keys are dropped, declared order is kept;
* every leaf is converted by the DRF field's own ``to_representation`` — one field
  instance per declared field, bound once — so dates, datetimes (the current time
  zone, ``Z`` for UTC), choices, integers, floats and strings come out as DRF's do.
  The cheap leaves whose ``to_representation`` is a plain type call (``CharField``,
  ``IntegerField``) use the type directly.

A field type this module does not know (another serializer field class added to the
shape) fails when the module is imported, never silently.
``tests/billing_app/test_snapshots_json.py`` compares ``context_to_json`` with
``ContextSerializer(...).data`` for every demo customer and the odd shapes of the
context fixtures.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from rest_framework import serializers

from .serialize import PER_REQUEST_FIELDS, ContextSerializer

Convert = Callable[[Any], Any]

_LEAVES = (
    serializers.BooleanField,
    serializers.CharField,
    serializers.ChoiceField,
    serializers.DateField,
    serializers.DateTimeField,
    serializers.FloatField,
    serializers.IntegerField,
    serializers.JSONField,
)


def _leaf(field: serializers.Field) -> Convert:
    kind = type(field)
    if kind is serializers.CharField:
        return str  # CharField.to_representation is str(value)
    if kind is serializers.IntegerField:
        return int  # IntegerField.to_representation is int(value)
    if isinstance(field, _LEAVES):
        return field.to_representation
    raise TypeError(f"context_to_json: no converter for {kind.__name__} ({field.field_name})")


def _compile(field: serializers.Field) -> Convert:
    if isinstance(field, serializers.ListSerializer):
        assert field.child is not None
        child = _compile(field.child)
        return lambda items: [child(item) for item in items]
    if isinstance(field, serializers.Serializer):
        return _object(field, exclude=())
    if isinstance(field, serializers.ListField):
        child = _compile(field.child)
        return lambda items: [child(item) for item in items]
    return _leaf(field)


def _object(serializer: serializers.Serializer, *, exclude: tuple[str, ...]) -> Convert:
    plan: list[tuple[str, Convert, bool]] = []
    for name, field in serializer.fields.items():
        if name in exclude:
            continue
        if field.source != name or field.default is not serializers.empty or not field.required:
            raise TypeError(f"context_to_json: {name} has a source, a default or is optional")
        if field.write_only:
            continue
        plan.append((name, _compile(field), bool(field.allow_null)))

    def convert(instance: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        mapping = isinstance(instance, Mapping)
        for name, conv, allow_null in plan:
            try:
                value = instance[name] if mapping else getattr(instance, name)
            except (KeyError, AttributeError):
                if not allow_null:
                    raise
                value = None
            out[name] = None if value is None else conv(value)
        return out

    return convert


_CONTEXT = _object(ContextSerializer(), exclude=PER_REQUEST_FIELDS)


def context_to_json(context: Mapping[str, Any]) -> dict[str, Any]:
    """The context as ``ContextSerializer(context).data`` gives it, minus the per-request
    fields (``stale``, ``refreshing``, ``provider_status``, ``now``), as plain dicts."""
    return _CONTEXT(context)


__all__ = ["context_to_json"]
