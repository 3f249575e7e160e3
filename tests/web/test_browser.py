"""The web client in a real browser (Debian's Chromium, headless, driven by Playwright) against a
real ``rfr serve`` on loopback: sign-in and sign-out, a session that expires, CSRF, the auditor's
timeline and verification, a user without the auditor role, and the keyboard alone.

Every wait is on a condition (a URL, an element, a text), never on time. Screenshots of the main
pages go to the ``screenshots`` folder for review.
"""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import expect
from web_steps import (
    age_sessions,
    event_count,
    focused,
    refusals_of,
    session_cookie,
    session_rows,
    sign_in,
)

from rfr.domain.people import Role


@pytest.fixture(scope="module")
def auditor(web_server):
    return web_server.user([Role.AUDITOR.value], prefix="auditor")


def test_sign_in_and_out_with_a_session_cookie_the_page_cannot_read(web_server, new_page, screenshots):
    user = web_server.user([Role.RFR_USER.value], prefix="analyst")
    page = new_page()
    page.goto("/app/")
    # Not signed in: the page sends the browser to sign in, and back afterwards.
    page.wait_for_url("**/app/sign-in?next=%2Fapp")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.screenshot(path=screenshots / "sign-in.png", full_page=True)

    sign_in(page, user.token)
    expect(page.get_by_test_id("signed-in-as")).to_have_text(user.user_id)
    page.screenshot(path=screenshots / "start-rfr-user.png", full_page=True)
    cookie = session_cookie(page)
    assert cookie is not None
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert cookie["secure"] is False  # plain HTTP on loopback; Secure over TLS (test_web_sessions)
    assert cookie["path"] == "/app"
    assert cookie["expires"] == -1  # ends with the browser; the server ends it sooner
    # The cookie is opaque: neither the bearer token nor anything a script could read.
    assert user.token not in cookie["value"]
    assert page.evaluate("document.cookie") == ""
    assert user.token not in page.content()
    assert session_rows(web_server, user.user_id) == 1

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/app/sign-in?why=signed-out")
    expect(page.get_by_role("status")).to_contain_text("You are signed out")
    assert session_cookie(page) is None
    # Ended on the server: the old cookie, replayed, opens nothing.
    assert session_rows(web_server, user.user_id) == 0
    replayed = httpx.get(
        f"{web_server.base_url}/app/", cookies={"rfr_session": cookie["value"]}, follow_redirects=False
    )
    assert replayed.status_code == 303
    assert replayed.headers["location"].startswith("/app/sign-in")


def test_a_session_idle_past_its_limit_ends_and_asks_to_sign_in_again(web_server, new_page, screenshots):
    user = web_server.user([Role.RFR_USER.value], prefix="idle")
    page = new_page()
    sign_in(page, user.token)
    # As if the browser had been left for 31 minutes (the default idle limit is 30).
    age_sessions(web_server, user.user_id, seconds=31 * 60)
    page.reload()
    page.wait_for_url("**/app/sign-in?**why=expired**")
    expect(page.get_by_role("status")).to_contain_text("Your session ended")
    page.screenshot(path=screenshots / "session-expired.png", full_page=True)
    assert session_rows(web_server, user.user_id) == 0
    assert session_cookie(page) is None
    # Signing in again leads back to the page that was open.
    page.get_by_label("Your bearer token").fill(user.token)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/app")
    expect(page.get_by_test_id("signed-in-as")).to_have_text(user.user_id)


def test_a_form_posted_without_its_csrf_token_is_refused_and_changes_nothing(
    web_server, new_page, screenshots
):
    user = web_server.user([Role.RFR_USER.value], prefix="csrf")
    page = new_page()
    sign_in(page, user.token)
    before = event_count(web_server)
    # The sign-out form, stripped of its token, as a forged form would come.
    page.locator("form.sign-out input[name=csrf_token]").evaluate("input => input.remove()")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="This form was not accepted")).to_be_visible()
    page.screenshot(path=screenshots / "csrf-refused.png", full_page=True)
    assert page.evaluate("document.readyState") == "complete"
    # 403, the session still live, nothing recorded.
    response = page.request.post("/app/sign-out", form={"csrf_token": "not-the-token"}, max_redirects=0)
    assert response.status == 403
    assert session_rows(web_server, user.user_id) == 1
    assert event_count(web_server) == before
    page.goto("/app/")
    expect(page.get_by_test_id("signed-in-as")).to_have_text(user.user_id)

    # Nor does signing in work without the sign-in form's own token: no session begins.
    other = web_server.user([Role.RFR_USER.value], prefix="csrf-sign-in")
    forged = httpx.post(
        f"{web_server.base_url}/app/sign-in", data={"token": other.token}, follow_redirects=False
    )
    assert forged.status_code == 403
    assert "set-cookie" not in forged.headers
    assert session_rows(web_server, other.user_id) == 0


