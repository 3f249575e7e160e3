"""The demo's HTTP client: callers with their own bearer tokens, and problems turned into one error."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import attrs
import httpx

# Enrolment and the first probe load the face models on the server: give them time.
TIMEOUT = httpx.Timeout(300.0, connect=10.0)


class ApiError(RuntimeError):
    """A request the demo needed was refused or failed; the text is the API's own problem."""

    def __init__(self, method: str, path: str, response: httpx.Response) -> None:
        self.status = response.status_code
        try:
            body = response.json()
        except ValueError:
            body = None
        self.problem: Mapping[str, Any] = body if isinstance(body, Mapping) else {}
        detail = self.problem.get("detail") or response.text[:300]
        rules = self.problem.get("rule_ids")
        errors = self.problem.get("errors")
        extra = f" (rules {', '.join(rules)})" if rules else ""
        if errors:
            extra += "; " + "; ".join(f"{e.get('field')}: {e.get('message')}" for e in errors)
        super().__init__(f"{method} {path} answered {self.status}: {detail}{extra}")


@attrs.define
class Caller:
    """One person acting through the API with their own token."""

    user_id: str
    client: httpx.Client

    def get(self, path: str, **params: Any) -> Any:
        return _json("GET", path, self.client.get(path, params=params))

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        if body is not None:
            kwargs["json"] = body
        return _json("POST", path, self.client.post(path, **kwargs))

    def put(self, path: str, body: Any) -> Any:
        return _json("PUT", path, self.client.put(path, json=body))

    def text(self, path: str) -> str:
        response = self.client.get(path)
        if response.is_error:
            raise ApiError("GET", path, response)
        return response.text


def _json(method: str, path: str, response: httpx.Response) -> Any:
    if response.is_error:
        raise ApiError(method, path, response)
    return response.json() if response.content else None


@attrs.define
class Api:
    base_url: str
    _clients: list[httpx.Client] = attrs.field(factory=list)

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        client = httpx.Client(base_url=self.base_url, headers=headers, timeout=TIMEOUT)
        self._clients.append(client)
        return client

    def exchange(self, one_time_token: str) -> str:
        """The bearer token a one-time token buys (it works once)."""
        path = "/tokens/exchange"
        issued = _json("POST", path, self.client(one_time_token).post(path, json={"label": "rfr demo"}))
        return str(issued["secret"])

    def administrator(self, token_file: Path) -> Caller:
        """The administrator whose token is in ``token_file``: a bearer token, or a one-time
        token (the bootstrap token), which is exchanged here."""
        token = token_file.read_text(encoding="ascii").strip()
        response = self.client(token).get("/me")
        if response.status_code == 401:
            token = self.exchange(token)
            response = self.client(token).get("/me")
        me = _json("GET", "/me", response)
        if "administrator" not in me["roles"]:
            raise RuntimeError(f"the token in {token_file} is {me['user_id']}'s, who is not an administrator")
        return Caller(me["user_id"], self.client(token))

    def register(
        self,
        admin: Caller,
        user_id: str,
        roles: Iterable[str],
        *,
        rank: str | None = None,
        teams: Iterable[str] = (),
    ) -> Caller:
        """A new trained user with their own bearer token (one-time token issued, then exchanged)."""
        body: dict[str, Any] = {"user_id": user_id, "roles": list(roles), "teams": list(teams)}
        if rank is not None:
            body["rank"] = rank
        admin.post("/users", body)
        admin.put(f"/users/{user_id}/training", {"trained": True, "reason": "RFR course passed (demo)"})
        one_time = admin.post(f"/users/{user_id}/tokens", {"kind": "one_time", "label": "rfr demo"})
        return Caller(user_id, self.client(self.exchange(one_time["secret"])))

    def close(self) -> None:
        for client in self._clients:
            client.close()
