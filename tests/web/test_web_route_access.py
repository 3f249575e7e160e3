"""The web client's gate, sessions and forms, in process (Litestar's TestClient, a stepping clock):
every page against every role, the session's limits, the cookie's flags, CSRF on every form.

The pages pass the API's one access guard (``rfr.entrypoints.http.access_control``): a page
refuses exactly the roles its ``allow(...)`` leaves out, under the same rule, and records the
refusal (A-01, A-05; A-03 for the audit trail). The route table is read from the application
itself, so a page added later is covered without a new test.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import attrs
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from rfr.application.services.base import list_ids
from rfr.domain.audit_access import AuditAccess
from rfr.domain.people import Role
from rfr.domain.refused_attempt import RefusedAttempt
from rfr.domain.user import User
from rfr.entrypoints.http.access_control import http_handlers, route_access
from rfr.entrypoints.http.app import OPENAPI_JSON_PATH, create_app
from rfr.entrypoints.http.context import context_of
from rfr.entrypoints.web.config import WebSettings
from rfr.entrypoints.web.security import SECURITY_HEADERS
from rfr.entrypoints.web.sessions import SESSIONS_FILE
from rfr.infrastructure.settings import Settings

WEB = "/app"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
TYPED = re.compile(r":\w+}")


@attrs.define
class Clock:
    current: Any

    def now(self) -> Any:
        return self.current


@attrs.define
class Web:
    app: Litestar
    client: TestClient[Litestar]
    clock: Clock
    admin: dict[str, str]
    data_dir: Path

    def user(self, *roles: Role, trained: bool = True) -> tuple[str, str]:
        """(user id, bearer token) of a new user registered through the API."""
        user_id = f"web-{uuid.uuid4().hex[:8]}"
        body = {"user_id": user_id, "roles": [r.value for r in roles]}
        assert self.client.post("/users", json=body, headers=self.admin).status_code == 201
        if trained:
            training = {"trained": True, "reason": "course passed"}
            assert self.client.put(f"/users/{user_id}/training", json=training, headers=self.admin).is_success
        issued = self.client.post(f"/users/{user_id}/tokens", json={"kind": "bearer"}, headers=self.admin)
        assert issued.status_code == 201, issued.text
        return user_id, issued.json()["secret"]

    def sign_in(self, token: str, *, next_path: str = "") -> Any:
        """The sign-in form sent as a browser sends it; the response (a redirect when it worked)."""
        self.client.cookies.clear()
        form = self.client.get(f"{WEB}/sign-in")
        csrf = CSRF.search(form.text)
        assert csrf, form.text
        data = {"token": token, "csrf_token": csrf.group(1), "next": next_path}
        return self.client.post(f"{WEB}/sign-in", data=data, follow_redirects=False)

    def session(self, token: str) -> str:
        """The session cookie's value after signing in with ``token``."""
        response = self.sign_in(token)
        assert response.status_code == 303, response.text
        value = self.client.cookies.get("rfr_session")
        assert value
        self.client.cookies.clear()
        return value

    def get(self, path: str, cookie: str | None, **kw: Any) -> Any:
        headers = {"Cookie": f"rfr_session={cookie}"} if cookie else {}
        return self.client.get(
            path, headers={**headers, **kw.pop("headers", {})}, follow_redirects=False, **kw
        )

    def post(self, path: str, cookie: str | None, data: dict[str, str]) -> Any:
        headers = {"Cookie": f"rfr_session={cookie}"} if cookie else {}
        return self.client.post(path, data=data, headers=headers, follow_redirects=False)

    def csrf_of(self, cookie: str) -> str:
        match = CSRF.search(self.get(f"{WEB}/", cookie).text)
        assert match
        return match.group(1)

    def events(self) -> int:
        return context_of(self.app).services.app.recorder.max_notification_id() or 0

    def refusals(self) -> list[RefusedAttempt]:
        store = context_of(self.app).app
        ids, _ = list_ids(store, RefusedAttempt.AttemptRefused, limit=500)
        return [store.get(i, RefusedAttempt) for i in ids]


def _web(tmp_path: Path, *, base_url: str = "http://testserver.local", web: WebSettings | None = None):
    from datetime import UTC, datetime

    clock = Clock(datetime.now(UTC))
    app = create_app(Settings(tmp_path, persistence="memory"), clock=clock, web=web)
    client = TestClient(app, base_url=base_url, raise_server_exceptions=False)
    return app, client, clock


