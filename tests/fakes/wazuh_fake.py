"""A local fake of the Wazuh manager API for tests and the lab.

It follows the Wazuh server API specification (`../shared/wazuh/api-spec.yaml`, 5.x) for what dcops
uses: `POST /security/user/authenticate` (HTTP basic -> JWT, `raw` for text/plain), `GET /agents`
(pretty, wait_for_complete, agents_list, offset, limit, select, sort, search, status, q, name, ip,
group...) with the `{data: {affected_items, total_affected_items, total_failed_items,
failed_items}, message, error}` envelope and `{title, detail}` errors. SCA is not in the 5.x API
(it moved to the indexer); the fake serves the Wazuh 4.x endpoints `GET /sca/{agent_id}` and
`GET /sca/{agent_id}/checks/{policy_id}` in the same envelope, which is what 4.x managers answer.
"""

from __future__ import annotations

import base64
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

_AGENT_PARAMS = frozenset(
    {
        "pretty",
        "wait_for_complete",
        "agents_list",
        "offset",
        "limit",
        "select",
        "sort",
        "search",
        "status",
        "q",
        "older_than",
        "os.type",
        "os.platform",
        "os.version",
        "os.major",
        "os.minor",
        "os.arch",
        "os.name",
        "version",
        "group",
        "name",
        "ip",
        "registerIP",
        "distinct",
    }
)
_LIST_PARAMS = frozenset(
    {"pretty", "wait_for_complete", "offset", "limit", "select", "sort", "search", "q", "distinct"}
)
_SCA_PARAMS = _LIST_PARAMS | {"name", "description", "references"}
_CHECK_PARAMS = _LIST_PARAMS | {
    "title",
    "description",
    "rationale",
    "remediation",
    "command",
    "reason",
    "file",
    "process",
    "directory",
    "registry",
    "references",
    "result",
    "condition",
}
TOKEN_SECONDS = 900


@dataclass
class FakeWazuhState:
    """What the fake manager knows: users, agents, SCA policies and checks per agent."""

    users: dict[str, str] = field(default_factory=lambda: {"wazuh": "wazuh"})
    agents: list[dict[str, Any]] = field(default_factory=list)
    sca: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # agent -> policies
    checks: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    secret: str = field(default_factory=lambda: secrets.token_hex(32))
    requests: list[str] = field(default_factory=list)


def _error(status: int, title: str, detail: str) -> JSONResponse:
    return JSONResponse({"title": title, "detail": detail}, status_code=status)


def _get(item: dict[str, Any], dotted: str) -> Any:
    cur: Any = item
    for part in dotted.split("."):
        cur = cur.get(part) if isinstance(cur, dict) else None
    return cur


def _query(items: list[dict[str, Any]], q: str) -> list[dict[str, Any]]:
    """Wazuh `q`: `field=value`, `field!=value`, `field~value`, `;` (and) and `,` (or)."""

    def one(item: dict[str, Any], cond: str) -> bool:
        for op in ("!=", "~", "=", "<", ">"):
            if op in cond:
                f, _, v = cond.partition(op)
                got = str(_get(item, f.strip()) or "")
                return {
                    "!=": got != v,
                    "~": v.lower() in got.lower(),
                    "=": got == v,
                    "<": got < v,
                    ">": got > v,
                }[op]
        return False

    return [
        i for i in items if all(any(one(i, c) for c in part.split(",")) for part in q.split(";"))
    ]


