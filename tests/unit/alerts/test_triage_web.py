"""The console over a SQLite store through Starlette's test client: auth, roles, CSRF, webhook."""

from __future__ import annotations

import html
import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from dcops.alerts import AlertFilter, AlertStore, Users
from dcops.alerts.backend import StoreBackend
from dcops.alerts.timeutil import now, parse
from dcops.model.event import Detection, Event, LogSource
from dcops.pipeline import SqliteSpool
from dcops.pipeline.reader import SpoolEvents
from dcops.triage import create_app

T0 = datetime(2026, 11, 22, 3, 0, tzinfo=UTC)


class Clock:
    """A clock the test moves (throttle and session expiry without sleeping)."""

    def __init__(self) -> None:
        self.t = now()

    def __call__(self) -> datetime:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += timedelta(seconds=seconds)


@pytest.fixture(scope="module")
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Users and alerts made once (argon2 is deliberately slow); each test gets a copy."""
    path = tmp_path_factory.mktemp("console") / "alerts.db"
    s = AlertStore(f"sqlite:///{path}")
    users = Users(s.engine)
    for name, role in (("ana", "analyst"), ("aud", "auditor"), ("eng", "engineer"),
                       ("adm", "admin")):
        users.add(name, f"{name}-password", role, "setup")
    s.accept([Detection("r1", "SSH brute force", "high", T0, ("e1",), key="web01", host="web01",
                        site="bien_hoa", system="lgsp", tags=("attack.t1110",)),
              Detection("r2", "Port scan", "low", T0, ("e2",), key="db01", host="db01",
                        site="long_khanh", system="portal")])
    s.close()  # the last connection closing checkpoints the WAL into the file
    assert not path.with_name("alerts.db-wal").exists()
    return path


def copy_store(template_db: Path, to: Path) -> AlertStore:
    """A copy of the template store (with the trail's HMAC key beside it)."""
    shutil.copy(template_db, to / "alerts.db")
    shutil.copy(template_db.with_name("trail.key"), to / "trail.key")  # the trail's HMAC key
    return AlertStore(f"sqlite:///{to / 'alerts.db'}")


@pytest.fixture
def store(tmp_path: Path, template_db: Path) -> Iterator[AlertStore]:
    s = copy_store(template_db, tmp_path)
    yield s
    s.close()


def client(store: AlertStore, token: str = "", addr: str = "127.0.0.1") -> TestClient:
    """The console as a browser (or Alertmanager) at `addr` reaches it."""
    return TestClient(create_app(StoreBackend(store), "test-secret", webhook_token=token),
                      follow_redirects=False, client=(addr, 50000))


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "page has no CSRF token"
    return m.group(1)


def login(c: TestClient, user: str) -> str:
    token = csrf_of(c.get("/login").text)
    r = c.post("/login", data={"username": user, "password": f"{user}-password",
                               "csrf_token": token, "next": "/alerts"})
    assert r.status_code == 303, r.text
    return csrf_of(c.get("/alerts").text)


def test_no_session_redirects_to_login(store: AlertStore) -> None:
    r = client(store).get("/alerts/1")
    assert r.status_code == 303
    assert r.headers["location"].startswith("/login")


def test_wrong_password_is_refused(store: AlertStore) -> None:
    c = client(store)
    token = csrf_of(c.get("/login").text)
    r = c.post("/login", data={"username": "ana", "password": "nope", "csrf_token": token})
    assert r.status_code == 401
    assert c.get("/alerts").status_code == 303


def test_login_without_csrf_is_403(store: AlertStore) -> None:
    c = client(store)
    c.get("/login")
    r = c.post("/login", data={"username": "ana", "password": "ana-password"})
    assert r.status_code == 403


def test_analyst_triages_and_history_shows_it(store: AlertStore) -> None:
    c = client(store)
    token = login(c, "ana")
    page = c.get("/alerts?severity=high").text
    assert "SSH brute force" in page and "Port scan" not in page
    assert c.post("/alerts/1/transition", data={"to": "acknowledged",
                                                "csrf_token": token}).status_code == 303
    assert c.post("/alerts/1/note", data={"text": "checked auth.log",
                                          "csrf_token": token}).status_code == 303
    assert c.post("/alerts/1/transition", data={"to": "resolved",
                                                "csrf_token": token}).status_code == 303
    page = c.get("/alerts/1").text
    assert "alert.acknowledged" in page and "alert.resolved" in page and "checked auth.log" in page
    a = store.get(1)
    assert a is not None and a.status == "resolved"
    assert [r.actor for r in store.audit_records("alert:1")][1:] == ["ana", "ana", "ana"]


def test_history_details_are_readable_vietnamese_and_escaped(store: AlertStore) -> None:
    """Issue 19: history and trail details showed raw JSON with \\u0111 escapes."""
    c = client(store)
    token = login(c, "ana")
    note = "đã kiểm tra auth.log <script>alert(1)</script>"
    assert c.post("/alerts/1/note", data={"text": note, "csrf_token": token}).status_code == 303
    page = c.get("/alerts/1").text
    assert "đã kiểm tra auth.log" in page and "\\u0111" not in page
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page
    assert '<dl class="kv">' in page and '<dt>text</dt><dd>đã kiểm tra' in page


def test_a_nul_in_a_form_is_refused_by_name_and_changes_nothing(store: AlertStore) -> None:
    # PostgreSQL's text type refuses NUL: it would be a 500 there; here a clear 400 everywhere.
    c = client(store)
    token = login(c, "ana")
    r = c.post("/alerts/1/note", data={"text": "ok\x00", "csrf_token": token})
    assert r.status_code == 400 and "form field &#39;text&#39;: a NUL character" in r.text
    assert store.notes(1) == []


def test_post_without_csrf_is_403_and_changes_nothing(store: AlertStore) -> None:
    c = client(store)
    login(c, "ana")
    r = c.post("/alerts/1/transition", data={"to": "acknowledged"})
    assert r.status_code == 403
    r = c.post("/alerts/1/transition", data={"to": "acknowledged", "csrf_token": "forged"})
    assert r.status_code == 403
    a = store.get(1)
    assert a is not None and a.status == "new"


def test_auditor_read_only(store: AlertStore) -> None:
    c = client(store)
    token = login(c, "aud")
    page = c.get("/alerts/1").text
    assert 'id="actions"' not in page and "/transition" not in page
    assert 'id="bulk-actions"' not in c.get("/alerts").text
    r = c.post("/alerts/1/transition", data={"to": "acknowledged", "csrf_token": token})
    assert r.status_code == 403
    assert c.post("/alerts/bulk", data={"ids": "1", "action": "ack",
                                        "csrf_token": token}).status_code == 403
    audit = c.get("/audit")
    assert audit.status_code == 200 and "Chain intact" in audit.text
    # what `alerts verify-audit` warns about is on the page too (this store has no anchoring)
    warnings = store.verify_audit().warnings
    assert warnings and 'id="verify-warnings"' in audit.text
    assert all(html.escape(w) in audit.text for w in warnings)
    assert c.get("/users").status_code == 403


def test_analyst_cannot_see_audit_or_users_admin_can(store: AlertStore) -> None:
    c = client(store)
    login(c, "ana")
    assert c.get("/audit").status_code == 403
    c2 = client(store)
    token = login(c2, "adm")
    assert c2.get("/users").status_code == 200
    r = c2.post("/users", data={"username": "new1", "password": "new1-password",
                                "role": "engineer", "csrf_token": token})
    assert r.status_code == 303
    assert "new1" in c2.get("/users").text


def test_bulk_ack_and_assign(store: AlertStore) -> None:
    c = client(store)
    token = login(c, "ana")
    r = c.post("/alerts/bulk", data={"ids": ["1", "2"], "action": "ack", "csrf_token": token})
    assert r.status_code == 303
    r = c.post("/alerts/bulk", data={"ids": ["1", "2"], "action": "assign", "assignee": "ana",
                                     "csrf_token": token})
    assert r.status_code == 303
    assert {(a.status, a.assignee) for a in store.query()} == {("acknowledged", "ana")}


# Labels only the page itself carries (the nav, which every page shares, is not looked at).
PAGE_LABELS: dict[str, list[tuple[str, str]]] = {
    "/alerts": [("Alert queue", "Hàng đợi cảnh báo"), ("By severity", "Theo mức độ"),
                ("By site", "Theo địa điểm"), ("Last seen", "Lần cuối"),
                ("Assignee", "Người xử lý")],
    "/alerts/1": [("Source address", "Địa chỉ nguồn"), ("Events", "Sự kiện"),
                  ("Notes", "Ghi chú"), ("History", "Lịch sử"), ("Actions", "Thao tác")],
    "/incidents": [("Incidents", "Sự cố"), ("Title", "Tiêu đề"), ("Created", "Tạo lúc"),
                   ("Merge", "Gộp")],
    "/incidents/1": [("Incident", "Sự cố"), ("Rule", "Quy tắc"), ("History", "Lịch sử")],
    "/sla": [("SLA per severity", "Cam kết thời gian xử lý theo mức độ"),
             ("Mean time to ack", "TB xác nhận"), ("Resolve breaches", "Vi phạm xử lý"),
             ("Overdue", "Quá hạn")],
    "/audit": [("Audit trail", "Nhật ký kiểm toán"), ("Who", "Ai"), ("Target", "Đối tượng")],
    "/users": [("Users", "Người dùng"), ("Role", "Vai trò"),
               ("Add or reset a user", "Thêm hoặc đặt lại người dùng")],
    "/login": [("Log in", "Đăng nhập"), ("Password", "Mật khẩu")],
}


def main_of(html: str) -> str:
    m = re.search(r"<main>(.*)</main>", html, re.S)
    assert m, "page has no <main>"
    return m.group(1)


def has_label(html: str, english: str, vietnamese: str) -> bool:
    """``English <span class="vi">/ Tiếng Việt</span>`` or ``English / Tiếng Việt``."""
    return (f'{english} <span class="vi">/ {vietnamese}</span>' in html
            or f"{english} / {vietnamese}" in html)


def test_pages_render_with_bilingual_labels(store: AlertStore) -> None:
    who = {"/audit": "aud", "/users": "adm"}
    for path, labels in PAGE_LABELS.items():
        c = client(store)
        if path != "/login":
            login(c, who.get(path, "ana"))
        r = c.get(path)
        assert r.status_code == 200, path
        body = main_of(r.text)
        missing = [f"{en} / {vi}" for en, vi in labels if not has_label(body, en, vi)]
        assert not missing, f"{path} lacks {missing}"
    counts = client(store)
    login(counts, "ana")
    page = counts.get("/alerts?status=all").text
    assert 'data-severity="high"' in page and 'data-site="long_khanh"' in page


def test_label_check_ignores_the_nav(store: AlertStore) -> None:
    c = client(store)
    login(c, "ana")
    body = main_of(c.get("/sla").text)
    assert not has_label(body, "Queue", "Hàng đợi")  # nav only: not counted for the SLA page
    assert has_label(c.get("/sla").text, "Queue", "Hàng đợi")


def test_illegal_transition_is_409(store: AlertStore) -> None:
    c = client(store)
    token = login(c, "ana")
    c.post("/alerts/2/transition", data={"to": "false_positive", "csrf_token": token})
    r = c.post("/alerts/2/transition", data={"to": "acknowledged", "csrf_token": token})
    assert r.status_code == 409


def test_webhook_bearer_token(store: AlertStore) -> None:
    payload = {"version": "4", "status": "firing", "alerts": [
        {"status": "firing", "labels": {"alertname": "X", "severity": "warning"},
         "annotations": {}, "startsAt": "2026-11-22T03:00:00Z", "fingerprint": "f1"}]}
    c = client(store, token="s3cret")
    assert c.post("/api/v1/alertmanager/webhook", json=payload).status_code == 401
    r = c.post("/api/v1/alertmanager/webhook", json=payload,
               headers={"Authorization": "Bearer s3cret"})
    assert r.status_code == 200 and r.json()["created"] == 1
    r = c.post("/api/v1/alertmanager/webhook", json={"version": "2"},
               headers={"Authorization": "Bearer s3cret"})
    assert r.status_code == 400 and "version" in r.json()["error"]


def test_unknown_alert_is_404(store: AlertStore) -> None:
    c = client(store)
    login(c, "ana")
    assert c.get("/alerts/999").status_code == 404
    assert c.get("/incidents/999").status_code == 404


def set_times(store: AlertStore, alert_id: int, **values: str | None) -> None:
    """Fix created/acked/resolved times in the store (SLA figures need known durations)."""
    from sqlalchemy import update

    from dcops.alerts import schema

    with store.engine.begin() as conn:
        conn.execute(update(schema.alerts).where(schema.alerts.c.id == alert_id).values(**values))


def sla_cells(html: str, severity: str) -> dict[str, str]:
    row = re.search(rf'<tr data-severity="{severity}">(.*?)</tr>', html, re.S)
    assert row, f"no SLA row for {severity}"
    return dict(re.findall(r'<td class="([a-z0-9-]+)">([^<]*)</td>', row.group(1)))


def test_sla_page_shows_exact_figures(store: AlertStore) -> None:
    # alert 1 (high): acknowledged after 40 min (target 30 min), resolved after 2 h (target 8 h)
    set_times(store, 1, status="resolved", created_at="2026-11-22T03:00:00.000000Z",
              acked_at="2026-11-22T03:40:00.000000Z", resolved_at="2026-11-22T05:00:00.000000Z")
    # alert 2 (low): open and unacknowledged since January: past both targets
    set_times(store, 2, created_at="2026-01-01T00:00:00.000000Z")
    c = client(store)
    login(c, "eng")  # the SLA view is read-only: every role sees it
    html = c.get("/sla").text
    assert sla_cells(html, "high") == {
        "alerts": "1", "open": "0", "overdue": "0", "target-ack": "30m00s", "mean-ack": "40m00s",
        "p90-ack": "40m00s", "ack-breaches": "1", "target-resolve": "8h00m",
        "mean-resolve": "2h00m", "p90-resolve": "2h00m", "resolve-breaches": "0"}
    assert sla_cells(html, "low") == {
        "alerts": "1", "open": "1", "overdue": "1", "target-ack": "8h00m", "mean-ack": "-",
        "p90-ack": "-", "ack-breaches": "1", "target-resolve": "72h00m", "mean-resolve": "-",
        "p90-resolve": "-", "resolve-breaches": "1"}
    assert sla_cells(html, "critical")["alerts"] == "0"
    assert "Quá hạn" in html and "Overdue" in html


def test_disabled_user_loses_the_session_at_once(store: AlertStore) -> None:
    c = client(store)
    login(c, "ana")
    assert c.get("/alerts").status_code == 200
    Users(store.engine).set_disabled("ana", True, "adm")
    r = c.get("/alerts/1")
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    # the session was cleared, not only refused: re-enabling does not bring the old one back
    Users(store.engine).set_disabled("ana", False, "adm")
    assert c.get("/alerts").status_code == 303


def test_removed_user_loses_the_session(store: AlertStore) -> None:
    c = client(store)
    login(c, "eng")
    Users(store.engine).remove("eng", "adm")
    assert c.get("/alerts").status_code == 303


def test_demoted_and_promoted_roles_apply_on_the_next_request(store: AlertStore) -> None:
    c = client(store)
    token = login(c, "ana")
    users = Users(store.engine)
    users.set_role("ana", "auditor", "adm")  # demoted to read-only
    r = c.post("/alerts/1/transition", data={"to": "acknowledged", "csrf_token": token})
    assert r.status_code == 403
    assert 'id="actions"' not in c.get("/alerts/1").text
    assert c.get("/audit").status_code == 200
    a = store.get(1)
    assert a is not None and a.status == "new"
    c2 = client(store)
    token2 = login(c2, "eng")
    users.set_role("eng", "analyst", "adm")  # promoted
    r = c2.post("/alerts/2/transition", data={"to": "acknowledged", "csrf_token": token2})
    assert r.status_code == 303
    a = store.get(2)
    assert a is not None and a.status == "acknowledged"


def test_password_reset_ends_open_sessions(store: AlertStore) -> None:
    c = client(store)
    login(c, "ana")
    other = client(store)
    login(other, "eng")
    Users(store.engine).add("ana", "ana-new-password", "analyst", "adm")  # reset by the admin
    r = c.get("/alerts")
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    assert other.get("/alerts").status_code == 200  # other users keep theirs
    token = csrf_of(c.get("/login").text)
    r = c.post("/login", data={"username": "ana", "password": "ana-new-password",
                               "csrf_token": token})
    assert r.status_code == 303 and c.get("/alerts").status_code == 200


def test_forged_cookie_claims_are_not_trusted(store: AlertStore) -> None:
    """A cookie signed with the right secret still needs a live server session of that user;
    a claimed role is replaced by the store's."""
    import base64
    import json

    from itsdangerous import TimestampSigner

    signer = TimestampSigner("test-secret")

    def cookie(data: dict[str, object]) -> str:
        return signer.sign(base64.b64encode(json.dumps(data).encode())).decode()

    c = client(store)
    c.cookies.set("dcops_session", cookie({"user": {"username": "ana", "role": "admin"}}))
    assert c.get("/alerts").status_code == 303  # no session id: logged out
    sid = StoreBackend(store).login("aud", "aud-password", "127.0.0.1").session
    assert sid
    c = client(store)
    c.cookies.set("dcops_session", cookie({"user": {"username": "ana", "role": "analyst",
                                                    "sid": sid}}))
    assert c.get("/alerts").status_code == 303  # aud's session does not make anyone ana
    c = client(store)
    c.cookies.set("dcops_session", cookie({"user": {"username": "aud", "role": "admin",
                                                    "sid": sid}}))
    assert c.get("/users").status_code == 403  # the store says auditor, not admin
    assert c.get("/audit").status_code == 200


def test_logins_are_audited_failures_counted_not_audited(store: AlertStore) -> None:
    """A login is one record; a failure is counted by the throttle, not written (only a lock
    is: tests/unit/alerts/test_login_throttle.py), and a throttled attempt is not even checked."""
    frozen = now()  # the 1 s back-off must not run out between two requests on a loaded machine
    c = TestClient(create_app(StoreBackend(store, clock=lambda: frozen), "test-secret"),
                   follow_redirects=False, client=("127.0.0.1", 50000))
    token = csrf_of(c.get("/login").text)
    before = len(store.audit_records())
    assert c.post("/login", data={"username": "ghost", "password": "whatever1",
                                  "csrf_token": token}).status_code == 401
    assert c.post("/login", data={"username": "aud", "password": "wrong",
                                  "csrf_token": token}).status_code == 401
    assert len(store.audit_records()) == before
    # the right password inside aud's 1 s of back-off: refused unchecked and not audited
    r = c.post("/login", data={"username": "aud", "password": "aud-password",
                               "csrf_token": token})
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert "thử lại sau" in r.text
    assert len(store.audit_records()) == before
    assert c.post("/login", data={"username": "ana", "password": "ana-password",
                                  "csrf_token": token}).status_code == 303
    [rec] = store.audit_records()[before:]
    assert (rec.actor, rec.action, rec.target, rec.detail) == (
        "ana", "user.login", "user:ana", {"role": "analyst", "client": "127.0.0.1"})
    assert store.verify_audit().ok


def test_login_record_names_client_and_earlier_failures(tmp_path: Path,
                                                        template_db: Path) -> None:
    clock = Clock()
    s = copy_store(template_db, tmp_path)
    try:
        c = TestClient(create_app(StoreBackend(s, clock), "k"), follow_redirects=False,
                       client=("10.1.2.3", 40000))
        token = csrf_of(c.get("/login").text)
        c.post("/login", data={"username": "ana", "password": "nope", "csrf_token": token})
        clock.advance(2)
        r = c.post("/login", data={"username": "ana", "password": "ana-password",
                                   "csrf_token": token})
        assert r.status_code == 303
        [rec] = [x for x in s.audit_records() if x.action == "user.login"]
        assert (rec.actor, rec.target, rec.detail) == (
            "ana", "user:ana", {"role": "analyst", "client": "10.1.2.3", "failures_before": 1})
    finally:
        s.close()


AM_PAYLOAD = {"version": "4", "status": "firing", "alerts": [
    {"status": "firing", "labels": {"alertname": "LinkFlapping", "instance": "wan-r2",
                                     "severity": "warning"},
     "annotations": {"summary": "wan-r2 flapping"}, "startsAt": "2026-11-22T03:00:00Z",
     "fingerprint": "f-flap"}]}


def noc_alert(store: AlertStore) -> int:
    """An Alertmanager-sourced (NOC) alert through the webhook, as Alertmanager posts it."""
    r = client(store).post("/api/v1/alertmanager/webhook", json=AM_PAYLOAD)
    assert r.status_code == 200 and r.json()["created"] == 1
    [a] = [a for a in store.query() if a.source == "alertmanager"]
    return a.id


def test_engineer_reads_noc_alert_with_silence_but_no_triage(store: AlertStore) -> None:
    noc = noc_alert(store)
    c = client(store)
    token = login(c, "eng")
    page = c.get(f"/alerts/{noc}")
    assert page.status_code == 200 and "LinkFlapping" in page.text
    assert 'id="silence-box"' in page.text and f'action="/alerts/{noc}/silence"' in page.text
    assert 'id="actions"' not in page.text and "/transition" not in page.text
    assert 'id="note-form"' not in page.text and "/assign" not in page.text
    assert 'id="bulk-actions"' not in c.get("/alerts").text
    refused = [
        c.post(f"/alerts/{noc}/transition", data={"to": "acknowledged", "csrf_token": token}),
        c.post(f"/alerts/{noc}/transition", data={"to": "resolved", "csrf_token": token}),
        c.post(f"/alerts/{noc}/assign", data={"assignee": "eng", "csrf_token": token}),
        c.post(f"/alerts/{noc}/note", data={"text": "looking", "csrf_token": token}),
        c.post("/alerts/bulk", data={"ids": [str(noc)], "action": "ack", "csrf_token": token}),
        c.post("/incidents/merge", data={"target": "1", "sources": "2", "csrf_token": token}),
        c.post("/incidents/split", data={"ids": ["1"], "csrf_token": token}),
        c.post("/users", data={"username": "x1", "password": "x1-password", "role": "admin",
                               "csrf_token": token}),
    ]
    assert [r.status_code for r in refused] == [403] * len(refused)
    a = store.get(noc)
    assert a is not None and (a.status, a.assignee) == ("new", "")
    assert store.notes(noc) == []
    assert c.get("/audit").status_code == 403


def test_engineer_cannot_silence_soc_alerts(store: AlertStore) -> None:
    c = client(store)
    token = login(c, "eng")
    page = c.get("/alerts/1").text  # alert 1 comes from a Sigma rule (SOC)
    assert 'id="silence-box"' not in page and "/silence" not in page
    r = c.post("/alerts/1/silence", data={"comment": "noisy", "csrf_token": token})
    assert r.status_code == 409 and "only Alertmanager alerts" in r.text
    assert store.silences(1) == []
    assert not [x for x in store.audit_records("alert:1") if x.action == "alert.silence"]


def test_engineer_silence_without_csrf_is_403(store: AlertStore) -> None:
    noc = noc_alert(store)
    c = client(store)
    login(c, "eng")
    assert c.post(f"/alerts/{noc}/silence", data={"comment": "x"}).status_code == 403


def test_merge_two_incidents_in_the_console(store: AlertStore) -> None:
    a1, a2 = store.get(1), store.get(2)
    assert a1 is not None and a2 is not None and a1.incident_id != a2.incident_id
    target, source = a1.incident_id, a2.incident_id
    assert target is not None and source is not None
    c = client(store)
    token = login(c, "ana")
    r = c.post("/incidents/merge", data={"target": str(target), "sources": str(source),
                                         "csrf_token": token})
    assert r.status_code == 303 and r.headers["location"] == f"/incidents/{target}"
    merged = store.incident(target)
    assert merged is not None and merged.alert_ids == (1, 2)
    gone = store.incident(source)
    assert gone is not None and (gone.status, gone.merged_into, gone.alert_ids) == (
        "merged", target, ())
    [rec] = store.audit_records(f"incident:{source}")[-1:]
    assert (rec.actor, rec.action, rec.detail) == ("ana", "incident.merge", {"into": target})
    page = c.get(f"/incidents/{target}").text
    assert "SSH brute force" in page and "Port scan" in page
    assert source not in [i.id for i in store.incidents()]
    r = c.post("/incidents/merge", data={"target": str(target), "sources": "x",
                                         "csrf_token": token})
    assert r.status_code == 409 and "mã sự cố phải là số" in r.text
    r = c.post("/incidents/merge", data={"target": str(target), "sources": "999",
                                         "csrf_token": token})
    assert r.status_code == 409 and "incident 999 does not exist" in r.text
    assert store.verify_audit().ok


def test_split_an_alert_out_in_the_console(store: AlertStore) -> None:
    a1, a2 = store.get(1), store.get(2)
    assert a1 is not None and a2 is not None
    store.merge_incidents(a1.incident_id or 0, [a2.incident_id or 0], "setup")
    old = a1.incident_id
    c = client(store)
    token = login(c, "ana")
    r = c.post("/incidents/split", data={"ids": ["2"], "csrf_token": token})
    assert r.status_code == 303
    new = int(r.headers["location"].rsplit("/", 1)[1])
    assert new not in (old, a2.incident_id)
    moved, stayed = store.get(2), store.get(1)
    assert moved is not None and moved.incident_id == new
    assert stayed is not None and stayed.incident_id == old
    inc = store.incident(new)
    assert inc is not None and (inc.status, inc.alert_ids) == ("open", (2,))
    [rec] = store.audit_records(f"incident:{new}")
    assert (rec.actor, rec.action, rec.detail) == (
        "ana", "incident.split", {"alerts": [2], "from": [old]})
    r = c.post("/incidents/split", data={"csrf_token": token})
    assert r.status_code == 409 and store.verify_audit().ok


def spool_with_e1(path: Path) -> SqliteSpool:
    sp = SqliteSpool(path)
    sp.publish([Event("e1", T0, "syslog", LogSource("linux", "sshd", "authentication"),
                      {"host.name": "web01", "event.action": "ssh_login_failed",
                       "message": "Failed password for root from 10.77.0.9 <script>"})])
    return sp


def test_alert_page_shows_events_from_the_spool(store: AlertStore, tmp_path: Path) -> None:
    sp = spool_with_e1(tmp_path / "spool.db")
    try:
        for still_open in (True, False):  # a collector writing the spool, and one that stopped
            if not still_open:
                sp.close()
            c = TestClient(create_app(StoreBackend(store), "test-secret",
                                      events=SpoolEvents(tmp_path / "spool.db")),
                           follow_redirects=False)
            login(c, "ana")
            page = c.get("/alerts/1").text
            row = re.search(r'<tr data-event="e1">(.*?)</tr>', page, re.S)
            assert row, page
            cells = re.findall(r"<td>(.*?)</td>", row.group(1))
            # 03:00 UTC shown in the province's time (UTC+07:00)
            assert cells == ["2026-11-22 10:00:00", "web01", "syslog", "ssh_login_failed",
                             "Failed password for root from 10.77.0.9 &lt;script&gt;"]
            assert "events-not-found" not in page
            # alert 2's event is not in this spool: its id is listed and said to be missing
            page = c.get("/alerts/2").text
            assert "<code>e2</code>" in page and "Not in the event spool" in page
    finally:
        sp.close()


def test_incident_statuses_are_bilingual(store: AlertStore) -> None:
    c = client(store)
    login(c, "ana")
    page = c.get("/incidents").text
    assert "open / đang mở" in page and "new / mới" in page
    assert "<td>open</td>" not in page


def test_queue_pages_keep_filters_and_refuse_bad_parameters(store: AlertStore) -> None:
    """Issue 19: the queue stopped at 500 rows with no way to the rest; ?since=bogus ignored."""
    store.accept([Detection("r9", "Link down", "medium", T0 + timedelta(seconds=i), (f"x{i}",),
                            key=f"rtr{i}", host=f"rtr{i}", site="xa_phu_ly", system="wan")
                  for i in range(230)])
    c = client(store)
    login(c, "ana")
    rows = re.compile(r'<tr data-alert-id="(\d+)">')
    first = c.get("/alerts?severity=medium")
    assert first.status_code == 200
    ids1 = rows.findall(first.text)
    assert len(ids1) == 100 and "page 1 of 3" in first.text and "(230 alerts" in first.text
    assert 'href="?severity=medium&amp;page=2" id="page-next"' in first.text
    assert 'id="page-prev"' not in first.text
    last = c.get("/alerts?severity=medium&page=3")
    ids3 = rows.findall(last.text)
    assert len(ids3) == 30 and not set(ids1) & set(ids3) and 'id="page-next"' not in last.text
    every = set(ids1) | set(rows.findall(c.get("/alerts?severity=medium&page=2").text)) | set(ids3)
    assert len(every) == 230  # every alert on exactly one page
    beyond = c.get("/alerts?severity=medium&page=99")  # past the end: the last page
    assert rows.findall(beyond.text) == ids3
    for bad, said in (("page=0", "page='0'"), ("page=abc", "page='abc'"),
                      ("since=bogus", "since='bogus': expected one of 1h, 24h, 7d, 30d")):
        r = c.get(f"/alerts?{bad}")
        assert r.status_code == 400 and said in html.unescape(r.text), (bad, r.text[-500:])


def test_queue_filters_one_host_exactly_and_pages_keep_it(store: AlertStore) -> None:
    """The NOC device page links to /alerts?host=NAME: that host's alerts, not rtr1's and rtr10's
    both as a text search would give."""
    store.accept([Detection("r9", "Link down", "medium", T0 + timedelta(seconds=i), (f"h{i}",),
                            key=f"rtr{i % 12}", host=f"rtr{i % 12}", site="xa_phu_ly",
                            system="wan") for i in range(12)])
    c = client(store)
    login(c, "ana")
    page = c.get("/alerts?host=rtr1&status=all")
    assert page.status_code == 200
    assert len(re.findall(r'<tr data-alert-id="(\d+)">', page.text)) == 1
    assert "<td>rtr1</td>" in page.text and "<td>rtr10</td>" not in page.text
    assert 'value="rtr1" id="f-host"' in page.text
    assert c.get("/alerts?host=" + "x" * 300).status_code == 400


def test_incidents_page_is_paged_and_long_incidents_are_cut(store: AlertStore) -> None:
    """Issue 19: /incidents rendered 5,000 rows (1.1 MB) in 13 s, one query per incident."""
    # 130 hosts with one alert each (130 incidents), and one host with 25 alerts (one incident)
    store.accept([Detection("r9", "Link down", "medium", T0 + timedelta(seconds=i), (f"x{i}",),
                            key=f"rtr{i}", host=f"rtr{i}", site="xa_phu_ly", system="wan")
                  for i in range(130)]
                 + [Detection(f"r{k}", f"Rule {k}", "low", T0, (f"y{k}",), key="core1",
                              host="core1", site="dc1", system="wan") for k in range(100, 125)])
    total = store.incident_count()
    assert total == 2 + 130 + 1  # the template's two, then ours
    c = client(store)
    login(c, "ana")
    rows = re.compile(r'<tr><td><a href="/incidents/(\d+)">')
    first = c.get("/incidents")
    ids1 = rows.findall(first.text)
    assert len(ids1) == 100 and "page 1 of 2" in first.text and f"({total} incidents" in first.text
    ids2 = rows.findall(c.get("/incidents?page=2").text)
    assert len(ids2) == total - 100 and not set(ids1) & set(ids2)
    assert [int(i) for i in ids1] == sorted((int(i) for i in ids1), reverse=True)  # newest first
    core = next(i for i in store.incidents() if len(i.alert_ids) == 25)
    assert f'href="/incidents/{core.id}" class="more">+5 more / thêm</a>' in first.text
    assert c.get("/incidents?page=x").status_code == 400


def test_times_are_in_the_configured_zone_and_labelled(store: AlertStore) -> None:
    """Issue 19: times were UTC with no label; Asia/Ho_Chi_Minh by default, configurable."""
    sp = store.get(1)
    assert sp is not None
    for tz, label, shift in (("Asia/Ho_Chi_Minh", "Asia/Ho_Chi_Minh (UTC+07:00)", 7),
                             ("UTC", "UTC (UTC+00:00)", 0)):
        c = TestClient(create_app(StoreBackend(store), "test-secret", timezone=tz),
                       follow_redirects=False)
        login(c, "ana")
        page = c.get("/alerts").text
        assert f"Giờ / Times: {label}" in page
        seen = datetime.fromisoformat(sp.last_seen.replace("Z", "+00:00"))
        shown = (seen + timedelta(hours=shift)).strftime("%Y-%m-%d %H:%M:%S")
        assert f"<td>{shown}</td>" in page, (shown, page)
    with pytest.raises(ValueError, match="unknown time zone 'Mars/Olympus'"):
        create_app(StoreBackend(store), "test-secret", timezone="Mars/Olympus")


def test_alert_page_without_spool_lists_event_ids(store: AlertStore, tmp_path: Path) -> None:
    c = TestClient(create_app(StoreBackend(store), "test-secret",
                              events=SpoolEvents(tmp_path / "absent.db")), follow_redirects=False)
    login(c, "ana")
    r = c.get("/alerts/1")
    assert r.status_code == 200 and "<code>e1</code>" in r.text
    assert 'id="event-details"' not in r.text
    assert not (tmp_path / "absent.db").exists()  # looking never creates a spool
    c = client(store)  # no lookup at all
    login(c, "ana")
    page = c.get("/alerts/1").text
    assert "<code>e1</code>" in page and "No event spool configured" in page


def test_spool_lookup_ignores_unknown_ids_and_garbage_files(tmp_path: Path) -> None:
    spool_with_e1(tmp_path / "spool.db").close()
    found = SpoolEvents(tmp_path / "spool.db").events(["nope", "e1", "e1"])
    assert [e["id"] for e in found] == ["e1"]
    (tmp_path / "junk.db").write_bytes(b"not a database" * 100)
    assert SpoolEvents(tmp_path / "junk.db").events(["e1"]) == []


def test_expected_change_is_marked_in_the_queue_and_on_the_alert(store: AlertStore) -> None:
    w = store.changes.open("CHG-42", ["app07"], "os:ops", accounts=["restic"],
                           summary="restic upgrade", source="ansible")
    store.accept([Detection("uc", "New Local User Account Created", "medium",
                            parse(w.opened_at) + timedelta(seconds=1), ("e9",), key="app07",
                            host="app07", fields={"user.target.name": "restic"})])
    (a,) = store.query(AlertFilter(host="app07"))
    c = client(store)
    login(c, "ana")
    assert f'data-change="{w.id}"' not in c.get("/alerts").text  # resolved: not in the open queue
    queue = c.get("/alerts?status=all").text
    assert f'data-change="{w.id}"' in queue and "thay đổi dự kiến" in queue
    page = c.get(f"/alerts/{a.id}").text
    assert 'id="alert-change"' in page and "CHG-42" in page and "restic upgrade" in page
    assert "alert.expected_change" in page
    plain = c.get("/alerts/1").text
    assert 'id="alert-change"' not in plain