@pytest.fixture
def web(tmp_path: Path) -> Iterator[Web]:
    yield from _started(tmp_path)


def _started(tmp_path: Path, **kw: Any) -> Iterator[Web]:
    app, client, clock = _web(tmp_path, **kw)
    with client:
        bootstrap = (tmp_path / "bootstrap-admin.token").read_text().strip()
        exchanged = client.post("/tokens/exchange", json={}, headers={"Authorization": f"Bearer {bootstrap}"})
        admin = {"Authorization": f"Bearer {exchanged.json()['secret']}"}
        yield Web(app, client, clock, admin, tmp_path)


def _pages(app: Litestar) -> list[tuple[str, str, frozenset[Role], str]]:
    found = []
    for path, handler in http_handlers(app):
        access = route_access(handler)
        if (path == WEB or path.startswith(f"{WEB}/")) and not access.public:
            found += [(m, path, access.roles, access.rule) for m in sorted(handler.http_methods)]
    return found


def _concrete(path: str) -> str:
    """A page's path with its parameters filled in, naming a record that does not exist."""
    return re.sub(r"\{\w+:(\w+)\}", lambda m: str(uuid.uuid4()) if m.group(1) == "uuid" else "face-1", path)


def test_A05_every_page_admits_exactly_its_roles_through_the_apis_gate(web: Web):
    """A-05 (A-03 for the audit pages): a page refuses every role its allow() leaves out, 403,
    naming the rule, and records the refusal; its roles get the page; nobody unsigned gets it."""
    pages = _pages(web.app)
    assert {(m, p) for m, p, *_ in pages} >= {
        ("GET", "/app"),
        ("GET", "/app/audit"),
        ("GET", "/app/audit/timeline"),
        ("GET", "/app/audit/verify"),
        ("GET", "/app/reports/usage"),
        ("GET", "/app/probes/new"),
        ("POST", "/app/probes"),
        ("GET", "/app/probes/{probe_id:uuid}"),
        ("GET", "/app/probes/{probe_id:uuid}/image"),
        ("POST", "/app/probes/{probe_id:uuid}/selection"),
        ("POST", "/app/probes/{probe_id:uuid}/quality-decision"),
        ("POST", "/app/probes/{probe_id:uuid}/technical-advice"),
        ("GET", "/app/queues"),
        ("GET", "/app/queues/endorsement"),
        ("POST", "/app/queues/endorsement"),
        ("GET", "/app/queues/approval"),
        ("POST", "/app/queues/approval"),
        ("GET", "/app/queues/search"),
        ("POST", "/app/queues/search"),
        ("GET", "/app/queues/ucc"),
        ("POST", "/app/queues/ucc"),
        ("GET", "/app/queues/ucc-entry"),
        ("POST", "/app/queues/ucc-entry"),
    }
    holders = {role: web.session(web.user(role)[1]) for role in Role}
    checked = 0
    for method, path, roles, rule in pages:
        url = _concrete(path)
        # A page of one record (a probe, a search) is admitted and then finds no such record.
        admitted = (200, 400, 404) if url != path else (200, 400)
        anonymous = web.client.request(method, url, follow_redirects=False)
        assert anonymous.status_code == 303, (method, path)
        assert anonymous.headers["location"].startswith(f"{WEB}/sign-in")
        for role, cookie in holders.items():
            before = len(web.refusals())
            # A form's post carries its session's CSRF token, as the page's own form would.
            form = {"csrf_token": web.csrf_of(cookie)} if method == "POST" else None
            response = web.client.request(
                method, url, headers={"Cookie": f"rfr_session={cookie}"}, data=form, follow_redirects=False
            )
            if role in roles:
                assert response.status_code in admitted, (method, path, role, response.text)
                assert len(web.refusals()) == before
                continue
            assert response.status_code == 403, (method, path, role)
            assert response.headers["content-type"].startswith("text/html")
            assert "Access refused" in response.text and rule in response.text
            (refusal,) = web.refusals()[before:]
            # The refusal names the route's template, its parameters without their types.
            assert refusal.command == f"call {method} {TYPED.sub('}', path)}"
            assert refusal.refusals[0].rule_ids == (rule,)
            checked += 1
    assert checked >= 15
    assert all(rule == "A-03" for _, path, _, rule in pages if path.startswith(f"{WEB}/audit"))


