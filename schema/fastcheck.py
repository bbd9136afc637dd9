"""A quick yes/no schema check that spares valid bundles the cost of importing jsonschema.

Importing jsonschema (attrs, referencing, the bundled meta-schemas) takes longer than analysing a
bundle, and almost every bundle read is valid. `compile_check` turns a schema into a predicate
that answers True only when it is sure the document is valid; it is deliberately stricter than
JSON Schema (integers must be Python ints, const/enum compare same-typed values), so False means
"not sure", and the caller then asks jsonschema, which stays the authority for every rejection and
its message. A schema using any keyword outside the small set below is not compiled at all
(`compile_check` returns None) and everything goes to jsonschema.

`$ref` is followed within the schema itself and into the other schemas handed over by their `$id`
(bundle-v2 refers to bundle-v1's payload rather than repeating it); a reference that leads anywhere
else makes the schema unsupported.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urldefrag, urljoin

from vllm_bug.formats.regex_cache import compile_cached

Check = Callable[[Any], bool]

_ANNOTATIONS = frozenset(
    {
        "$schema",
        "$id",
        "$comment",
        "$defs",
        "title",
        "description",
        "default",
        "examples",
        "deprecated",
        "readOnly",
        "writeOnly",
    }
)
_SUPPORTED = _ANNOTATIONS | frozenset(
    {
        "$ref",
        "type",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "maxItems",
        "minItems",
        "maxProperties",
        "maxLength",
        "minLength",
        "minimum",
        "maximum",
        "const",
        "enum",
        "pattern",
    }
)
_TYPES: dict[str, Check] = {
    "string": lambda v: type(v) is str,
    "integer": lambda v: type(v) is int,
    "number": lambda v: type(v) is int or type(v) is float,
    "boolean": lambda v: type(v) is bool,
    "null": lambda v: v is None,
    "object": lambda v: type(v) is dict,
    "array": lambda v: type(v) is list,
}
_SCALARS = (str, int, float, bool, type(None))


class Unsupported(Exception):
    """The schema uses something this checker does not implement."""


class _References:
    """Resolves `$ref` against the schema's own `$id` and the other schemas known by theirs."""

    def __init__(self, root: Any, others: list[Any]) -> None:
        self.documents = {doc["$id"]: doc for doc in [*others, root] if isinstance(doc, dict) and "$id" in doc}
        self.base = root.get("$id", "") if isinstance(root, dict) else ""
        self.root = root
        self.compiled: dict[str, Check] = {}
        self.resolving: set[str] = set()

    def check_for(self, ref: Any) -> Check:
        if not isinstance(ref, str):
            raise Unsupported("$ref")
        target = urljoin(self.base, ref)
        if target in self.compiled:
            return self.compiled[target]
        if target in self.resolving:
            raise Unsupported(f"recursive $ref {ref}")
        self.resolving.add(target)
        document_uri, pointer = urldefrag(target)
        document = self.documents.get(document_uri, self.root if document_uri == self.base else None)
        if document is None:
            raise Unsupported(f"$ref to an unknown document: {ref}")
        self.compiled[target] = check = _compile(_follow(document, pointer), self._within(document_uri, document))
        self.resolving.discard(target)
        return check

    def _within(self, base: str, document: Any) -> _References:
        """The same resolver, for references written inside another document (relative to its $id)."""
        inner = object.__new__(_References)
        inner.__dict__.update(self.__dict__, base=base, root=document)
        return inner


def _follow(document: Any, pointer: str) -> Any:
    node = document
    for raw in pointer.split("/")[1:] if pointer else []:
        key = raw.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or key not in node:
            raise Unsupported(f"$ref pointer {pointer}")
        node = node[key]
    return node


def compile_check(schema: Any, others: list[Any] | None = None) -> Check | None:
    """A predicate for documents valid under schema, or None when the schema is beyond this checker.

    `others`: the schemas that `$ref`s may lead into, each known by its `$id`."""
    try:
        return _compile(schema, _References(schema, others or []))
    except Unsupported:
        return None


