"""Image requests beyond capacity get 503 with Retry-After, and change nothing (issue 8).

In process, so the test can hold the pool's admissions itself: with one image request per
user (RFR_HEAVY_PER_USER=1) held open by the test, that user's upload is turned away at once,
another user's is served meanwhile, and nothing of the refused upload is stored.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from litestar.testing import TestClient
from workflow_builders import form3, form3_part, image_part, lfw_photos

from rfr.entrypoints.http.app import create_app
from rfr.entrypoints.http.context import context_of
from rfr.infrastructure.settings import Settings


def _user(admin: TestClient, user_id: str) -> dict[str, str]:
    assert admin.post("/users", json={"user_id": user_id, "roles": ["rfr_user"]}).status_code == 201
    assert (
        admin.put(f"/users/{user_id}/training", json={"trained": True, "reason": "done"}).status_code == 200
    )
    issued = admin.post(f"/users/{user_id}/tokens", json={"kind": "bearer"})
    assert issued.status_code == 201, issued.text
    return {"Authorization": f"Bearer {issued.json()['secret']}"}


def test_an_image_request_beyond_the_users_share_is_503_with_retry_after(
    tmp_path: Path, shared_faces: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("RFR_HEAVY_PER_USER", "1")
    app = create_app(Settings(tmp_path, persistence="memory"))
    context = context_of(app)
    photo = lfw_photos(shared_faces)["bill_simon"][0]
    with TestClient(app) as client:
        token = (tmp_path / "bootstrap-admin.token").read_text().strip()
        bearer = client.post("/tokens/exchange", json={}, headers={"Authorization": f"Bearer {token}"})
        client.headers["Authorization"] = f"Bearer {bearer.json()['secret']}"
        busy_user, other_user = _user(client, "busy-analyst"), _user(client, "other-analyst")
        files = [image_part(photo), form3_part(form3())]
        heavy = context.services.biometrics.heavy
        stored = len(context.app.recorder.select_notifications(start=1, limit=100_000))
        with heavy.admit("busy-analyst"):  # the user's one image request, still running
            refused = client.post("/probes", files=files, headers=busy_user)
            assert refused.status_code == 503, refused.text
            assert refused.headers["retry-after"] == "5"
            assert refused.headers["content-type"].startswith("application/problem+json")
            assert refused.json()["type"] == "/problems/busy"
            assert len(context.app.recorder.select_notifications(start=1, limit=100_000)) == stored
            served = client.post("/probes", files=files, headers=other_user)
            assert served.status_code == 201, served.text
        again = client.post("/probes", files=files, headers=busy_user)
        assert again.status_code == 201, again.text
