"""Analyst, auditor and anonymous visitor in a real browser against the triage console."""

from __future__ import annotations

from typing import Any

import pytest

from dcops.alerts import AlertStore

pytestmark = pytest.mark.e2e
PASSWORDS = {"ana": "analyst-pass-1", "aud": "auditor-pass-1"}  # as seeded in conftest.py


def login(page: Any, base: str, user: str) -> None:
    page.goto(f"{base}/login")
    page.fill("#username", user)
    page.fill("#password", PASSWORDS[user])
    page.click("#login")
    page.wait_for_url(f"{base}/alerts")
    assert page.inner_text("#whoami").startswith(user)


def test_no_session_redirects_to_login(console: tuple[str, AlertStore], page: Any) -> None:
    base, _ = console
    page.goto(f"{base}/alerts/1")
    assert page.url.startswith(f"{base}/login")
    assert page.is_visible("#username")


def test_analyst_filters_acknowledges_resolves_and_sees_history(
        console: tuple[str, AlertStore], page: Any) -> None:
    base, store = console
    login(page, base, "ana")
    rows = page.locator("#queue tbody tr[data-alert-id]")
    assert rows.count() == 2
    page.select_option("#f-severity", "high")
    page.click("#apply-filters")
    page.wait_for_url("**severity=high**")
    assert rows.count() == 1
    assert "SSH brute force" in rows.first.inner_text()
    assert "high: 1" in page.inner_text("#counts")

    page.click("#queue a:has-text('SSH brute force')")
    page.wait_for_url(f"{base}/alerts/1")
    page.click("#to-acknowledged")
    page.wait_for_url(f"{base}/alerts/1")
    assert "acknowledged" in page.inner_text("#alert-status")
    page.fill("#note-text", "Nguồn tấn công bị chặn / source blocked")
    page.click("#add-note")
    assert "source blocked" in page.inner_text("#notes")
    page.click("#to-resolved")
    assert "resolved" in page.inner_text("#alert-status")

    history = page.inner_text("#history")
    assert "alert.acknowledged" in history and "alert.resolved" in history
    assert "ana" in history
    alert = store.get(1)
    assert alert is not None and alert.status == "resolved"
    assert store.verify_audit().ok


def test_auditor_sees_no_buttons_and_post_is_403(console: tuple[str, AlertStore],
                                                 page: Any) -> None:
    base, store = console
    login(page, base, "aud")
    assert page.locator("#bulk-actions").count() == 0
    page.goto(f"{base}/alerts/1")
    assert page.locator("#actions").count() == 0
    assert page.locator("button#to-acknowledged").count() == 0
    assert page.locator("#note-form").count() == 0
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    r = page.request.post(f"{base}/alerts/1/transition",
                          form={"to": "acknowledged", "csrf_token": token})
    assert r.status == 403
    alert = store.get(1)
    assert alert is not None and alert.status == "new"
    page.goto(f"{base}/audit")
    assert "Chain intact" in page.inner_text("#verify")


def test_form_without_csrf_token_is_refused(console: tuple[str, AlertStore], page: Any) -> None:
    base, store = console
    login(page, base, "ana")
    page.goto(f"{base}/alerts/2")
    page.evaluate("document.querySelectorAll('input[name=csrf_token]')"
                  ".forEach(e => e.remove())")
    with page.expect_response(lambda r: "/transition" in r.url) as info:
        page.click("#to-acknowledged")
    assert info.value.status == 403
    assert "CSRF" in page.inner_text("#error-message")
    alert = store.get(2)
    assert alert is not None and alert.status == "new"
