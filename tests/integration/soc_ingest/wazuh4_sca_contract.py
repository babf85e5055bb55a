"""The Wazuh 4.x SCA response contract, as JSON Schema (draft 4) beside the shared 5.x spec.

The shared spec (`api-spec.yaml`, Wazuh 5.x) has no SCA endpoints, so these schemas restate the
4.x ones the fake serves (4.x spec: `SCADatabase`, `SCAChecks`, `AllItemsResponseSCADatabase`,
`AllItemsResponseSCAChecks`; see docs/soc-ingest.md) and reuse the shared spec's `ApiResponse` and
`AllItemsResponse` envelopes by reference. Items are closed (`additionalProperties: false`) so a
field the fake invents fails; `required` is added only for answers without `select`.
"""

from __future__ import annotations

from typing import Any

ENVELOPE = "urn:wazuh#/components/schemas"

_INT = {"type": "integer", "format": "int32"}
_STR = {"type": "string"}

POLICY: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "policy_id": _STR,
        "name": _STR,
        "description": _STR,
        "references": _STR,
        "pass": _INT,
        "fail": _INT,
        "invalid": _INT,
        "total_checks": _INT,
        "score": _INT,
        "start_scan": {"type": "string", "format": "date-time"},
        "end_scan": {"type": "string", "format": "date-time"},
        "hash_file": _STR,
    },
}
POLICY_REQUIRED = [
    "policy_id",
    "name",
    "pass",
    "fail",
    "invalid",
    "total_checks",
    "score",
    "start_scan",
    "end_scan",
]

CHECK: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "id": _INT,
        "policy_id": _STR,
        "title": _STR,
        "description": _STR,
        "rationale": _STR,
        "remediation": _STR,
        "command": _STR,
        "file": _STR,
        "directory": _STR,
        "process": _STR,
        "registry": _STR,
        "reason": _STR,
        "references": _STR,
        "result": {"type": "string", "enum": ["passed", "failed", "not applicable"]},
        "condition": {"type": "string", "enum": ["all", "any", "none"]},
        "compliance": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["key", "value"],
                "properties": {"key": _STR, "value": _STR},
            },
        },
        "rules": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["type", "rule"],
                "properties": {
                    "type": {
                        "type": "string",
                        "enum": ["command", "file", "directory", "process", "registry", "numeric"],
                    },
                    "rule": _STR,
                },
            },
        },
    },
}
CHECK_REQUIRED = ["id", "policy_id", "title", "result", "condition", "compliance", "rules"]


def response(item: dict[str, Any], required: list[str] | None) -> dict[str, Any]:
    """The 200 answer: ApiResponse with data = AllItemsResponse whose items are `item`."""
    one = dict(item, required=required) if required else item
    return {
        "allOf": [
            {"$ref": f"{ENVELOPE}/ApiResponse"},
            {
                "type": "object",
                "required": ["data", "message", "error"],
                "properties": {
                    "error": {"type": "integer", "enum": [0]},
                    "data": {
                        "allOf": [
                            {"$ref": f"{ENVELOPE}/AllItemsResponse"},
                            {
                                "type": "object",
                                "required": ["affected_items"],
                                "properties": {"affected_items": {"type": "array", "items": one}},
                            },
                        ]
                    },
                },
            },
        ]
    }
