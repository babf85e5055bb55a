"""The httpx Wazuh client against the local fake (TLS verified with a test CA); responses are
checked against the Wazuh API specification in ../shared when it is there."""

from __future__ import annotations

import functools
import os
import ssl
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from dcops.collectors.wazuh import WazuhClient, WazuhError
from fakes.wazuh_fake import FakeWazuhServer, demo_state

pytestmark = pytest.mark.integration

# External test data (../shared beside the checkout, or DCOPS_SHARED_DIR): read, never copied.
_BESIDE = Path(__file__).resolve().parents[4] / "shared"
SHARED = Path(os.environ.get("DCOPS_SHARED_DIR") or next(
    (p for p in (_BESIDE, Path("/work/shared")) if p.is_dir()), _BESIDE))
SPEC = SHARED / "wazuh" / "api-spec.yaml"


@pytest.fixture
def fake(pki: Any) -> Any:
    st = demo_state([("web1", "10.77.0.11"), ("db1", "10.77.0.12"), ("mail1", "10.77.0.13")])
    st.agents[2]["status"] = "disconnected"
    with FakeWazuhServer(st, certfile=str(pki.cert), keyfile=str(pki.key)) as srv:
        yield srv


def test_agents_and_sca_through_verified_tls(fake: Any, pki: Any) -> None:
    with WazuhClient(fake.url, "wazuh", "wazuh", verify=str(pki.ca)) as c:
        agents = c.agents()
        assert [a["name"] for a in agents] == ["web1", "db1", "mail1"]
        assert [a["id"] for a in c.agents(status="disconnected")] == ["003"]
        pols = c.sca_policies("001")
        assert pols[0]["policy_id"] == "cis_debian12" and pols[0]["score"] == 66
        failed = c.sca_checks("001", "cis_debian12", result="failed")
        assert [ch["title"] for ch in failed] == ["Ensure auditd service is enabled and active."]
    assert fake.state.requests[0] == "POST /security/user/authenticate"


def test_tls_verification_is_on_by_default(fake: Any) -> None:
    with (
        WazuhClient(fake.url, "wazuh", "wazuh") as c,
        pytest.raises(WazuhError, match="CERTIFICATE"),
    ):
        c.agents()


def test_wrong_password_is_a_clear_error(fake: Any, pki: Any) -> None:
    with (
        WazuhClient(fake.url, "wazuh", "nope", verify=str(pki.ca)) as c,
        pytest.raises(WazuhError, match="401 Unauthorized: Invalid credentials"),
    ):
        c.agents()


def test_expired_token_is_renewed_once(fake: Any, pki: Any) -> None:
    with WazuhClient(fake.url, "wazuh", "wazuh", verify=str(pki.ca)) as c:
        c.authenticate()
        c._token = "not-a-jwt"
        assert len(c.agents()) == 3
    assert fake.state.requests.count("POST /security/user/authenticate") == 2


def test_paging_reads_every_agent(pki: Any) -> None:
    st = demo_state([(f"h{i}", f"10.0.{i // 250}.{i % 250}") for i in range(1203)])
    with (
        FakeWazuhServer(st, certfile=str(pki.cert), keyfile=str(pki.key)) as srv,
        WazuhClient(srv.url, "wazuh", "wazuh", verify=str(pki.ca)) as c,
    ):
        agents = c.agents()
    assert len(agents) == 1203 and len({a["id"] for a in agents}) == 1203
    assert sum(r == "GET /agents" for r in st.requests) == 3