def test_L13_each_role_is_shown_the_links_its_roles_open_and_no_others(web: Web):
    """The navigation is read from the same declarations the gate enforces: a link is shown exactly
    when following it would be admitted."""
    expected = {
        Role.AUDITOR: {"Start", "Audit trail", "Usage reports"},
        Role.ADMINISTRATOR: {"Start", "Usage reports"},
        Role.RFR_USER: {"Start", "Submit a probe", "Searches"},
        Role.APPROVING_OFFICER: {"Start", "Your queue"},
        Role.SRO: {"Start", "Your queue"},
        Role.OPERATIONAL_LEAD: {"Start"},
    }
    for role, labels in expected.items():
        cookie = web.session(web.user(role)[1])
        page = web.get(f"{WEB}/", cookie).text
        nav = page.split('aria-label="Main"', 1)[1].split("</nav>", 1)[0]
        links = dict(re.findall(r'<a href="([^"]+)"[^>]*>([^<]+)</a>', nav))
        assert set(links.values()) == labels, role
        for href in links:
            assert web.get(href, cookie).status_code == 200, (role, href)


def test_pages_take_no_bearer_header_only_a_session(web: Web):
    _, token = web.user(Role.AUDITOR)
    bearer = web.get(f"{WEB}/audit", None, headers={"Authorization": f"Bearer {token}"})
    assert bearer.status_code == 303
    assert bearer.headers["location"] == f"{WEB}/sign-in?next=%2Fapp%2Faudit"
    # And a session's bearer token is the only one its pages act on, whatever header comes with it.
    cookie = web.session(token)
    other = web.get(f"{WEB}/audit", cookie, headers={"Authorization": "Bearer rfr1_forged"})
    assert other.status_code == 200


def test_the_session_cookie_is_httponly_strict_and_secure_over_tls(tmp_path: Path):
    for base_url, settings, secure in (
        ("http://testserver.local", None, False),
        ("https://testserver.local", None, True),
        ("http://testserver.local", WebSettings(cookie_secure="always"), True),
    ):
        folder = tmp_path / uuid.uuid4().hex
        folder.mkdir()
        for web in _started(folder, base_url=base_url, web=settings):
            token = web.user(Role.RFR_USER)[1]
            web.client.cookies.clear()
            form = web.client.get(f"{WEB}/sign-in")
            sign_in_cookie = form.cookies["rfr_sign_in"]
            assert ("secure" in form.headers["set-cookie"].lower()) is secure
            # Sent back by hand: a client keeps a Secure cookie from a plain-HTTP origin to itself
            # (the "always" case stands for a proxy that ends TLS in front of the server).
            response = web.client.post(
                f"{WEB}/sign-in",
                data={"token": token, "csrf_token": CSRF.search(form.text).group(1)},
                headers={"Cookie": f"rfr_sign_in={sign_in_cookie}"},
                follow_redirects=False,
            )
            assert response.status_code == 303, response.text
            (cookie,) = [c for c in response.headers.get_list("set-cookie") if c.startswith("rfr_session=")]
            attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
            assert {"httponly", "path", "samesite"} <= attributes
            assert "samesite=strict" in cookie.lower() and "path=/app" in cookie.lower()
            assert ("secure" in attributes) is secure, (base_url, cookie)
            assert "max-age" not in attributes and "expires" not in attributes


def test_a_session_ends_when_idle_too_long_and_at_its_absolute_limit(tmp_path: Path):
    limits = WebSettings(idle=timedelta(minutes=30), absolute=timedelta(hours=2))
    for web in _started(tmp_path, web=limits):
        _, token = web.user(Role.RFR_USER)
        # Idle: used within 30 minutes it lives on; left 31 minutes, it is over.
        cookie = web.session(token)
        web.clock.current += timedelta(minutes=29)
        assert web.get(f"{WEB}/", cookie).status_code == 200
        web.clock.current += timedelta(minutes=31)
        ended = web.get(f"{WEB}/", cookie)
        assert ended.status_code == 303
        assert ended.headers["location"] == f"{WEB}/sign-in?next=%2Fapp&why=expired"
        assert 'rfr_session=""' in ended.headers["set-cookie"]
        assert web.get(f"{WEB}/", cookie).headers["location"] == f"{WEB}/sign-in?next=%2Fapp"
        # Absolute: used every 20 minutes, it still ends two hours after signing in.
        cookie = web.session(token)
        for _ in range(5):
            web.clock.current += timedelta(minutes=20)
            assert web.get(f"{WEB}/", cookie).status_code == 200
        web.clock.current += timedelta(minutes=21)
        assert "why=expired" in web.get(f"{WEB}/", cookie).headers["location"]


