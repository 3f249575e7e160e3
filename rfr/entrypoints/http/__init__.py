"""The HTTP API (Litestar). Start with ``rfr serve``; compose with ``app.create_app(settings)``.

Adding a resource: a new module in ``resources/`` with ``ROUTES`` (see that package's
docstring). Each route declares its roles with ``access_control.allow(...)`` (or
``public()``); without one the app refuses to start. Handlers take
``principal: NamedDependency[Principal]`` and a use case provided by ``context.use_case``;
they raise errors and ``problems`` turns them into RFC 9457 responses.

Testing: ``tests/http/http_harness.py`` starts a real server process and makes users with
tokens; ``tests/http/test_route_access.py`` checks every route's declaration against every
role, so a new route is covered the moment it is mounted.
"""