@functools.cache
def _registry() -> Any:
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    spec = yaml.load(SPEC.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    return Registry().with_resource("urn:wazuh", Resource(spec, specification=DRAFT4))


def _validator(pointer: str) -> Any:
    import jsonschema

    return jsonschema.Draft4Validator({"$ref": f"urn:wazuh#{pointer}"}, registry=_registry())


@pytest.mark.skipif(not SPEC.exists(), reason="shared Wazuh API spec not present")
def test_responses_follow_the_wazuh_spec(fake: Any, pki: Any) -> None:
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    with httpx.Client(base_url=fake.url, verify=ctx) as h:
        r = h.post("/security/user/authenticate", auth=("wazuh", "wazuh"))
        ok = ("/paths/~1security~1user~1authenticate/post/responses/200/content/"
              "application~1json/schema")
        _validator(ok).validate(r.json())
        bad = h.post("/security/user/authenticate", auth=("wazuh", "x"))
        assert bad.status_code == 401
        _validator("/components/schemas/RequestError").validate(bad.json())
        raw = h.post("/security/user/authenticate", params={"raw": "true"}, auth=("wazuh", "wazuh"))
        assert raw.headers["content-type"].startswith("text/plain") and raw.text.count(".") == 2
        token = r.json()["data"]["token"]
        agents = h.get(
            "/agents",
            params={"limit": 2, "sort": "-name", "select": "name,status"},
            headers={"Authorization": f"Bearer {token}"},
        )
        body = agents.json()
        _validator("/paths/~1agents/get/responses/200/content/application~1json/schema").validate(
            body
        )
        assert body["data"]["total_affected_items"] == 3
        assert [a["name"] for a in body["data"]["affected_items"]] == ["web1", "mail1"]
        noauth = h.get("/agents")
        assert noauth.status_code == 401
        _validator("/components/schemas/RequestError").validate(noauth.json())
        assert (
            h.get(
                "/agents", params={"bogus": "1"}, headers={"Authorization": f"Bearer {token}"}
            ).status_code
            == 400
        )


@functools.cache
def _sca_validator(item: str, complete: bool) -> Any:
    import jsonschema
    from wazuh4_sca_contract import CHECK, CHECK_REQUIRED, POLICY, POLICY_REQUIRED, response

    schema = (
        response(POLICY, POLICY_REQUIRED if complete else None)
        if item == "policy"
        else response(CHECK, CHECK_REQUIRED if complete else None)
    )
    return jsonschema.Draft4Validator(schema, registry=_registry())


@pytest.mark.skipif(not SPEC.exists(), reason="shared Wazuh API spec not present")
def test_every_sca_answer_follows_the_4x_contract(fake: Any, pki: Any) -> None:
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    error = _validator("/components/schemas/RequestError")
    with httpx.Client(base_url=fake.url, verify=ctx) as h:
        token = h.post("/security/user/authenticate", auth=("wazuh", "wazuh")).json()["data"]
        auth = {"Authorization": f"Bearer {token['token']}"}
        for path, item in (("/sca/001", "policy"), ("/sca/001/checks/cis_debian12", "check")):
            for params in (
                {},
                {"limit": 1, "offset": 0, "sort": "-title" if item == "check" else "-name"},
                {"search": "debian" if item == "policy" else "ssh"},
                {"q": "score>50"} if item == "policy" else {"result": "failed"},
            ):
                r = h.get(path, params=params, headers=auth)
                assert r.status_code == 200, (path, params, r.text)
                _sca_validator(item, True).validate(r.json())
                assert r.json()["data"]["affected_items"], (path, params)
            picked = h.get(path, params={"select": "title" if item == "check" else "name"},
                           headers=auth)
            _sca_validator(item, False).validate(picked.json())
            for bad, status in (
                (h.get(path, params={"bogus": "1"}, headers=auth), 400),
                (h.get(path, params={"limit": "x"}, headers=auth), 400),
                (h.get(path), 401),
                (h.get(path.replace("001", "999"), headers=auth), 404),
            ):
                assert bad.status_code == status, (path, bad.status_code, bad.text)
                error.validate(bad.json())
        failed = h.get("/sca/001/checks/cis_debian12", params={"result": "failed"}, headers=auth)
        assert [c["result"] for c in failed.json()["data"]["affected_items"]] == ["failed"]
        # the contract is closed: a field the fake invented would fail
        policy = h.get("/sca/001", headers=auth).json()
        policy["data"]["affected_items"][0]["invented"] = 1
        with pytest.raises(Exception, match="invented"):
            _sca_validator("policy", True).validate(policy)
