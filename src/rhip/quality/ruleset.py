"""Quality rules as data: one TOML file per family under ``rules/`` (or an operator's folder), read and checked.

A file holds a ``[ruleset]`` header (family, version, updated, source; timeliness adds ``buckets_hours``) and
``[[rule]]`` tables (id, resource, path, check, label_zh, label_en; optional ``when``/``when_in`` and
``params``). Reading checks the shape of everything, so a broken file stops the start with its name and the
reason (:class:`RuleFileError`) instead of scoring with half a rule set. Paths are compiled here once.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from rhip.fhir.definitions import StructureTable
from rhip.fhir.fhirpath import FhirPathCompiler, FhirPathError, Nodes

FAMILIES = ("completeness", "validity", "consistency", "timeliness")
REQUIRED_HEADER = ("family", "version", "source")
REQUIRED_RULE = ("id", "resource", "path", "check", "label_zh", "label_en")
OPTIONAL_RULE = ("when", "when_in", "params")


class RuleFileError(ValueError):
    """A rule file that cannot be used: its name and what is wrong with it."""


@dataclass(frozen=True)
class Rule:
    """One quality rule: where to look (``path``), what to check (``check`` with ``params``), and its labels."""

    id: str
    family: str
    resource: str
    path: str
    check: str
    label_zh: str
    label_en: str
    params: Mapping[str, Any] = field(default_factory=dict)
    when: str | None = None
    when_in: tuple[str, ...] | None = None
    evaluate: Callable[[dict[str, Any]], Nodes] = field(default=lambda _: [], repr=False, compare=False)
    condition: Callable[[dict[str, Any]], Nodes] | None = field(default=None, repr=False, compare=False)

    @property
    def element(self) -> str:
        """The field a failure is reported against (the rule's path)."""
        return self.path

    def applies(self, resource: dict[str, Any]) -> bool:
        """Whether the rule's ``when`` condition holds for ``resource`` (always, without one)."""
        if self.condition is None:
            return True
        values = [str(v) for v, _ in self.condition(resource) if v is not None]
        if self.when_in is None:
            return bool(values)
        return any(v in self.when_in for v in values)


@dataclass(frozen=True)
class RuleSet:
    """The rules of one family with the header of their file."""

    family: str
    version: str
    source: str
    file: str
    rules: tuple[Rule, ...]
    buckets_hours: tuple[float, ...] = ()


def shipped_rule_files() -> dict[str, str]:
    """The rule files that come with the package: family -> TOML text."""
    folder = resources.files("rhip.quality") / "rules"
    return {family: (folder / f"{family}.toml").read_text("utf-8") for family in FAMILIES}


def rule_texts(operator_dir: str | None) -> dict[str, tuple[str, str]]:
    """family -> (file name, TOML text): the shipped files, each replaced by ``<family>.toml`` of ``operator_dir``."""
    texts = {
        family: (f"rhip/quality/rules/{family}.toml", text) for family, text in shipped_rule_files().items()
    }
    if operator_dir:
        folder = Path(operator_dir)
        if not folder.is_dir():
            raise RuleFileError(f"RHIP_QUALITY__RULES_DIR={operator_dir}: no such folder")
        for file in sorted(folder.glob("*.toml")):
            if file.stem not in FAMILIES:
                raise RuleFileError(f"{file}: the file name must be one of {', '.join(FAMILIES)} (.toml)")
            texts[file.stem] = (str(file), file.read_text("utf-8"))
    return texts


def load_rulesets(table: StructureTable, operator_dir: str | None = None) -> list[RuleSet]:
    """Every family's rule set, paths compiled; RuleFileError names the file and the fault."""
    compiler = FhirPathCompiler(table)
    sets = [parse_ruleset(name, text, compiler) for name, text in rule_texts(operator_dir).values()]
    seen: dict[str, str] = {}
    for ruleset in sets:
        for rule in ruleset.rules:
            if rule.id in seen:
                raise RuleFileError(f"{ruleset.file}: rule id {rule.id} is also in {seen[rule.id]}")
            seen[rule.id] = ruleset.file
    return sets


def parse_ruleset(name: str, text: str, compiler: FhirPathCompiler) -> RuleSet:
    """One rule file's rules (``name`` is only for messages)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RuleFileError(f"{name}: not TOML ({exc})") from None
    header = data.get("ruleset")
    if not isinstance(header, dict):
        raise RuleFileError(f"{name}: no [ruleset] header")
    for key in REQUIRED_HEADER:
        if not isinstance(header.get(key), str) or not header[key]:
            raise RuleFileError(f"{name}: [ruleset] needs {key}")
    family = header["family"]
    if family not in FAMILIES:
        raise RuleFileError(f"{name}: family {family!r} is not one of {', '.join(FAMILIES)}")
    raw_rules = data.get("rule")
    if not isinstance(raw_rules, list) or not raw_rules:
        raise RuleFileError(f"{name}: no [[rule]] tables")
    rules = tuple(_rule(name, family, raw, compiler) for raw in raw_rules)
    buckets = tuple(float(h) for h in header.get("buckets_hours", ()))
    if buckets != tuple(sorted(set(buckets))) or any(h <= 0 for h in buckets):
        raise RuleFileError(f"{name}: buckets_hours must be positive and increasing")
    return RuleSet(family, header["version"], header["source"], name, rules, buckets)


def _rule(name: str, family: str, raw: Any, compiler: FhirPathCompiler) -> Rule:
    if not isinstance(raw, dict):
        raise RuleFileError(f"{name}: a [[rule]] is not a table")
    where = f"{name}: rule {raw.get('id', '?')}"
    for key in REQUIRED_RULE:
        if not isinstance(raw.get(key), str) or not raw[key]:
            raise RuleFileError(f"{where}: needs {key} (text)")
    unknown = set(raw) - set(REQUIRED_RULE) - set(OPTIONAL_RULE)
    if unknown:
        raise RuleFileError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
    params = raw.get("params", {})
    if not isinstance(params, dict):
        raise RuleFileError(f"{where}: params must be a table")
    when_in = raw.get("when_in")
    if when_in is not None and (
        not isinstance(when_in, list) or not all(isinstance(v, str) for v in when_in)
    ):
        raise RuleFileError(f"{where}: when_in must be a list of texts")
    if when_in is not None and "when" not in raw:
        raise RuleFileError(f"{where}: when_in needs when")
    evaluate = _compile(where, raw["path"], raw["resource"], compiler)
    condition = _compile(where, raw["when"], raw["resource"], compiler) if "when" in raw else None
    return Rule(
        id=raw["id"],
        family=family,
        resource=raw["resource"],
        path=raw["path"],
        check=raw["check"],
        label_zh=raw["label_zh"],
        label_en=raw["label_en"],
        params=params,
        when=raw.get("when"),
        when_in=tuple(when_in) if when_in is not None else None,
        evaluate=evaluate,
        condition=condition,
    )


def _compile(
    where: str, expression: Any, resource: str, compiler: FhirPathCompiler
) -> Callable[[dict[str, Any]], Nodes]:
    if not isinstance(expression, str) or not expression.startswith(f"{resource}."):
        raise RuleFileError(f"{where}: the path {expression!r} must start with {resource}.")
    try:
        return compiler.compile(expression)
    except FhirPathError as exc:
        raise RuleFileError(f"{where}: the path {expression!r} is not supported FHIRPath ({exc})") from None


def rules_by_type(sets: Iterable[RuleSet]) -> dict[str, tuple[Rule, ...]]:
    """resource type -> its rules, in family order then file order."""
    found: dict[str, list[Rule]] = {}
    for ruleset in sets:
        for rule in ruleset.rules:
            found.setdefault(rule.resource, []).append(rule)
    return {k: tuple(v) for k, v in found.items()}