def _listing(
    req: Request,
    items: list[dict[str, Any]],
    allowed: frozenset[str],
    message: str,
    filters: dict[str, str],
) -> Response:
    p = req.query_params
    unknown = [k for k in p if k not in allowed]
    if unknown:
        return _error(400, "Bad Request", f"Unknown query parameter(s): {', '.join(unknown)}")
    try:
        offset = int(p.get("offset", "0"))
        limit = int(p.get("limit", "500"))
    except ValueError:
        return _error(400, "Bad Request", "offset and limit must be integers")
    if offset < 0 or not 1 <= limit <= 100_000:
        return _error(400, "Bad Request", "offset >= 0 and 1 <= limit <= 100000")
    for param, path in filters.items():
        if param in p:
            wanted = set(p[param].split(","))
            items = [
                i
                for i in items
                if str(_get(i, path)) in wanted
                or (isinstance(_get(i, path), list) and wanted & set(_get(i, path)))
            ]
    if "search" in p:
        s = p["search"]
        neg = s.startswith("-")
        s = s.lstrip("-").lower()
        items = [i for i in items if (s in str(i).lower()) != neg]
    if "q" in p:
        items = _query(items, p["q"])
    if "sort" in p:
        for key in reversed(p["sort"].split(",")):
            field_name = key.lstrip("+-")

            def sort_key(i: dict[str, Any], f: str = field_name) -> str:
                return str(_get(i, f) or "")

            items = sorted(items, key=sort_key, reverse=key.startswith("-"))
    total = len(items)
    page = items[offset : offset + limit]
    if "select" in p:
        fields = p["select"].split(",")
        page = [{k: v for k, v in i.items() if k in fields or k == "id"} for i in page]
    return JSONResponse(
        {
            "data": {
                "affected_items": page,
                "total_affected_items": total,
                "total_failed_items": 0,
                "failed_items": [],
            },
            "message": message,
            "error": 0,
        }
    )


def create_app(state: FakeWazuhState) -> Starlette:
    """The Starlette application of the fake manager."""

    def authorised(req: Request) -> Response | None:
        state.requests.append(f"{req.method} {req.url.path}")
        auth = req.headers.get("authorization", "")
        if not auth.lower().startswith("bearer "):
            return _error(401, "Unauthorized", "No authorization token provided")
        try:
            jwt.decode(auth[7:], state.secret, algorithms=["HS256"], audience="Wazuh API REST")
        except jwt.PyJWTError:
            return _error(401, "Unauthorized", "Invalid token")
        return None

    async def authenticate(req: Request) -> Response:
        state.requests.append(f"{req.method} {req.url.path}")
        auth = req.headers.get("authorization", "")
        try:
            user, _, pw = base64.b64decode(auth[6:]).decode().partition(":")
        except ValueError:
            user, pw = "", ""
        if not auth.lower().startswith("basic ") or state.users.get(user) != pw or not user:
            return _error(401, "Unauthorized", "Invalid credentials")
        now = int(time.time())
        token = jwt.encode(
            {
                "iss": "wazuh",
                "aud": "Wazuh API REST",
                "nbf": now,
                "exp": now + TOKEN_SECONDS,
                "sub": user,
                "run_as": False,
                "rbac_roles": [1],
                "rbac_mode": "white",
            },
            state.secret,
            algorithm="HS256",
        )
        if req.query_params.get("raw") == "true":
            return PlainTextResponse(token)
        return JSONResponse({"data": {"token": token}, "error": 0})

    def guarded(fn: Callable[[Request], Response]) -> Callable[[Request], Any]:
        async def endpoint(req: Request) -> Response:
            return authorised(req) or fn(req)

        return endpoint

    def agents(req: Request) -> Response:
        filters = {
            "agents_list": "id",
            "status": "status",
            "name": "name",
            "ip": "ip",
            "group": "group",
            "version": "version",
            "registerIP": "registerIP",
            **{
                f"os.{k}": f"os.{k}"
                for k in ("type", "platform", "version", "major", "minor", "arch", "name")
            },
        }
        return _listing(
            req,
            state.agents,
            _AGENT_PARAMS,
            "All selected agents information was returned",
            filters,
        )

    def sca(req: Request) -> Response:
        agent = req.path_params["agent_id"]
        if not any(a["id"] == agent for a in state.agents):
            return _error(404, "Resource not found", f"Agent {agent} does not exist")
        return _listing(
            req,
            state.sca.get(agent, []),
            _SCA_PARAMS,
            "All selected sca information was returned",
            {"name": "name", "description": "description"},
        )

    def checks(req: Request) -> Response:
        key = (req.path_params["agent_id"], req.path_params["policy_id"])
        if not any(a["id"] == key[0] for a in state.agents):
            return _error(404, "Resource not found", f"Agent {key[0]} does not exist")
        return _listing(
            req,
            state.checks.get(key, []),
            _CHECK_PARAMS,
            "All selected sca/policy information was returned",
            {"result": "result", "title": "title", "condition": "condition"},
        )

    return Starlette(
        routes=[
            Route("/security/user/authenticate", authenticate, methods=["POST"]),
            Route("/agents", guarded(agents), methods=["GET"]),
            Route("/sca/{agent_id}", guarded(sca), methods=["GET"]),
            Route("/sca/{agent_id}/checks/{policy_id}", guarded(checks), methods=["GET"]),
        ]
    )


