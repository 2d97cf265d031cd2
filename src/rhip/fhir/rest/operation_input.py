"""Reading an operation's invocation: the parameters of its URL and of a POST's ``Parameters`` body.

The ``in`` parameters of an operation's OperationDefinition are the only names :func:`operation_input` lets
it take; anything else is refused (400) rather than ignored, so a misspelt parameter is never silently
dropped. Shared by the capabilities that add operations (the resident index, terminology).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from rhip.core.errors import InvalidRequest, NotAcceptable
from rhip.fhir.rest.http import JSON_TYPES, json_body
from rhip.fhir.rest.messages import FhirRequest

# Parameters the FHIR service reads from the URL itself (the _format of a body is checked here).
SERVICE_PARAMS = frozenset({"_format", "_pretty"})


def inputs(op: Mapping[str, Any]) -> frozenset[str]:
    """The names of an operation's ``in`` parameters."""
    return frozenset(p["name"] for p in op["parameter"] if p["use"] == "in")


@dataclass(frozen=True)
class OperationInput:
    """The parameters of one invocation by name: text values, and resources (``$match``'s Patient)."""

    code: str
    values: dict[str, list[str]]
    resources: dict[str, list[Any]]

    def one(self, name: str) -> str | None:
        """A parameter given at most once (None when absent or empty)."""
        found = [v for v in self.values.get(name, []) if v.strip()]
        if len(found) > 1:
            raise InvalidRequest(f"${self.code} takes '{name}' once", expression=[name])
        return found[0].strip() if found else None

    def required(self, name: str) -> str:
        """A parameter that must be given once."""
        value = self.one(name)
        if value is None:
            raise InvalidRequest(f"${self.code} needs the parameter '{name}'", expression=[name])
        return value

    def many(self, name: str) -> list[str]:
        """A repeatable parameter's values (comma-separated values split)."""
        return [p.strip() for v in self.values.get(name, []) for p in v.split(",") if p.strip()]

    def integer(self, name: str, default: int, lowest: int, highest: int) -> int:
        """A whole number; more than ``highest`` is ``highest``, less than ``lowest`` an error."""
        text = self.one(name)
        if text is None:
            return default
        try:
            value = int(text)
        except ValueError:
            raise InvalidRequest(f"'{name}' must be a whole number", expression=[name]) from None
        if value < lowest:
            raise InvalidRequest(f"'{name}' must be at least {lowest}", expression=[name])
        return min(value, highest)

    def boolean(self, name: str) -> bool:
        """A true/false parameter (false when absent)."""
        text = self.one(name)
        if text not in (None, "true", "false"):
            raise InvalidRequest(f"'{name}' must be true or false", expression=[name])
        return text == "true"

    def resource(self, name: str) -> dict[str, Any]:
        """A resource parameter that must be given once."""
        found = self.resources.get(name, [])
        if (
            len(found) != 1
            or not isinstance(found[0], dict)
            or not isinstance(found[0].get("resourceType"), str)
        ):
            raise InvalidRequest(f"${self.code} needs one '{name}' resource", expression=[name])
        return found[0]


def operation_input(req: FhirRequest, code: str, accepted: Collection[str]) -> OperationInput:
    """The parameters of the URL, and of a POST's ``Parameters`` body; any other name is refused (400)."""
    values: dict[str, list[str]] = {}
    resources: dict[str, list[Any]] = {}
    pairs = [(k, v) for k, v in req.query if k not in SERVICE_PARAMS]
    if req.method.upper() == "POST" and req.body.strip():
        body = json_body(req)
        if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
            raise InvalidRequest(f"${code} takes a Parameters resource as its body")
        entries = body.get("parameter", [])
        if not isinstance(entries, list):
            raise InvalidRequest("Parameters.parameter must be an array", expression=["Parameters.parameter"])
        for entry in entries:
            name = entry.get("name") if isinstance(entry, dict) else None
            if not isinstance(name, str):
                raise InvalidRequest("Every parameter needs a name", expression=["Parameters.parameter"])
            if "resource" in entry:
                resources.setdefault(name, []).append(entry["resource"])
            else:
                pairs.append((name, _value_text(entry, name)))
    for name, value in pairs:
        if name == "_format":
            _check_format(value)
        elif name not in accepted:
            known = ", ".join(sorted(n for n in accepted if n != "_format"))
            raise InvalidRequest(f"${code} takes {known}; not '{name}'", expression=[name])
        else:
            values.setdefault(name, []).append(value)
    return OperationInput(code, values, resources)


def _value_text(entry: Mapping[str, Any], name: str) -> str:
    """A parameter's value[x] as the text a URL would carry (an Identifier as system|value)."""
    keys = [k for k in entry if k.startswith("value")]
    if len(keys) != 1:
        raise InvalidRequest(f"Parameter '{name}' needs one value", expression=[name])
    value = entry[keys[0]]
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    if keys[0] == "valueIdentifier" and isinstance(value, dict) and isinstance(value.get("value"), str):
        system = value.get("system")
        return f"{system}|{value['value']}" if isinstance(system, str) else value["value"]
    if keys[0] == "valueReference" and isinstance(value, dict) and isinstance(value.get("reference"), str):
        return str(value["reference"])
    raise InvalidRequest(f"Parameter '{name}' cannot be a {keys[0][5:]}", expression=[name])


def _check_format(value: str) -> None:
    fmt = value.replace(" ", "+").lower()
    if fmt not in ("json", *JSON_TYPES):
        raise NotAcceptable(f"_format={value} is not supported; this server speaks FHIR JSON")