def test_a_revoked_token_ends_its_session(web: Web):
    user_id, token = web.user(Role.RFR_USER)
    cookie = web.session(token)
    (listed,) = web.client.get(f"/users/{user_id}/tokens", headers=web.admin).json()
    revoked = web.client.post(
        f"/tokens/{listed['token_id']}/revoke", json={"reason": "device lost"}, headers=web.admin
    )
    assert revoked.is_success, revoked.text
    ended = web.get(f"{WEB}/", cookie)
    assert ended.status_code == 303 and "why=token" in ended.headers["location"]
    assert web.get(f"{WEB}/", cookie).headers["location"] == f"{WEB}/sign-in?next=%2Fapp"


def test_sign_in_refuses_what_the_api_refuses(web: Web):
    # An unknown token, a one-time token (only exchanged), a disabled user (A-05, recorded).
    unknown = web.sign_in("rfr1_" + "A" * 43)
    assert unknown.status_code == 401 and "This token was not accepted" in unknown.text
    user_id, token = web.user(Role.RFR_USER)
    one_time = web.client.post(f"/users/{user_id}/tokens", json={"kind": "one_time"}, headers=web.admin)
    refused = web.sign_in(one_time.json()["secret"])
    assert refused.status_code == 401 and "one-time token" in refused.text
    disable = web.client.post(
        f"/users/{user_id}/disable", json={"reason": "left the force"}, headers=web.admin
    )
    assert disable.is_success, disable.text
    before = len(web.refusals())
    disabled = web.sign_in(token)
    assert disabled.status_code == 403 and "disabled" in disabled.text
    (refusal,) = web.refusals()[before:]
    assert refusal.refusals[0].rule_ids == ("A-05",)
    assert not (web.data_dir / SESSIONS_FILE).exists() or "rfr_session" not in disabled.headers.get(
        "set-cookie", ""
    )


def test_every_form_needs_its_csrf_token_and_without_it_nothing_changes(web: Web):
    _, token = web.user(Role.AUDITOR)
    cookie = web.session(token)
    csrf = web.csrf_of(cookie)
    before = web.events()
    for data in ({}, {"csrf_token": ""}, {"csrf_token": "x" * len(csrf)}, {"csrf_token": csrf[:-1]}):
        refused = web.post(f"{WEB}/sign-out", cookie, data)
        assert refused.status_code == 403, data
        assert "This form was not accepted" in refused.text
        assert "set-cookie" not in refused.headers
    assert web.get(f"{WEB}/", cookie).status_code == 200  # still signed in
    assert web.events() == before
    # Another session's token is no better.
    other = web.session(web.user(Role.AUDITOR)[1])
    assert web.post(f"{WEB}/sign-out", cookie, {"csrf_token": web.csrf_of(other)}).status_code == 403
    # Its own is accepted: the session ends on the server.
    signed_out = web.post(f"{WEB}/sign-out", cookie, {"csrf_token": csrf})
    assert signed_out.status_code == 303
    assert signed_out.headers["location"] == f"{WEB}/sign-in?why=signed-out"
    assert web.get(f"{WEB}/", cookie).status_code == 303
    # A post with no live session runs nothing either: it is sent to sign in.
    assert web.post(f"{WEB}/sign-out", cookie, {"csrf_token": csrf}).status_code == 303


def test_the_sign_in_form_needs_its_own_csrf_cookie(web: Web):
    _, token = web.user(Role.RFR_USER)
    web.client.cookies.clear()
    # No sign-in cookie (a form posted from elsewhere), or a token that is not the cookie's.
    bare = web.client.post(
        f"{WEB}/sign-in", data={"token": token, "csrf_token": "guess"}, follow_redirects=False
    )
    assert bare.status_code == 403
    web.client.get(f"{WEB}/sign-in")
    wrong = web.client.post(
        f"{WEB}/sign-in", data={"token": token, "csrf_token": "guess"}, follow_redirects=False
    )
    assert wrong.status_code == 403
    assert "rfr_session" not in wrong.headers.get("set-cookie", "")