def test_A03_an_auditor_reads_a_timeline_its_state_and_the_chain_verification(
    web_server, new_page, auditor, screenshots
):
    # Someone without the role tries the audit pages first: their refusal is what the auditor reads.
    outsider = web_server.user([Role.RFR_USER.value], prefix="curious")
    intruder = new_page()
    sign_in(intruder, outsider.token)
    intruder.goto("/app/audit")
    expect(intruder.get_by_role("heading", name="Access refused")).to_be_visible()
    (refusal_id,) = refusals_of(web_server, outsider.user_id)

    page = new_page()
    sign_in(page, auditor.token)
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Audit trail")).to_be_visible()
    nav.get_by_role("link", name="Audit trail").click()
    page.wait_for_url("**/app/audit")
    page.screenshot(path=screenshots / "audit-questions.png", full_page=True)

    page.get_by_label("Record id, or a user id").fill(refusal_id)
    page.get_by_label("Why you are looking").fill("complaint 2026/17")
    page.get_by_role("button", name="Show the timeline").click()
    page.wait_for_url("**/app/audit/timeline?**")
    events = page.locator("ol.timeline > li")
    expect(events).to_have_count(1)
    refused = events.first
    expect(refused).to_contain_text("RefusedAttempt.AttemptRefused")
    expect(refused.locator(".tag-refused")).to_have_text("Refused")
    expect(refused).to_contain_text(outsider.user_id)
    expect(refused).to_contain_text("does not hold auditor")
    expect(refused.locator("dd", has_text="A-03")).to_be_visible()
    expect(page.locator("pre.state")).to_contain_text("GET /app/audit")
    page.screenshot(path=screenshots / "audit-timeline.png", full_page=True)

    # A user's own record, by user id: events in order, who, when and why; then as of its first event.
    page.goto("/app/audit")
    page.get_by_label("Record id, or a user id").fill(outsider.user_id)
    page.get_by_label("Why you are looking").fill("complaint 2026/17")
    page.get_by_role("button", name="Show the timeline").click()
    page.wait_for_url("**/app/audit/timeline?**")
    versions = page.locator("ol.timeline .version").all_inner_texts()
    assert versions == [f"v{n}" for n in range(1, len(versions) + 1)] and len(versions) >= 2
    first = page.locator("ol.timeline > li").first
    expect(first).to_contain_text("User.Registered")
    expect(first).to_contain_text("admin")
    times = page.locator("ol.timeline time").evaluate_all("els => els.map(e => e.getAttribute('datetime'))")
    # As of the second of the first event (what the form's time control can say): the events up to
    # the end of that second, and the state they made.
    second = times[0][:19]
    page.get_by_label("As of (UTC)").fill(second)
    page.get_by_role("button", name="Show the timeline").click()
    page.wait_for_url("**until=**")
    expect(page.locator("ol.timeline > li")).to_have_count(sum(t[:19] <= second for t in times))
    expect(page.get_by_role("heading", name="State as of")).to_contain_text(second.replace("T", " "))
    expect(page.locator("pre.state")).to_contain_text(outsider.user_id)
    page.screenshot(path=screenshots / "audit-state-as-of.png", full_page=True)

    # The hash chain.
    page.goto("/app/audit")
    page.get_by_label("Why you are verifying").fill("monthly check")
    page.get_by_role("button", name="Verify the chain").click()
    page.wait_for_url("**/app/audit/verify?**")
    status = page.get_by_test_id("chain-status")
    expect(status).to_contain_text("Intact.")
    expect(status).to_contain_text("events verified")
    page.screenshot(path=screenshots / "audit-verify.png", full_page=True)