def _compile(schema: Any, refs: _References) -> Check:
    if schema is True:
        return lambda v: True
    if schema is False:
        return lambda v: False
    if not isinstance(schema, dict):
        raise Unsupported(repr(schema)[:40])
    unknown = set(schema) - _SUPPORTED
    if unknown:
        raise Unsupported(", ".join(sorted(unknown)))
    checks: list[Check] = []
    if "$ref" in schema:
        if isinstance(schema.get("$id"), str):
            raise Unsupported("$id beside $ref")  # a new base URI for the reference: not followed here
        checks.append(refs.check_for(schema["$ref"]))
    if "type" in schema:
        checks.append(_type_check(schema["type"]))
    if "const" in schema:
        checks.append(_equals_any([schema["const"]]))
    if "enum" in schema:
        checks.append(_equals_any(list(schema["enum"])))
    checks += _string_checks(schema) + _number_checks(schema)
    checks += _object_checks(schema, refs) + _array_checks(schema, refs)
    return lambda v: all(check(v) for check in checks)


def _type_check(types: Any) -> Check:
    names = [types] if isinstance(types, str) else list(types)
    try:
        preds = [_TYPES[name] for name in names]
    except (KeyError, TypeError):
        raise Unsupported(f"type {types!r}") from None
    return lambda v: any(pred(v) for pred in preds)


def _equals_any(values: list[Any]) -> Check:
    if not all(type(value) in _SCALARS for value in values):
        raise Unsupported("const/enum of a container")
    return lambda v: any(type(v) is type(value) and v == value for value in values)


def _string_checks(schema: dict) -> list[Check]:
    out: list[Check] = []
    is_str = _TYPES["string"]
    if "maxLength" in schema:
        most = _count(schema["maxLength"])
        out.append(lambda v: not is_str(v) or len(v) <= most)
    if "minLength" in schema:
        least = _count(schema["minLength"])
        out.append(lambda v: not is_str(v) or len(v) >= least)
    if "pattern" in schema:
        rx = compile_cached(schema["pattern"])
        out.append(lambda v: not is_str(v) or rx.search(v) is not None)
    return out


def _number_checks(schema: dict) -> list[Check]:
    out: list[Check] = []
    is_num = _TYPES["number"]
    if "minimum" in schema:
        low = _number(schema["minimum"])
        out.append(lambda v: not is_num(v) or v >= low)
    if "maximum" in schema:
        high = _number(schema["maximum"])
        out.append(lambda v: not is_num(v) or v <= high)
    return out


def _object_checks(schema: dict, refs: _References) -> list[Check]:
    out: list[Check] = []
    is_obj = _TYPES["object"]
    props = schema.get("properties", {})
    if not isinstance(props, dict):
        raise Unsupported("properties")
    compiled = {name: _compile(sub, refs) for name, sub in props.items()}
    extra = _compile(schema.get("additionalProperties", True), refs)
    open_ended = schema.get("additionalProperties", True) is True
    required = list(schema.get("required", []))
    most = _count(schema["maxProperties"]) if "maxProperties" in schema else None

    def check(v: Any) -> bool:
        if not is_obj(v):
            return True
        if most is not None and len(v) > most:
            return False
        for name in required:
            if name not in v:
                return False
        for key, value in v.items():
            sub = compiled.get(key)
            if sub is not None:
                if not sub(value):
                    return False
            elif not open_ended and not extra(value):
                return False
        return True

    if compiled or required or most is not None or not open_ended:
        out.append(check)
    return out


def _array_checks(schema: dict, refs: _References) -> list[Check]:
    out: list[Check] = []
    is_list = _TYPES["array"]
    if "maxItems" in schema:
        most = _count(schema["maxItems"])
        out.append(lambda v: not is_list(v) or len(v) <= most)
    if "minItems" in schema:
        least = _count(schema["minItems"])
        out.append(lambda v: not is_list(v) or len(v) >= least)
    if "items" in schema:
        item = _compile(schema["items"], refs)
        out.append(lambda v: not is_list(v) or all(item(x) for x in v))
    return out


def _count(value: Any) -> int:
    if type(value) is not int or value < 0:
        raise Unsupported(f"count {value!r}")
    return value


def _number(value: Any) -> float:
    if type(value) not in (int, float):
        raise Unsupported(f"number {value!r}")
    return value
