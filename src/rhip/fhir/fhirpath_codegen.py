"""Straight-line Python for the simple FHIRPath expressions that most search parameters are.

Indexing runs ~15 expressions per resource written. The closure interpreter in :mod:`rhip.fhir.fhirpath`
resolves element types at run time; here, for expressions whose every step has one static type
(``Observation.component.code``, ``Observation.subject.where(resolve() is Patient)``,
``(Condition.onset as Age)``), the JSON keys and types are resolved once and the expression becomes a
generated function of nested loops. Expressions outside this shape return None and keep the interpreter;
the tests check both give the same nodes on the official examples.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rhip.fhir.definitions import PRIMITIVE_TYPES, StructureTable
from rhip.fhir.fhirpath import Node, Nodes, _Parser, _tokenize, is_type, normalize_type_name, reference_type

StaticFn = Callable[[Any, Any], Nodes]  # (focus value, root resource) → nodes


@dataclass(frozen=True)
class _Step:
    kind: str  # child | as | where_resolve | where_eq | index
    arg: str = ""
    value: str = ""


class _Unsupported(Exception):
    pass


def _upper(name: str) -> str:
    return name[:1].upper() + name[1:]


class StaticCompiler:
    """Generates Python functions for statically typed FHIRPath paths."""

    def __init__(self, table: StructureTable) -> None:
        self.table = table

    def compile(self, expression: str, focus_type: str) -> StaticFn | None:
        """A generated function for ``expression`` evaluated on a node of ``focus_type``, or None."""
        try:
            parts = self._parse(expression)
            return self._generate(parts, focus_type)
        except (_Unsupported, ValueError, KeyError):
            return None

    # -- parsing into step lists ------------------------------------------------------------------
    def _parse(self, expression: str) -> list[tuple[str | None, list[_Step]]]:
        p = _Parser(_tokenize(expression))
        parts = [self._part(p)]
        while p.peek() == ("op", "|"):
            p.take()
            parts.append(self._part(p))
        if p.peek()[0] != "eof":
            raise _Unsupported
        return parts

    def _part(self, p: _Parser) -> tuple[str | None, list[_Step]]:
        root: str | None = None
        steps: list[_Step] = []
        if p.peek() == ("op", "("):
            p.take()
            root, steps = self._part(p)
            if p.peek() == ("id", "as"):
                p.take()
                steps.append(_Step("as", normalize_type_name(p.take("id")[1])))
            p.take("op", ")")
        else:
            _kind, value = p.take("id")
            if value[:1].isupper():
                root = value
            else:
                steps.append(_Step("child", value))
        while True:
            tok = p.peek()
            if tok == ("op", "."):
                p.take()
                name = p.take("id")[1]
                if p.peek() == ("op", "("):
                    steps.append(self._function(p, name))
                else:
                    steps.append(_Step("child", name))
            elif tok == ("op", "["):
                p.take()
                steps.append(_Step("index", p.take("num")[1]))
                p.take("op", "]")
            elif tok == ("id", "as"):
                p.take()
                steps.append(_Step("as", normalize_type_name(p.take("id")[1])))
            else:
                return root, steps

    def _function(self, p: _Parser, name: str) -> _Step:
        p.take("op", "(")
        if name in ("as", "ofType"):
            step = _Step("as", normalize_type_name(p.take("id")[1]))
        elif name == "where":
            if p.peek() == ("id", "resolve"):
                p.take()
                p.take("op", "(")
                p.take("op", ")")
                p.take("id", "is")
                step = _Step("where_resolve", p.take("id")[1])
            else:
                field = p.take("id")[1]
                p.take("op", "=")
                literal = p.take("str")[1][1:-1]
                step = _Step("where_eq", field, literal)
        else:
            raise _Unsupported
        p.take("op", ")")
        return step

    # -- code generation --------------------------------------------------------------------------
    def _generate(self, parts: list[tuple[str | None, list[_Step]]], focus_type: str) -> StaticFn:
        lines = ["def _fn(focus, res):", "    out = []"]
        env: dict[str, Any] = {"_reftype": reference_type}
        for root, steps in parts:
            if root is not None and root not in (focus_type, "Resource", "DomainResource"):
                continue  # a term about another type selects nothing on this one
            self._emit(lines, steps, focus_type, "focus", 1, env)
        lines.append("    return out")
        exec("\n".join(lines), env)  # noqa: S102 -- source generated from the structure table, not from input
        fn: StaticFn = env["_fn"]
        return fn

    def _keys(self, owner: str, name: str) -> list[tuple[str, str]]:
        if owner in PRIMITIVE_TYPES or not self.table.has_type(owner):
            raise _Unsupported
        el = self.table.type(owner).elements.get(name)
        if el is None:
            return []
        if el.choice:
            return [(name + _upper(t), t) for t in el.types]
        return [(name, el.types[0] if el.types else "string")]

    def _emit(
        self, lines: list[str], steps: list[_Step], typ: str, var: str, depth: int, env: dict[str, Any]
    ) -> None:
        pad = "    " * depth
        if not steps:
            lines.append(f"{pad}out.append(({var}, {typ!r}))")
            return
        step, rest = steps[0], steps[1:]
        if step.kind == "child":
            keys = self._keys(typ, step.arg)
            # A choice may continue only once an `as` right after it picks one type.
            if rest and rest[0].kind == "as":
                keys = [(k, t) for k, t in keys if is_type(t, rest[0].arg)]
                rest = rest[1:]
            if len(keys) > 1 and rest:
                raise _Unsupported
            for key, ktype in keys:
                if ktype == "Resource":
                    raise _Unsupported
                v, n = f"v{depth}", f"n{depth}"
                lines.append(f"{pad}{v} = {var}.get({key!r}) if {var}.__class__ is dict else None")
                lines.append(f"{pad}if {v} is not None:")
                lines.append(f"{pad}    for {n} in ({v} if {v}.__class__ is list else ({v},)):")
                lines.append(f"{pad}        if {n} is not None:")
                self._emit(lines, rest, ktype, n, depth + 3, env)
            return
        if step.kind == "as":
            if not is_type(typ, step.arg):
                return
            self._emit(lines, rest, typ, var, depth, env)
            return
        if step.kind == "where_resolve":
            if typ != "Reference":
                raise _Unsupported
            lines.append(f"{pad}if _reftype({var}, (res, '')) == {step.arg!r}:")
            self._emit(lines, rest, typ, var, depth + 1, env)
            return
        if step.kind == "where_eq":
            lines.append(f"{pad}if {var}.__class__ is dict and {var}.get({step.arg!r}) == {step.value!r}:")
            self._emit(lines, rest, typ, var, depth + 1, env)
            return
        raise _Unsupported


def as_root_function(fn: StaticFn) -> Callable[[dict[str, Any]], Nodes]:
    """Adapt a generated function to the ``resource → nodes`` shape of compiled expressions."""

    def run(resource: dict[str, Any]) -> Nodes:
        return fn(resource, resource)

    return run


def as_relative_function(
    fn_for_type: Callable[[str], StaticFn | None], fallback: Callable[[Nodes, Node], Nodes]
) -> Callable[[Nodes, Node], Nodes]:
    """An evaluator over typed focus nodes that uses generated code per focus type, else the interpreter."""
    cache: dict[str, StaticFn | None] = {}

    def run(focus: Nodes, res: Node) -> Nodes:
        out: Nodes = []
        for node in focus:
            typ = node[1]
            if typ not in cache:
                cache[typ] = fn_for_type(typ)
            fn = cache[typ]
            out.extend(fn(node[0], res[0]) if fn is not None else fallback([node], res))
        return out

    return run