def test_A03_a_user_without_the_auditor_role_is_refused_the_audit_pages_and_not_shown_them(
    web_server, new_page, screenshots
):
    for role in (Role.RFR_USER, Role.ADMINISTRATOR):
        user = web_server.user([role.value], prefix=f"no-audit-{role.value}")
        page = new_page()
        sign_in(page, user.token)
        nav = page.get_by_role("navigation", name="Main")
        expect(nav.get_by_role("link", name="Start")).to_be_visible()
        expect(nav.get_by_role("link", name="Audit trail")).to_have_count(0)
        expect(page.get_by_role("link", name="Audit trail")).to_have_count(0)
        if role is Role.ADMINISTRATOR:
            # An administrator runs usage reports, but does not read the trail.
            expect(nav.get_by_role("link", name="Usage reports")).to_be_visible()
        else:
            expect(nav.get_by_role("link", name="Usage reports")).to_have_count(0)
        before = len(refusals_of(web_server, user.user_id))
        for path in (
            "/app/audit",
            "/app/audit/verify?reason=look",
            "/app/audit/timeline?record=admin&reason=x",
        ):
            response = page.goto(path)
            assert response is not None and response.status == 403, path
            expect(page.get_by_role("heading", name="Access refused")).to_be_visible()
            expect(page.locator(".problem")).to_contain_text("A-03")
            expect(page.locator(".problem")).to_contain_text("Yes: this refusal is in the audit trail.")
        # Refused server-side by the same gate as the API, and each refusal recorded.
        assert len(refusals_of(web_server, user.user_id)) == before + 3
        if role is Role.RFR_USER:
            page.screenshot(path=screenshots / "refused-audit.png", full_page=True)


def test_an_administrator_runs_a_usage_report_with_charts_drawn_on_the_server(
    web_server, new_page, screenshots
):
    admin = web_server.admin
    page = new_page()
    sign_in(page, admin.token)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Usage reports").click()
    page.wait_for_url("**/app/reports/usage")
    page.get_by_label("Why the report is run").fill("monthly report to the SRO")
    page.get_by_role("button", name="Run the report").click()
    page.wait_for_url("**/app/reports/usage?**")
    expect(page.get_by_role("heading", name="Key figures")).to_be_visible()
    # Charts are SVG images with their own titles; every figure is also text.
    chart = page.get_by_role("img", name="Refusals by rule")
    expect(chart).to_be_visible()
    expect(chart.locator("text.chart-label", has_text="A-03")).to_have_count(1)
    page.get_by_text("Refusals by rule: the figures as a table").click()
    expect(page.get_by_role("row", name="A-03")).to_be_visible()
    page.screenshot(path=screenshots / "usage-report.png", full_page=True)


def test_the_sign_in_form_works_with_the_keyboard_alone(web_server, new_page, auditor, screenshots):
    page = new_page()
    page.goto("/app/sign-in")
    page.get_by_role("heading", name="Sign in").wait_for()
    order = []
    for _ in range(4):
        page.keyboard.press("Tab")
        order.append(focused(page))
    assert order == ["a:Skip to main content", "a:RFR", "input#token", "button:Sign in"]
    # The focus is visible: a thick outline on whatever has it.
    page.keyboard.press("Shift+Tab")
    assert focused(page) == "input#token"
    outline = page.evaluate("() => getComputedStyle(document.activeElement).outlineStyle")
    width = page.evaluate("() => parseFloat(getComputedStyle(document.activeElement).outlineWidth)")
    assert outline != "none" and width >= 2
    page.screenshot(path=screenshots / "sign-in-keyboard-focus.png")
    page.keyboard.type(auditor.token)
    page.keyboard.press("Enter")
    page.wait_for_url("**/app/")
    expect(page.get_by_test_id("signed-in-as")).to_have_text(auditor.user_id)
    # Then on by keyboard: the skip link, then the navigation to the audit trail.
    page.keyboard.press("Tab")
    assert focused(page) == "a:Skip to main content"
    page.keyboard.press("Enter")
    assert focused(page) == "main#main"
    page.keyboard.press("Shift+Tab")
    for _ in range(10):
        if focused(page) == "a:Audit trail":
            break
        page.keyboard.press("Shift+Tab")
    assert focused(page) == "a:Audit trail"
    page.keyboard.press("Enter")
    page.wait_for_url("**/app/audit")
    expect(page.get_by_role("heading", name="Audit trail", exact=True)).to_be_visible()
