"""GitHub's OpenAPI description (the subset FakeGitHub serves) and body validation against it.

Schemas are validated with ``openapi_schema_validator.OAS30Validator`` (JSON Schema draft 4 plus OpenAPI
3.0's ``nullable``, see ``_normalise`` for how GitHub's description is read); ``$ref`` s resolve inside the
subset's ``components``. Formats are checked with the OAS 3.0 format checker (``date-time``, ``int32`` ...).
"""

from __future__ import annotations

import functools
import json
import threading
from pathlib import Path
from typing import Any

from jsonschema.exceptions import ValidationError
from openapi_schema_validator import OAS30Validator, oas30_format_checker

SPEC_PATH = Path(__file__).resolve().parents[1] / "fixtures" / "openapi" / "api.github.com.subset.json"


def _normalise(node: Any) -> None:
    """Two readings of GitHub's description that the validator needs spelt out:

    * ``nullable: true`` allows null even when an ``enum`` does not list it (GitHub relies on this, e.g.
      ``check-run.conclusion``; the JSON Schema ``enum`` keyword alone would refuse null);
    * ``discriminator`` is dropped: it is a hint for code generators, and GitHub's (``repos/get-content`` maps
      ``array`` to ``content-directory``) cannot be applied to a JSON array;
    * ``oneOf`` is read as ``anyOf``: GitHub's alternatives overlap (a 409 body is both a ``basic-error`` and a
      ``repository-rule-violation-error``, none of whose fields are required), so "exactly one" would refuse
      GitHub's own answers. The body must still match at least one alternative.
    """
    if isinstance(node, dict):
        if node.get("nullable") is True and isinstance(node.get("enum"), list) and None not in node["enum"]:
            node["enum"] = [*node["enum"], None]
        if isinstance(node.get("discriminator"), dict) and "propertyName" in node["discriminator"]:
            del node["discriminator"]
        if isinstance(node.get("oneOf"), list) and "anyOf" not in node:
            node["anyOf"] = node.pop("oneOf")
        for value in node.values():
            _normalise(value)
    elif isinstance(node, list):
        for value in node:
            _normalise(value)


class OpenAPIViolation(AssertionError):
    """A request or response body does not match GitHub's OpenAPI description."""


def _describe(error: ValidationError) -> str:
    where = error.json_path
    message = error.message if len(error.message) <= 300 else error.message[:300] + "..."
    return f"{where}: {message}"


class Spec:
    """The subset of ``api.github.com.json`` (see ``extract_openapi.py``) with cached validators."""

    def __init__(self, path: Path = SPEC_PATH) -> None:
        self.document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        _normalise(self.document)
        self._validators: dict[tuple[str, str, str], OAS30Validator | None] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ lookup
    def operation(self, method: str, template: str) -> dict[str, Any]:
        try:
            op: dict[str, Any] = self.document["paths"][template][method.lower()]
        except KeyError:
            raise KeyError(f"{method.upper()} {template} is not in the OpenAPI subset; "
                           "add it to OPERATIONS in extract_openapi.py and re-run it") from None
        return op

    def operations(self) -> list[tuple[str, str]]:
        return [(m.upper(), p) for p, item in self.document["paths"].items() for m in item if m != "parameters"]

    def _deref(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            _, _, kind, name = node["$ref"].split("/", 3)
            node = self.document["components"][kind][name]
        return node

    @staticmethod
    def _json_schema(content: dict[str, Any] | None) -> dict[str, Any] | None:
        if not content:
            return None
        for media_type in ("application/json", "application/vnd.github.object"):
            if media_type in content and "schema" in content[media_type]:
                schema: dict[str, Any] = content[media_type]["schema"]
                return schema
        for media_type, entry in content.items():
            if "json" in media_type and "schema" in entry:
                found: dict[str, Any] = entry["schema"]
                return found
        return None

    def _validator(self, key: tuple[str, str, str], schema: dict[str, Any] | None) -> OAS30Validator | None:
        with self._lock:
            if key not in self._validators:
                self._validators[key] = None if schema is None else OAS30Validator(
                    {"allOf": [schema], "components": self.document["components"]},
                    format_checker=oas30_format_checker)
            return self._validators[key]

    # ------------------------------------------------------------------ validation
    def request_errors(self, method: str, template: str, body: Any) -> list[str]:
        """Why ``body`` is not a valid request body of the operation ([] if it is)."""
        op = self.operation(method, template)
        request_body = op.get("requestBody")
        if request_body is None:
            return []
        request_body = self._deref(request_body)
        if body is None:
            return ["request body is required"] if request_body.get("required") else []
        validator = self._validator((method.lower(), template, "request"), self._json_schema(request_body["content"]))
        if validator is None:
            return []
        return [_describe(e) for e in sorted(validator.iter_errors(body), key=lambda e: e.json_path)][:10]

    def response_errors(self, method: str, template: str, status: int, body: Any) -> list[str]:
        """Why ``body`` is not a valid ``status`` response of the operation ([] if it is).

        A status the operation does not declare is an error for 2xx/3xx; for 4xx/5xx (GitHub answers 403, 404,
        422, 5xx on any endpoint) the body must match ``basic-error``.
        """
        op = self.operation(method, template)
        responses = op.get("responses", {})
        declared = responses.get(str(status)) or responses.get("default")
        if declared is None:
            if status < 400:
                return [f"status {status} is not a documented response of {method.upper()} {template}"]
            schema: dict[str, Any] | None = {"$ref": "#/components/schemas/basic-error"}
            key = ("*", "*", "error")
        else:
            schema = self._json_schema(self._deref(declared).get("content"))
            key = (method.lower(), template, str(status))
        validator = self._validator(key, schema)
        if validator is None:
            return []
        if body is None:
            return [f"status {status} needs a JSON body"]
        return [_describe(e) for e in sorted(validator.iter_errors(body), key=lambda e: e.json_path)][:10]


@functools.cache
def load_spec() -> Spec:
    return Spec()
