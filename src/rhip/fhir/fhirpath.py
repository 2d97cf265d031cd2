"""A compiled FHIRPath subset: the part the R4 SearchParameter expressions use.

Search indexing evaluates ~15 expressions on every write, so expressions are parsed once into closures
over typed node lists. A node is ``(value, fhir_type)``; navigation knows element types from the
structure table, so choice elements (``Observation.value``) resolve to their concrete types
(``valueQuantity`` → ``Quantity``). Supported: paths, ``|``, ``[n]``, ``as``/``is`` (operator and function
forms), ``ofType()``, ``where()`` with equality, ``resolve() is T``, ``exists()``, ``first()``, ``not()``,
``extension('url')``, ``and``/``or``, ``=``/``!=``, string/boolean literals and ``%resource``.
Anything else raises :class:`FhirPathError` at compile time, which the table tests check for every
official expression.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rhip.fhir.definitions import PRIMITIVE_TYPES, StructureTable

Node = tuple[Any, str]
Nodes = list[Node]
Evaluator = Callable[[Nodes, Node], Nodes]  # (focus, %resource) → result

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^'\\]|\\.)*')|(?P<num>\d+(?:\.\d+)?)|(?P<op>!=|[|.()\[\]=,])"
    r"|(?P<var>%[A-Za-z]+)|(?P<id>[A-Za-z_][A-Za-z0-9_]*|`[^`]+`))"
)
# FHIR datatypes that are specialisations of another for is/as purposes.
_SUPERTYPES = {
    "Age": "Quantity",
    "Count": "Quantity",
    "Distance": "Quantity",
    "Duration": "Quantity",
    "MoneyQuantity": "Quantity",
    "SimpleQuantity": "Quantity",
    "code": "string",
    "id": "string",
    "markdown": "string",
    "uri": "string",
    "url": "uri",
    "canonical": "uri",
    "oid": "uri",
    "uuid": "uri",
    "unsignedInt": "integer",
    "positiveInt": "integer",
}


class FhirPathError(ValueError):
    """The expression is outside the supported subset or malformed."""


def normalize_type_name(name: str) -> str:
    """FHIRPath lets system types be capitalised (``DateTime``); map them to FHIR type names."""
    name = name.removeprefix("FHIR.").removeprefix("System.")
    lowered = name[:1].lower() + name[1:]
    return lowered if lowered in PRIMITIVE_TYPES else name


def is_type(actual: str, wanted: str) -> bool:
    """Whether a node of type ``actual`` is a ``wanted`` (with datatype specialisation)."""
    cursor: str | None = actual
    while cursor:
        if cursor == wanted:
            return True
        cursor = _SUPERTYPES.get(cursor)
    return False


def reference_type(reference: Any, resource: Node | None) -> str | None:
    """The resource type a Reference points at, when the reference or its ``type`` tells."""
    if not isinstance(reference, dict):
        return None
    ref = reference.get("reference")
    if isinstance(ref, str):
        if ref.startswith("#") and resource is not None and isinstance(resource[0], dict):
            for contained in resource[0].get("contained", ()):
                if isinstance(contained, dict) and contained.get("id") == ref[1:]:
                    rt = contained.get("resourceType")
                    return rt if isinstance(rt, str) else None
            return None
        parts = ref.split("?", 1)[0].split("/")
        if len(parts) >= 4 and parts[-2] == "_history":
            parts = parts[:-2]
        if len(parts) >= 2 and parts[-2][:1].isupper():
            return parts[-2]
    rtype = reference.get("type")
    return rtype if isinstance(rtype, str) else None


@dataclass
class _Parser:
    tokens: list[tuple[str, str]]
    pos: int = 0

    def peek(self, offset: int = 0) -> tuple[str, str]:
        i = self.pos + offset
        return self.tokens[i] if i < len(self.tokens) else ("eof", "")

    def take(self, kind: str | None = None, value: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if (kind and tok[0] != kind) or (value and tok[1] != value):
            raise FhirPathError(f"expected {value or kind}, found {tok[1] or 'end'!r}")
        self.pos += 1
        return tok


def _tokenize(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise FhirPathError(f"cannot read {text[pos : pos + 20]!r}")
        pos = m.end()
        kind = m.lastgroup or ""
        value = m.group(kind)
        if kind == "id" and value.startswith("`"):
            value = value[1:-1]
        out.append((kind, value))
    return out


class FhirPathCompiler:
    """Compiles expressions against one structure table."""

    def __init__(self, table: StructureTable) -> None:
        self.table = table

    def compile(self, expression: str) -> Callable[[dict[str, Any]], Nodes]:
        """Compile an expression into ``resource → [(value, type)]``."""
        parser = _Parser(_tokenize(expression))
        ev = self._expr(parser)
        if parser.peek()[0] != "eof":
            raise FhirPathError(f"unexpected {parser.peek()[1]!r} in {expression!r}")

        def run(resource: dict[str, Any]) -> Nodes:
            root: Node = (resource, str(resource.get("resourceType", "")))
            return ev([root], root)

        return run

    def compile_relative(self, expression: str) -> Evaluator:
        """Compile an expression evaluated on a given focus (composite components)."""
        parser = _Parser(_tokenize(expression))
        ev = self._expr(parser)
        if parser.peek()[0] != "eof":
            raise FhirPathError(f"unexpected {parser.peek()[1]!r} in {expression!r}")
        return ev

    # -- grammar: or > and > equality > union > type > path -------------------------------------
    def _expr(self, p: _Parser) -> Evaluator:
        left = self._and(p)
        while p.peek() == ("id", "or"):
            p.take()
            right = self._and(p)
            left = _boolean_op(left, right, any)
        return left

    def _and(self, p: _Parser) -> Evaluator:
        left = self._equality(p)
        while p.peek() == ("id", "and"):
            p.take()
            right = self._equality(p)
            left = _boolean_op(left, right, all)
        return left

    def _equality(self, p: _Parser) -> Evaluator:
        left = self._union(p)
        if p.peek()[1] in ("=", "!="):
            negate = p.take()[1] == "!="
            right = self._union(p)

            def eq(focus: Nodes, res: Node, left: Evaluator = left, right: Evaluator = right) -> Nodes:
                a, b = left(focus, res), right(focus, res)
                if not a or not b:
                    return []
                same = [v for v, _ in a] == [v for v, _ in b]
                return [(same != negate, "boolean")]

            return eq
        return left

    def _union(self, p: _Parser) -> Evaluator:
        left = self._type_expr(p)
        while p.peek() == ("op", "|"):
            p.take()
            right = self._type_expr(p)

            def union(focus: Nodes, res: Node, left: Evaluator = left, right: Evaluator = right) -> Nodes:
                return left(focus, res) + right(focus, res)

            left = union
        return left

    def _type_expr(self, p: _Parser) -> Evaluator:
        left = self._path(p)
        while p.peek() in (("id", "as"), ("id", "is")):
            op = p.take()[1]
            wanted = normalize_type_name(self._type_name(p))
            left = _as_filter(left, wanted) if op == "as" else _is_test(left, wanted)
        return left

    def _type_name(self, p: _Parser) -> str:
        name = p.take("id")[1]
        while p.peek() == ("op", ".") and p.peek(1)[0] == "id":
            p.take()
            name = name + "." + p.take("id")[1]
        return name

    def _path(self, p: _Parser) -> Evaluator:
        kind, value = p.peek()
        ev: Evaluator
        if (kind, value) == ("op", "("):
            p.take()
            ev = self._expr(p)
            p.take("op", ")")
        elif kind == "str":
            p.take()
            literal = value[1:-1].replace("\\'", "'")
            ev = _constant([(literal, "string")])
        elif kind == "num":
            p.take()
            ev = _constant(
                [(float(value) if "." in value else int(value), "decimal" if "." in value else "integer")]
            )
        elif kind == "var":
            p.take()
            if value != "%resource":
                raise FhirPathError(f"variable {value} is not supported")
            ev = _resource_var
        elif kind == "id":
            if value in ("true", "false"):
                p.take()
                ev = _constant([(value == "true", "boolean")])
            elif p.peek(1) == ("op", "("):
                ev = self._function(p, _identity)
            elif value[:1].isupper() and (
                self.table.is_resource_type(value) or value in ("Resource", "DomainResource")
            ):
                p.take()
                ev = _root_filter(value)
            else:
                p.take()
                ev = self._child(_identity, value)
        else:
            raise FhirPathError(f"unexpected {value or 'end'!r}")
        while True:
            tok = p.peek()
            if tok == ("op", "."):
                p.take()
                if p.peek(1) == ("op", "("):
                    ev = self._function(p, ev)
                else:
                    ev = self._child(ev, p.take("id")[1])
            elif tok == ("op", "["):
                p.take()
                index = int(p.take("num")[1])
                p.take("op", "]")
                ev = _index(ev, index)
            else:
                return ev

    def _child(self, source: Evaluator, name: str) -> Evaluator:
        table = self.table
        # Per owner type: the JSON keys that hold this element and their concrete types.
        accessors: dict[str, tuple[tuple[str, str], ...]] = {}

        def lookup(typ: str) -> tuple[tuple[str, str], ...]:
            if not table.has_type(typ):
                found: tuple[tuple[str, str], ...] = ()
            else:
                el = table.type(typ).elements.get(name)
                if el is None:
                    found = ()
                elif el.choice:
                    found = tuple((name + t[:1].upper() + t[1:], t) for t in el.types)
                else:
                    found = ((name, el.types[0] if el.types else "string"),)
            accessors[typ] = found
            return found

        def child(focus: Nodes, res: Node) -> Nodes:
            out: Nodes = []
            for value, typ in source(focus, res):
                if value.__class__ is not dict:
                    continue
                if typ in ("Resource", "DomainResource"):
                    typ = str(value.get("resourceType", typ))
                keys = accessors.get(typ)
                if keys is None:
                    keys = lookup(typ)
                for key, t in keys:
                    v = value.get(key)
                    if v is not None:
                        if v.__class__ is list:
                            out.extend((item, t) for item in v if item is not None)
                        else:
                            out.append((v, t))
            return out

        return child

    def _function(self, p: _Parser, source: Evaluator) -> Evaluator:
        name = p.take("id")[1]
        p.take("op", "(")
        args: list[Any] = []
        if name in ("as", "is", "ofType"):
            args.append(normalize_type_name(self._type_name(p)))
        elif p.peek() != ("op", ")"):
            args.append(self._expr(p))
            while p.peek() == ("op", ","):
                p.take()
                args.append(self._expr(p))
        p.take("op", ")")
        if name in ("as", "ofType"):
            return _as_filter(source, args[0])
        if name == "is":
            return _is_test(source, args[0])
        if name == "where":
            return _where(source, args[0])
        if name == "exists":
            return _exists(source, args[0] if args else None)
        if name == "empty":
            return lambda focus, res: [(not source(focus, res), "boolean")]
        if name == "not":
            return lambda focus, res: _not(source(focus, res))
        if name == "first":
            return _index(source, 0)
        if name == "resolve":
            return _resolve(source)
        if name == "extension":
            return _extension(source, args[0])
        raise FhirPathError(f"function {name}() is not supported")


def _append(out: Nodes, value: Any, typ: str) -> None:
    if isinstance(value, list):
        out.extend((item, typ) for item in value if item is not None)
    else:
        out.append((value, typ))


def _identity(focus: Nodes, res: Node) -> Nodes:
    return focus


def _resource_var(focus: Nodes, res: Node) -> Nodes:
    return [res]


def _constant(nodes: Nodes) -> Evaluator:
    return lambda focus, res: nodes


def _root_filter(type_name: str) -> Evaluator:
    def root(focus: Nodes, res: Node) -> Nodes:
        if type_name in ("Resource", "DomainResource"):
            return focus
        return [n for n in focus if n[1] == type_name]

    return root


def _as_filter(source: Evaluator, wanted: str) -> Evaluator:
    return lambda focus, res: [n for n in source(focus, res) if is_type(n[1], wanted)]


def _is_test(source: Evaluator, wanted: str) -> Evaluator:
    def test(focus: Nodes, res: Node) -> Nodes:
        nodes = source(focus, res)
        if len(nodes) != 1:
            return []
        return [(is_type(nodes[0][1], wanted), "boolean")]

    return test


def _index(source: Evaluator, index: int) -> Evaluator:
    def pick(focus: Nodes, res: Node) -> Nodes:
        nodes = source(focus, res)
        return [nodes[index]] if index < len(nodes) else []

    return pick


def _truthy(nodes: Nodes) -> bool:
    return bool(nodes) and not (len(nodes) == 1 and nodes[0][0] is False)


def _not(nodes: Nodes) -> Nodes:
    if not nodes:
        return []
    return [(not _truthy(nodes), "boolean")]


def _boolean_op(left: Evaluator, right: Evaluator, combine: Callable[[list[bool]], bool]) -> Evaluator:
    return lambda focus, res: [(combine([_truthy(left(focus, res)), _truthy(right(focus, res))]), "boolean")]


def _where(source: Evaluator, criteria: Evaluator) -> Evaluator:
    return lambda focus, res: [n for n in source(focus, res) if _truthy(criteria([n], res))]


def _exists(source: Evaluator, criteria: Evaluator | None) -> Evaluator:
    def exists(focus: Nodes, res: Node) -> Nodes:
        nodes = source(focus, res)
        if criteria is not None:
            nodes = [n for n in nodes if _truthy(criteria([n], res))]
        return [(bool(nodes), "boolean")]

    return exists


def _resolve(source: Evaluator) -> Evaluator:
    def resolve(focus: Nodes, res: Node) -> Nodes:
        out: Nodes = []
        for value, typ in source(focus, res):
            if typ == "Reference":
                target = reference_type(value, res)
                if target:
                    out.append(({"resourceType": target}, target))
            elif typ in ("canonical", "uri") and isinstance(value, str):
                out.append(({}, "Resource"))
        return out

    return resolve


def _extension(source: Evaluator, url_ev: Evaluator) -> Evaluator:
    def ext(focus: Nodes, res: Node) -> Nodes:
        urls = {v for v, _ in url_ev(focus, res)}
        out: Nodes = []
        for value, _ in source(focus, res):
            if isinstance(value, dict):
                out.extend(
                    (e, "Extension")
                    for e in value.get("extension", ())
                    if isinstance(e, dict) and e.get("url") in urls
                )
        return out

    return ext
