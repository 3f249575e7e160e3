"""Bearer tokens (A-05): bootstrap, one-time exchange, issue, revoke, expiry; secrets stored nowhere."""

from __future__ import annotations

import base64
import hashlib
import sqlite3
import stat
from datetime import timedelta

from litestar.testing import TestClient

from rfr.domain.access_token import AccessToken
from rfr.domain.people import Role
from rfr.entrypoints.http.app import create_app
from rfr.entrypoints.http.config import HttpSettings
from rfr.entrypoints.http.context import context_of
from rfr.infrastructure.settings import Settings


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_bootstrap_token_file_is_private_and_one_time(live_server):
    token_file = live_server.data_dir / "bootstrap-admin.token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert token_file.read_text().strip() == live_server.bootstrap_token
    # The session fixture already exchanged it: a second exchange is refused.
    again = live_server.as_token(live_server.bootstrap_token).post("/tokens/exchange", json={})
    assert again.status_code == 401
    assert "redeemed" in again.json()["detail"]


def test_the_server_says_where_the_token_and_the_reference_are(live_server):
    log = live_server.log_text()
    assert f"{live_server.base_url}/schema" in log
    assert f"{live_server.base_url}/schema/openapi.json" in log
    assert str(live_server.data_dir / "bootstrap-admin.token") in log


def test_a_second_start_on_the_same_store_does_not_bootstrap_again(tmp_path):
    settings = Settings(tmp_path, persistence="sqlite")
    first = create_app(settings)
    assert context_of(first).bootstrap_token_file == tmp_path / "bootstrap-admin.token"
    context_of(first).app.close()
    (tmp_path / "bootstrap-admin.token").unlink()
    second = create_app(settings)
    assert context_of(second).bootstrap_token_file is None
    assert not (tmp_path / "bootstrap-admin.token").exists()
    context_of(second).app.close()


def test_bad_credentials_are_401_with_a_bearer_challenge(live_server):
    client = live_server.anonymous()
    for header in (
        "Basic YWRtaW46YWRtaW4=",
        "Bearer",
        "Bearer not-a-token",
        "Bearer rfr1_AAAA",
        "Bearer rfr1_" + "A" * 43,
    ):
        response = client.get("/me", headers={"Authorization": header})
        assert response.status_code == 401, header
        assert response.headers["www-authenticate"].startswith("Bearer")


def test_one_time_tokens_only_exchange_and_bearer_tokens_never_do(live_server):
    admin = live_server.admin.client
    user = live_server.user([Role.RFR_USER.value], prefix="newcomer")
    one_time = admin.post(f"/users/{user.user_id}/tokens", json={"kind": "one_time"}).json()["secret"]
    assert live_server.as_token(one_time).get("/me").status_code == 401
    assert user.client.post("/tokens/exchange", json={}).status_code == 401
    exchanged = live_server.as_token(one_time).post("/tokens/exchange", json={"label": "laptop"})
    assert exchanged.status_code == 201
    token = exchanged.json()["token"]
    assert token["user_id"] == user.user_id and token["kind"] == "bearer" and token["label"] == "laptop"
    assert live_server.as_token(exchanged.json()["secret"]).get("/me").json()["user_id"] == user.user_id


def test_only_administrators_issue_and_never_to_themselves(live_server):
    """A-05: access is granted by an administrator, and never to oneself."""
    user = live_server.user([Role.RFR_USER.value])
    assert user.client.post(f"/users/{user.user_id}/tokens", json={}).status_code == 403
    own = live_server.admin.client.post("/users/admin/tokens", json={})
    assert own.status_code == 403
    assert own.json()["type"] == "/problems/policy-refusal" and own.json()["rule_ids"] == ["A-05"]
    assert live_server.admin.client.post("/users/nobody-here/tokens", json={}).status_code == 404


def test_revocation_ends_a_token_and_only_its_user_or_an_administrator_may_revoke(live_server):
    alice = live_server.user([Role.RFR_USER.value], prefix="alice")
    bob = live_server.user([Role.RFR_USER.value], prefix="bob")
    tokens = alice.client.get(f"/users/{alice.user_id}/tokens").json()
    current = [t for t in tokens if t["kind"] == "bearer" and t["status"] == "valid"]
    assert len(current) == 1 and "secret" not in current[0] and "token_hash" not in current[0]
    token_id = current[0]["token_id"]

    refused = bob.client.post(f"/tokens/{token_id}/revoke", json={"reason": "mischief"})
    assert refused.status_code == 403 and refused.json()["rule_ids"] == ["A-05"]
    assert bob.client.get(f"/users/{alice.user_id}/tokens").status_code == 403
    assert alice.client.get("/me").status_code == 200

    revoked = alice.client.post(f"/tokens/{token_id}/revoke", json={"reason": "laptop lost"})
    assert revoked.status_code == 201 and revoked.json()["status"] == "revoked"
    response = alice.client.get("/me")
    assert response.status_code == 401 and "revoked" in response.json()["detail"]

    listed = live_server.admin.client.get(f"/users/{alice.user_id}/tokens").json()
    assert {t["status"] for t in listed} == {"redeemed", "revoked"}


def test_a_token_stops_working_when_it_expires(tmp_path, clock):
    app = create_app(
        Settings(tmp_path, persistence="memory"), clock=clock, http=HttpSettings(token_ttl=timedelta(days=2))
    )
    with TestClient(app) as client:
        token = (tmp_path / "bootstrap-admin.token").read_text().strip()
        issued = client.post("/tokens/exchange", json={}, headers=_bearer(token)).json()
        assert issued["token"]["expires_at"].startswith((clock.now() + timedelta(days=2)).date().isoformat())
        headers = _bearer(issued["secret"])
        clock.advance(timedelta(days=2) - timedelta(seconds=1))
        assert client.get("/me", headers=headers).status_code == 200
        clock.advance(timedelta(seconds=1))
        response = client.get("/me", headers=headers)
        assert response.status_code == 401 and "expired" in response.json()["detail"]


def test_secrets_are_stored_only_as_hashes_and_never_logged(live_server):
    """The store holds SHA-256 digests of the secrets; neither the store nor the log holds a secret."""
    user = live_server.user([Role.RFR_USER.value], prefix="hashcheck")
    issued = live_server.admin.client.post(f"/users/{user.user_id}/tokens", json={"label": "second"}).json()
    secrets_seen = [user.token, issued["secret"], live_server.bootstrap_token, live_server.admin.token]
    # The files as bytes (anything written anywhere in them) and every stored row as the store
    # reads it: a row longer than a page spills into overflow pages that need not sit side by
    # side in the file, so a value can be split in the raw bytes (the digest was, by chance).
    files = b"".join(p.read_bytes() for p in sorted(live_server.data_dir.glob("events.sqlite3*")))
    with sqlite3.connect(
        f"file:{live_server.data_dir / 'events.sqlite3'}?mode=ro", uri=True, timeout=30
    ) as db:
        rows = b"\n".join(
            bytes(state) + topic.encode()
            for topic, state in db.execute("SELECT topic, state FROM stored_events ORDER BY rowid")
        )
    stored = files + b"\n" + rows
    log = live_server.log_text()
    for secret in secrets_seen:
        body = secret.removeprefix("rfr1_")
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        assert secret.encode() not in stored and body.encode() not in stored and raw not in stored
        assert body not in log
    digest = hashlib.sha256(
        base64.urlsafe_b64decode(issued["secret"].removeprefix("rfr1_") + "=")
    ).hexdigest()
    assert digest.encode() in rows
    assert issued["token"]["token_id"] == str(AccessToken.id_for(digest))
