"""JSON Schemas of the manifest formats, and validation against them.

Every record type (:data:`reactcli.manifest.records.RECORD_TYPES`) has a JSON Schema (draft
2020-12), derived from its dataclass (field names, types, defaults, the comments and docstrings of
the fields) plus the value rules in :data:`RULES`; ``identities.json`` and the session-to-split map
have hand-written ones (:data:`EXTRA_SCHEMAS`). The schemas are shipped as package data
(``reactcli/manifest/schemas/*.schema.json``) and copied to the repository's top-level
``manifests/schemas/`` (``python manifests/regenerate.py`` writes both;
``tests/manifest/test_schemas.py`` fails when a record class and its shipped schema differ).

Validation reads the shipped files (so an installed wheel validates what it ships) with the
``jsonschema`` package. An error is one line naming the file, the line, the field, what was
expected and what was found::

    work/manifests/pairs.jsonl:3: field 'index': expected an integer >= 0, got -1

``write_manifest`` validates every record it writes when the environment variable
``REACTCLI_VALIDATE_MANIFESTS`` is set (the test suite sets it), against the same schemas as
derived from the running code (equal to the shipped files while ``test_schemas`` passes);
``reactcli validate WORK`` checks every manifest of a work directory (:func:`validate_work`)
against the shipped files.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import gzip
import inspect
import io
import json
import os
import re
import textwrap
import tokenize
import types
import typing
from importlib import resources
from pathlib import Path
from typing import Any, Iterator

from reactcli.errors import InputError
from reactcli.manifest.records import RECORD_TYPES, Record

__all__ = ["FORMAT_VERSION", "RULES", "EXTRA_SCHEMAS", "derive_schema", "all_schemas", "load_schema",
           "check_record", "check_document", "validate_file", "validate_work", "schema_for_file",
           "validate_on_write"]

#: Version of the manifest formats (bump when a record changes incompatibly).
FORMAT_VERSION = 1
SCHEMA_URI = "https://json-schema.org/draft/2020-12/schema"
ID_PREFIX = "https://github.com/reactcli/reactcli/manifests/schemas/"

_NON_NEG = {"type": "integer", "minimum": 0}
_POS_NUM = {"type": "number", "exclusiveMinimum": 0}
_SPLIT = {"type": "string", "pattern": r"^[A-Za-z0-9_.-]+$"}

#: Value rules on top of the types: (record type, field) -> JSON Schema keywords.
RULES: dict[tuple[str, str], dict[str, Any]] = {
    ("session", "id"): {"minLength": 1},
    ("session", "duration"): {"minimum": 0},
    ("session", "fps"): {"exclusiveMinimum": 0},
    ("session", "split"): {"pattern": _SPLIT["pattern"]},
    ("participant", "person"): {"minLength": 1},
    ("clip", "id"): {"minLength": 1},
    ("clip", "index"): {"minimum": 0},
    ("clip", "start"): {"minimum": 0},
    ("clip", "end"): {"minimum": 0},
    ("clip", "fps"): {"exclusiveMinimum": 0},
    ("clip", "num_frames"): {"minimum": 1},
    ("clip", "split"): {"pattern": _SPLIT["pattern"]},
    ("pair", "id"): {"pattern": r"^[A-Za-z0-9_.-]+/[0-9]+$"},
    ("pair", "split"): {"pattern": _SPLIT["pattern"]},
    ("pair", "index"): {"minimum": 0},
    ("pair", "row"): {"minimum": 0},
    ("pair", "speaker"): {"minLength": 1},
    ("pair", "listener"): {"minLength": 1},
    ("array", "fps"): {"exclusiveMinimum": 0},
    ("array", "shape"): {"items": _NON_NEG},
    ("array", "key"): {"minLength": 1},
    ("array", "store"): {"minLength": 1},
    ("appropriate", "split"): {"pattern": _SPLIT["pattern"]},
    ("appropriate", "index"): {"minimum": 0},
    ("appropriate", "appropriate"): {"items": _NON_NEG},
    ("generated", "split"): {"pattern": _SPLIT["pattern"]},
    ("generated", "index"): {"minimum": 0},
    ("generated", "num_samples"): {"minimum": 1},
}

#: Which record type each manifest file of a work directory holds (others: by their ``type``).
FILE_TYPES: tuple[tuple[str, str], ...] = (
    (r"sessions\.jsonl(\.gz)?$", "session"),
    (r"clips\.jsonl(\.gz)?$", "clip"),
    (r"pairs\.jsonl(\.gz)?$", "pair"),
    (r"arrays\.jsonl(\.gz)?$", "array"),
    (r"appropriate_[^/]+\.jsonl(\.gz)?$", "appropriate"),
    (r"generated-[^/]+\.jsonl(\.gz)?$", "generated"),
)

EXTRA_SCHEMAS: dict[str, dict[str, Any]] = {
    "identities": {
        "title": "identities.json",
        "description": "Who is who (manifests/identities.json, `prepare --identities`): keys are "
                       "participants <site>/<session>/<person> or clip ids, values identity names.",
        "type": "object",
        "propertyNames": {"minLength": 1, "pattern": r"\S"},
        "additionalProperties": {"type": "string", "minLength": 1, "pattern": r"\S"},
    },
    "split-map": {
        "title": "session-to-split map",
        "description": "The split of each raw session (`reactcli clip --split-map FILE`): keys are "
                       "session ids <site>/<session> (e.g. NoXI/001_2016-03-17_Paris, "
                       "RECOLA/group-1) or bare session folder names, values split names. The same "
                       "map as CSV: a header `session,split` and one row per session.",
        "type": "object",
        "minProperties": 1,
        "propertyNames": {"minLength": 1, "pattern": r"^[^\s].*[^\s]$|^[^\s]$"},
        "additionalProperties": _SPLIT,
    },
}


# ------------------------------------------------------------------------------ derivation
def _field_docs(cls: type) -> dict[str, str]:
    """The comment on a field's line, or the docstring under it, from the class source."""
    try:
        src = inspect.getsource(cls)
    except (OSError, TypeError):  # pragma: no cover - no source (frozen)
        return {}
    src = textwrap.dedent(src)
    comments: dict[int, str] = {}
    for tok in tokenize.generate_tokens(io.StringIO(src).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = tok.string.lstrip("#").strip()
    docs: dict[str, str] = {}
    body = ast.parse(src).body[0].body  # type: ignore[attr-defined]
    for k, node in enumerate(body):
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            name = node.target.id
            nxt = body[k + 1] if k + 1 < len(body) else None
            if isinstance(nxt, ast.Expr) and isinstance(getattr(nxt, "value", None), ast.Constant) \
                    and isinstance(nxt.value.value, str):
                docs[name] = " ".join(inspect.cleandoc(nxt.value.value).split())
            elif node.lineno in comments:
                docs[name] = comments[node.lineno]
    return docs


def _type_schema(tp: Any, nested: dict[str, type]) -> dict[str, Any]:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        sub = _type_schema(inner[0], nested) if len(inner) == 1 else {"anyOf": [_type_schema(a, nested) for a in inner]}
        if type(None) in args:
            if set(sub) == {"type"} and isinstance(sub["type"], str):
                return {"type": [sub["type"], "null"]}
            return {"anyOf": [sub, {"type": "null"}]}
        return sub
    if tp is str:
        return {"type": "string"}
    if tp is bool:
        return {"type": "boolean"}
    if tp is int:
        return {"type": "integer"}
    if tp is float:
        return {"type": "number"}
    if origin is list:
        return {"type": "array", "items": _type_schema(args[0], nested) if args else {}}
    if origin is dict:
        return {"type": "object", "additionalProperties": _type_schema(args[1], nested) if args else {}}
    if isinstance(tp, type) and issubclass(tp, Record):
        return {"$ref": f"#/$defs/{tp.record_type}"}
    return {}


def _record_body(cls: type, defs: dict[str, Any], inner: bool = False) -> dict[str, Any]:
    """The object schema of a record; ``inner``: a record nested in another, whose ``type`` tag
    is optional (``dataclasses.asdict`` writes nested records without it)."""
    tag = cls.record_type
    hints = typing.get_type_hints(cls)
    docs = _field_docs(cls)
    nested = getattr(cls, "nested", {})
    props: dict[str, Any] = {"type": {"const": tag, "description": "record type tag" + (
        " (optional in a nested record)" if inner else " (first key of each line)")}}
    required = [] if inner else ["type"]
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if f.name in nested:
            sub = nested[f.name]
            defs[sub.record_type] = _record_body(sub, defs, inner=True)
        schema = _type_schema(tp, nested)
        rule = RULES.get((tag, f.name))
        if rule:
            if "anyOf" in schema:
                schema = {"anyOf": [{**s, **rule} if s.get("type") != "null" else s for s in schema["anyOf"]]}
            else:
                schema = {**schema, **rule}
        if f.name in docs:
            schema = {"description": docs[f.name], **schema}
        if f.default is not dataclasses.MISSING:
            schema["default"] = f.default
        elif f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            schema["default"] = f.default_factory()  # type: ignore[misc]
        else:
            required.append(f.name)
        props[f.name] = schema
    doc = " ".join(inspect.cleandoc(cls.__doc__ or "").split())
    return {"title": f"{tag} record", "description": doc, "type": "object", "properties": props,
            "required": required, "additionalProperties": False}


def derive_schema(cls: type) -> dict[str, Any]:
    """The JSON Schema of a record class (its dataclass fields, types, docs and :data:`RULES`)."""
    defs: dict[str, Any] = {}
    body = _record_body(cls, defs)
    out = {"$schema": SCHEMA_URI, "$id": f"{ID_PREFIX}{cls.record_type}.schema.json",
           "x-reactcli-format-version": FORMAT_VERSION, **body}
    if defs:
        out["$defs"] = defs
    return out


def all_schemas() -> dict[str, dict[str, Any]]:
    """``{name: schema}`` of every manifest format: the record types but nested-only ones
    (``participant`` lives inside ``session``), ``identities`` and ``split-map``."""
    nested = {sub for cls in RECORD_TYPES.values() for sub in getattr(cls, "nested", {}).values()}
    out = {tag: derive_schema(cls) for tag, cls in sorted(RECORD_TYPES.items()) if cls not in nested}
    for name, body in EXTRA_SCHEMAS.items():
        out[name] = {"$schema": SCHEMA_URI, "$id": f"{ID_PREFIX}{name}.schema.json",
                     "x-reactcli-format-version": FORMAT_VERSION, **body}
    return out


def schema_text(schema: dict[str, Any]) -> str:
    """How a schema file is written (stable: sorted keys, 2-space indent, final newline)."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


# ------------------------------------------------------------------------------ validation
@functools.lru_cache(maxsize=None)
def load_schema(name: str) -> dict[str, Any]:
    """The shipped schema ``name`` (package data ``reactcli/manifest/schemas/<name>.schema.json``)."""
    try:
        text = resources.files("reactcli.manifest").joinpath("schemas", f"{name}.schema.json").read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"no manifest schema {name!r} (known: {', '.join(sorted(_shipped()))})") from None
    return json.loads(text)


def _shipped() -> list[str]:
    folder = resources.files("reactcli.manifest").joinpath("schemas")
    return [p.name[: -len(".schema.json")] for p in folder.iterdir() if p.name.endswith(".schema.json")]


@functools.lru_cache(maxsize=None)
def _validator(name: str, shipped: bool = True):
    """A validator of the shipped schema ``name``, or (``shipped=False``) of the schema derived
    from the record classes of this code, which the writers use: the two are equal whenever
    ``tests/manifest/test_schemas.py`` passes, and a record class changed without regenerating the
    files then fails that one test rather than every writer."""
    import jsonschema

    schema = load_schema(name) if shipped else all_schemas()[name]
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema)


_TYPE_WORDS = {"integer": "an integer", "number": "a number", "string": "a string", "boolean": "true or false",
               "array": "a list", "object": "an object", "null": "null"}


def _expected(schema: dict[str, Any]) -> str:
    """What a (sub)schema wants, in words: 'an integer >= 0', 'a string matching ...'."""
    if "const" in schema:
        return json.dumps(schema["const"])
    if "anyOf" in schema:
        return " or ".join(_expected(s) for s in schema["anyOf"])
    t = schema.get("type")
    words = " or ".join(_TYPE_WORDS.get(x, x) for x in (t if isinstance(t, list) else [t])) if t else "a value"
    bounds = []
    if "minimum" in schema:
        bounds.append(f">= {schema['minimum']}")
    if "exclusiveMinimum" in schema:
        bounds.append(f"> {schema['exclusiveMinimum']}")
    if "minLength" in schema:
        bounds.append("non-empty" if schema["minLength"] == 1 else f"of length >= {schema['minLength']}")
    if "pattern" in schema:
        bounds.append(f"matching {schema['pattern']}")
    if "items" in schema and isinstance(schema["items"], dict) and schema["items"]:
        bounds.append(f"of {_expected(schema['items']).replace('an ', '').replace('a ', '')}s")
    return " ".join([words] + bounds)


def _describe(err) -> str:
    where = "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if k else str(p))
                    for k, p in enumerate(err.absolute_path))
    got = json.dumps(err.instance)
    if len(got) > 80:
        got = got[:77] + "..."
    if err.validator == "required":
        missing = re.findall(r"'([^']+)' is a required property", err.message)
        field = f"{where}.{missing[0]}" if where and missing else (missing[0] if missing else where)
        return f"field {field!r}: missing (required)"
    if err.validator == "additionalProperties" and isinstance(err.instance, dict):
        known = set((err.schema.get("properties") or {}))
        extra = sorted(set(err.instance) - known)
        if err.schema.get("properties") is not None:
            return (f"unexpected field {extra[0] if extra else '?'!r}{' in ' + repr(where) if where else ''} "
                    f"(expected only: {', '.join(sorted(known))})")
    if err.validator == "propertyNames":
        return f"key {json.dumps(err.instance)}: expected {_expected(err.validator_value)}"
    if not where:
        return f"expected {_expected(err.schema)}, got {got}"
    return f"field {where!r}: expected {_expected(err.schema)}, got {got}"


def check_document(data: Any, name: str, where: str, shipped: bool = True) -> None:
    """Raise :class:`InputError` ``"<where>: <field>: expected ..., got ..."`` unless ``data`` is
    valid under the shipped schema ``name``."""
    import jsonschema

    validator = _validator(name, shipped)
    err = jsonschema.exceptions.best_match(validator.iter_errors(data))
    if err is not None:
        raise InputError(f"{where}: {_describe(err)}")


def check_record(data: Any, where: str, expected: str | None = None, shipped: bool = True) -> str:
    """Validate one manifest record (a decoded JSON line) against the schema of its ``type`` (or
    of ``expected``, the type its file must hold); returns its type. ``shipped=False``: against
    the schema derived from this code's record classes (see :func:`_validator`)."""
    if not isinstance(data, dict):
        raise InputError(f"{where}: expected a JSON object (a record), got {json.dumps(data)[:60]}")
    tag = data.get("type")
    if expected is not None and tag != expected:
        raise InputError(f"{where}: field 'type': expected {json.dumps(expected)}, got {json.dumps(tag)}")
    if tag not in RECORD_TYPES:
        raise InputError(f"{where}: field 'type': expected one of {', '.join(sorted(RECORD_TYPES))}, "
                         f"got {json.dumps(tag)}")
    check_document(data, tag, where, shipped)
    return tag


def validate_on_write() -> bool:
    """Whether ``write_manifest`` validates what it writes (``REACTCLI_VALIDATE_MANIFESTS`` set)."""
    return os.environ.get("REACTCLI_VALIDATE_MANIFESTS", "") not in ("", "0")


def schema_for_file(path: str | os.PathLike) -> str | None:
    """The record type a manifest file must hold, by its name (None: any, by its ``type``)."""
    name = Path(path).name
    for pattern, tag in FILE_TYPES:
        if re.match(pattern, name):
            return tag
    return None


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    opener = (lambda: io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")) if path.name.endswith(".gz") \
        else (lambda: open(path, encoding="utf-8"))
    try:
        with opener() as fh:
            for lineno, line in enumerate(fh, 1):
                yield lineno, line
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise InputError(f"{path}: cannot read the manifest ({exc})") from None


def validate_file(path: str | os.PathLike) -> dict[str, int]:
    """Validate a JSONL manifest (every line) or ``identities.json``; returns ``{type: records}``.

    Raises :class:`InputError` ``"<file>:<line>: field 'x': expected ..., got ..."`` at the first
    bad line."""
    path = Path(path)
    if path.name == "identities.json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"{path}: not valid JSON ({exc})") from None
        check_document(data, "identities", str(path))
        return {"identities": len(data)}
    expected = schema_for_file(path)
    counts: dict[str, int] = {}
    for lineno, line in _lines(path):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno})") from None
        tag = check_record(data, where, expected)
        counts[tag] = counts.get(tag, 0) + 1
    return counts


