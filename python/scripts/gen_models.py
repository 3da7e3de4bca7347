#!/usr/bin/env python3
"""Writes gaia/models.py from the server's OpenAPI document (docs/openapi.json).

Every schema of the document's components becomes a TypedDict (objects), a Literal (enums of
names) or an alias (other shapes), so the client's types are the server's wire types, checked
by mypy. The test suite regenerates the module and fails when the file differs, so the client
cannot drift from the server:

    python/.venv/bin/python python/scripts/gen_models.py          # rewrite gaia/models.py
    python/.venv/bin/python python/scripts/gen_models.py --check  # exit 1 if it is stale
"""
from __future__ import annotations

import json
import keyword
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DOC = HERE.parent.parent / "docs" / "openapi.json"
OUT = HERE.parent / "gaia" / "models.py"

HEADER = '''"""The server's wire types, generated from its OpenAPI document (docs/openapi.json) by
python/scripts/gen_models.py. Do not edit: run the script after the server's types change (a
test fails until the two agree).

Objects are TypedDicts: the client hands the server's JSON answers back as they are, and mypy
knows their fields. Fields the server may leave out are ``NotRequired``.
"""
from __future__ import annotations

from typing import Any, Dict, List, Literal, Optional, Tuple, TypedDict, Union

from typing_extensions import NotRequired

'''


def ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def is_null(s: Any) -> bool:
    return isinstance(s, dict) and s.get("type") == "null"


def py_type(s: Any) -> str:
    """The Python type of a schema, as annotation text."""
    if s is True or s == {}:
        return "Any"
    if not isinstance(s, dict):
        return "Any"
    if "$ref" in s:
        return ref_name(s["$ref"])
    if "const" in s:
        return f"Literal[{json.dumps(s['const'])}]"
    if "enum" in s:
        return "Literal[" + ", ".join(json.dumps(v) for v in s["enum"]) + "]"
    for key in ("oneOf", "anyOf"):
        if key in s:
            options = s[key]
            if all(isinstance(o, dict) and ("const" in o or "enum" in o) for o in options):
                names = [v for o in options for v in ([o["const"]] if "const" in o else o["enum"])]
                return "Literal[" + ", ".join(json.dumps(v) for v in names) + "]"
            nullable = any(is_null(o) for o in options)
            types = [py_type(o) for o in options if not is_null(o)]
            inner = types[0] if len(types) == 1 else "Union[" + ", ".join(types) + "]"
            return f"Optional[{inner}]" if nullable else inner
    t = s.get("type")
    if isinstance(t, list):
        rest = [x for x in t if x != "null"]
        inner = py_type({**s, "type": rest[0] if len(rest) == 1 else rest})
        return f"Optional[{inner}]" if "null" in t else inner
    if t == "integer":
        return "int"
    if t == "number":
        return "float"
    if t == "string":
        return "str"
    if t == "boolean":
        return "bool"
    if t == "array":
        if "prefixItems" in s:
            return "Tuple[" + ", ".join(py_type(i) for i in s["prefixItems"]) + "]"
        return f"List[{py_type(s.get('items', True))}]"
    if t == "object":
        extra = s.get("additionalProperties", True)
        return f"Dict[str, {py_type(extra)}]"
    return "Any"


def doc_lines(text: str | None, indent: str) -> list[str]:
    if not text:
        return []
    text = " ".join(text.split()).replace('"""', "'''").replace("\\", "\\\\")
    return [f'{indent}"""{text}"""']


def model(name: str, s: dict[str, Any]) -> list[str]:
    props = s.get("properties")
    if s.get("type") == "object" and props is not None:
        required = set(s.get("required", []))
        fields = []
        for field, fs in props.items():
            t = py_type(fs)
            fields.append((field, t if field in required else f"NotRequired[{t}]"))
        if any(keyword.iskeyword(f) or not f.isidentifier() for f, _ in fields):
            body = ", ".join(f"{json.dumps(f)}: {t}" for f, t in fields)
            return [f'{name} = TypedDict("{name}", {{{body}}})']
        out = [f"class {name}(TypedDict):"]
        out += doc_lines(s.get("description"), "    ")
        for field, t in fields:
            out.append(f"    {field}: {t}")
            out += doc_lines(props[field].get("description"), "    ")
        if len(out) == 1:
            out.append("    pass")
        return out
    out = [f"{name} = {py_type(s)}"]
    out += doc_lines(s.get("description"), "")
    return out


def generate(doc: dict[str, Any]) -> str:
    schemas = doc["components"]["schemas"]
    # Aliases are evaluated when the module loads, class annotations are not (lazy strings):
    # classes first, then the aliases, each after the aliases it names.
    aliases, classes = [], []
    for name in sorted(schemas):
        s = schemas[name]
        (classes if s.get("type") == "object" and "properties" in s else aliases).append(name)
    ordered: list[str] = []

    def visit(name: str, stack: tuple[str, ...] = ()) -> None:
        if name in ordered or name in stack:
            return
        text = json.dumps(schemas[name])
        for other in aliases:
            if other != name and f'"#/components/schemas/{other}"' in text:
                visit(other, stack + (name,))
        ordered.append(name)

    for name in aliases:
        visit(name)
    parts = [HEADER.rstrip("\n"), ""]
    parts.append(f"OPENAPI_VERSION = {json.dumps(doc['info']['version'])}")
    parts.append('"""The server version whose document these types come from."""')
    parts.append(f"PROTOCOL_VERSION = {doc['info']['x-gaia-protocol']}")
    parts.append('"""The wire protocol version the client speaks (the x-gaia-protocol header)."""')
    for name in classes + ordered:
        parts.append("")
        parts.append("")
        parts.extend(model(name, schemas[name]))
    parts.append("")
    names = ["OPENAPI_VERSION", "PROTOCOL_VERSION"] + sorted(schemas)
    parts.append("__all__ = [")
    parts.extend(f"    {json.dumps(n)}," for n in names)
    parts.append("]")
    return "\n".join(parts) + "\n"


def main() -> int:
    doc = json.loads(DOC.read_text())
    text = generate(doc)
    if "--check" in sys.argv:
        if OUT.read_text() != text:
            print(f"{OUT} is out of date: run {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