class FakeWazuhServer:
    """Run the fake on 127.0.0.1 (an ephemeral port by default) in a background thread."""

    def __init__(
        self,
        state: FakeWazuhState,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        certfile: str | None = None,
        keyfile: str | None = None,
    ) -> None:
        import uvicorn

        self.state = state
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.port = int(self._sock.getsockname()[1])
        scheme = "https" if certfile else "http"
        self.url = f"{scheme}://{host}:{self.port}"
        cfg = uvicorn.Config(
            create_app(state),
            log_level="warning",
            ssl_certfile=certfile,
            ssl_keyfile=keyfile,
            lifespan="off",
        )
        self._server = uvicorn.Server(cfg)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    def __enter__(self) -> FakeWazuhServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self._sock.close()


def demo_state(hosts: list[tuple[str, str]]) -> FakeWazuhState:
    """Agents (001...) for (name, ip) pairs, each with a CIS Debian 12 policy and three checks."""
    st = FakeWazuhState()
    for n, (name, ip) in enumerate(hosts, 1):
        aid = f"{n:03d}"
        st.agents.append(
            {
                "id": aid,
                "name": name,
                "ip": ip,
                "registerIP": "any",
                "status": "active",
                "status_code": 0,
                "version": "Wazuh v4.9.2",
                "group": ["default"],
                "dateAdd": "2026-11-01T00:00:00+00:00",
                "lastKeepAlive": "2026-11-22T05:00:00+00:00",
                "os": {
                    "arch": "x86_64",
                    "major": "12",
                    "name": "Debian GNU/Linux",
                    "platform": "debian",
                    "type": "linux",
                    "version": "12",
                },
            }
        )
        st.sca[aid] = [
            {
                "policy_id": "cis_debian12",
                "name": "CIS Debian Linux 12 Benchmark v1.0.1",
                "description": "CIS Debian 12",
                "references": "https://www.cisecurity.org",
                "pass": 2,
                "fail": 1,
                "invalid": 0,
                "total_checks": 3,
                "score": 66,
                "start_scan": "2026-11-22T04:00:00+00:00",
                "end_scan": "2026-11-22T04:00:05+00:00",
                "hash_file": "0" * 64,
            }
        ]
        st.checks[(aid, "cis_debian12")] = [
            _check(35500 + i, title, result, rid)
            for i, (title, result, rid) in enumerate(
                [
                    ("Ensure SSH root login is disabled.", "passed", "5.2.7"),
                    ("Ensure SSH PermitEmptyPasswords is disabled.", "passed", "5.2.9"),
                    ("Ensure auditd service is enabled and active.", "failed", "6.3.1.2"),
                ]
            )
        ]
    return st


def _check(cid: int, title: str, result: str, cis: str) -> dict[str, Any]:
    return {
        "id": cid,
        "policy_id": "cis_debian12",
        "title": title,
        "description": title,
        "rationale": "",
        "remediation": "",
        "command": "",
        "reason": "",
        "result": result,
        "condition": "all",
        "references": "",
        "compliance": [{"key": "cis", "value": cis}],
        "rules": [{"type": "command", "rule": "c:sshd -T -> r:^permitrootlogin\\s+no"}],
    }