def validate_work(work: str | os.PathLike) -> dict[str, dict[str, int]]:
    """Validate every manifest of a work directory (``WORK/manifests/*.jsonl[.gz]`` and
    ``identities.json``) and the items' references: every pair's speaker and listener is a clip of
    ``clips.jsonl`` and every split's item indices are 0..n-1. Returns ``{file: {type: records}}``;
    raises :class:`InputError` naming the first problem."""
    work = Path(work)
    mdir = work / "manifests"
    if not mdir.is_dir():
        raise InputError(f"{mdir}: no manifests folder (is {work} a reactcli work directory?)")
    files = sorted(p for p in mdir.iterdir() if p.is_file() and (p.name.endswith((".jsonl", ".jsonl.gz"))
                                                                  or p.name == "identities.json"))
    if not files:
        raise InputError(f"{mdir}: no manifests (*.jsonl) to validate")
    report = {p.name: validate_file(p) for p in files}
    clips_path, pairs_path = mdir / "clips.jsonl", mdir / "pairs.jsonl"
    if clips_path.is_file() and pairs_path.is_file():
        clip_ids = {json.loads(line)["id"] for _, line in _lines(clips_path) if line.strip()}
        indices: dict[str, list[int]] = {}
        for lineno, line in _lines(pairs_path):
            if not line.strip():
                continue
            rec = json.loads(line)
            for role in ("speaker", "listener"):
                if rec[role] not in clip_ids:
                    raise InputError(f"{pairs_path}:{lineno}: field {role!r}: expected a clip id of "
                                     f"{clips_path.name}, got {json.dumps(rec[role])}")
            indices.setdefault(rec["split"], []).append(rec["index"])
        for split, idx in indices.items():
            if sorted(idx) != list(range(len(idx))):
                raise InputError(f"{pairs_path}: items of split {split!r}: expected indices 0..{len(idx) - 1}, "
                                 f"got {sorted(idx)[:8]}{'...' if len(idx) > 8 else ''}")
    return report
