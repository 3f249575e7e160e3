"""The API reference works with no network, and the OpenAPI document says how to authenticate."""

from __future__ import annotations

import re


def test_the_reference_page_loads_nothing_from_elsewhere_and_shows_each_routes_roles(live_server):
    response = live_server.anonymous().get("/schema")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    page = response.text
    # No script at all, and no stylesheet, image or font from another host.
    assert "<script" not in page.lower()
    assert not re.search(r"""(src|href)\s*=\s*['"]?(https?:)?//""", page, re.IGNORECASE)
    assert "/audit/head" in page and "Roles: auditor" in page
    assert "public (no token)" in page
    assert (
        "Roles: administrator, approving_officer, auditor, operational_lead, operations, rfr_user, sro "
        "(one-time token only)" in page
    )


def test_the_openapi_document_marks_guarded_operations_with_the_bearer_scheme(live_server):
    schema = live_server.anonymous().get("/schema/openapi.json").json()
    assert schema["components"]["securitySchemes"]["bearerToken"] == {"type": "http", "scheme": "bearer"}
    assert "security" not in schema["paths"]["/health"]["get"]
    assert schema["paths"]["/me"]["get"]["security"] == [{"bearerToken": []}]
    assert schema["paths"]["/users"]["post"]["requestBody"]


def test_the_interactive_console_is_served_from_this_server_only(live_server):
    """Swagger UI from the installed package: no CDN, so it works on a closed police network."""
    client = live_server.anonymous()
    page = client.get("/schema/swagger")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert not re.search(r"""(src|href)\s*=\s*['"]?(https?:)?//""", page.text, re.IGNORECASE)
    assets = re.findall(r"""(?:src|href)=['"](/console-assets/[^'"]+)['"]""", page.text)
    assert {a.rsplit("/", 1)[1] for a in assets} >= {"swagger-ui-bundle.js", "swagger-ui.css"}
    for asset in assets:
        response = client.get(asset)
        assert response.status_code == 200 and len(response.content) > 0, asset
    assert '"openapi":"3.1.0"' in page.text.replace(" ", "")