def test_signing_in_goes_back_only_to_a_page_of_this_client(web: Web):
    _, token = web.user(Role.AUDITOR)
    assert web.sign_in(token, next_path="/app/audit").headers["location"] == "/app/audit"
    for elsewhere in ("https://example.org/", "//example.org/app", "/schema", "/app\\..\\x", "javascript:x"):
        assert web.sign_in(token, next_path=elsewhere).headers["location"] == "/app/", elsewhere


def test_a_new_sign_in_gets_a_new_session_id(web: Web):
    _, token = web.user(Role.RFR_USER)
    first = web.session(token)
    response = web.client.post(
        f"{WEB}/sign-in",
        data={"token": token, "csrf_token": "x"},
        headers={"Cookie": f"rfr_session={first}; rfr_sign_in=x"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    second = response.cookies.get("rfr_session")
    assert second and second != first
    assert web.get(f"{WEB}/", first).status_code == 303  # the session it replaced is over


def test_A03_a_timeline_read_on_a_page_is_recorded_with_every_event_shown(web: Web):
    _, token = web.user(Role.AUDITOR)
    cookie = web.session(token)
    admin_record = User.id_for("admin")
    page = web.get(f"{WEB}/audit/timeline", cookie, params={"record": "admin", "reason": "quarterly audit"})
    assert page.status_code == 200, page.text
    shown = re.findall(r'<span class="version">v(\d+)</span>', page.text)
    assert shown == [str(n) for n in range(1, len(shown) + 1)]
    store = context_of(web.app).app
    ids, _ = list_ids(store, AuditAccess.Queried, limit=500)
    access = store.get(ids[-1], AuditAccess)
    assert access.items == tuple(f"{admin_record}@{v}" for v in shown)
    assert str(access.id) in page.text
    # A question without a reason is asked again, not answered, and not recorded.
    again = web.get(f"{WEB}/audit/timeline", cookie, params={"record": "admin"})
    assert again.status_code == 400 and "Enter why you are looking" in again.text
    assert list_ids(store, AuditAccess.Queried, limit=500)[0] == ids
    # An unknown record is a 404 page, the question recorded all the same.
    missing = web.get(f"{WEB}/audit/timeline", cookie, params={"record": str(uuid.uuid4()), "reason": "look"})
    assert missing.status_code == 404
    assert len(list_ids(store, AuditAccess.Queried, limit=500)[0]) == len(ids) + 1


def test_pages_forbid_framing_and_foreign_scripts_and_are_not_cached(web: Web):
    cookie = web.session(web.user(Role.RFR_USER)[1])
    for response in (
        web.get(f"{WEB}/sign-in", None),
        web.get(f"{WEB}/", cookie),
        web.get(f"{WEB}/audit", cookie),  # a refusal page
        web.post(f"{WEB}/sign-out", cookie, {}),  # a CSRF refusal
    ):
        for name, value in SECURITY_HEADERS.items():
            assert response.headers.get(name) == value, (response.request.url, name)


def test_pages_are_not_part_of_the_apis_openapi_document(web: Web):
    document = web.client.get(OPENAPI_JSON_PATH).json()
    assert not [path for path in document["paths"] if path.startswith(WEB)]


def test_A02_a_broken_chain_is_told_in_words_not_only_in_colour(web: Web):
    """The verification page for a broken chain: an alert naming the position and the reason."""
    template = web.app.template_engine.get_template("audit/verify.html")
    html = template.render(
        title="Hash chain verification",
        principal=None,
        signed_in_as=None,
        roles=[],
        nav=[],
        csrf_field="",
        csrf_token="",
        sign_out_path="/app/sign-out",
        web_path=WEB,
        result={"ok": False, "checked": 6, "first_bad_position": 7, "reason": "event altered", "head": None},
        anchor="",
        reason="monthly check",
        access_id="00000000-0000-0000-0000-000000000000",
    )
    status = html.split('data-testid="chain-status"', 1)[0].rsplit("<div", 1)[1]
    assert 'role="alert"' in status
    assert "Broken</strong> at position 7: event altered" in html
