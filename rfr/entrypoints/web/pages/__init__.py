"""The web client's pages, one module per area; each module is mounted under ``/app`` by
``rfr.entrypoints.web.client``.

A page module holds:

- ``ROUTES``: its route handlers, each declaring who may open it with
  ``access_control.allow(...)`` (or ``public()``), as the API's routes do. The one access guard
  enforces it, and ``tests/web/test_web_route_access.py`` checks every route against every role.
- ``NAV`` (optional): ``NavLink(handler, label, order)`` entries for the navigation, shown to
  whoever the handler's route admits.

A handler renders with ``layout.page(request, "area/template.html", title=..., **context)``;
templates extend ``base.html``. Forms that post include ``{{ csrf_field }}`` (the session
middleware refuses a post without it); use cases come from ``HttpContext.services``, through
``rfr.entrypoints.http.context.use_case`` like the API's resources, so the same services decide
and record. Errors are raised, not drawn: ``errors.WEB_EXCEPTION_HANDLERS`` shows each as the
API's problem would say it. Modules whose names start with ``_`` are helpers, not areas.
"""
