"""The web client: server-rendered pages under ``/app/`` in the API's own Litestar application.

The pages are for the people in the loop (issue 12): they call the same application services as
the API (``HttpContext.services``), never the API over HTTP, and every route passes the same
access guard, declared with ``allow(...)`` like the API's.

- ``client.WebClient``: what ``create_app`` mounts (the pages' router, the static files, the
  Jinja2 templates) and keeps in the app's state.
- ``sessions``: sign-in exchanges a bearer token for a server-side session (an opaque cookie;
  the token sealed in ``$RFR_DATA_DIR/web-sessions.sqlite3``); idle and absolute limits
  (``config.WebSettings``); docs/adr/0023-web-client-sessions.md says why.
- ``security``: the session middleware in front of every page, and the CSRF check of every form.
- ``layout``, ``navigation``, ``forms``, ``errors``: what every page shares.
- ``pages``: one module per area (sign-in, start, audit, reports); see that package's docstring
  to add one. Templates are in ``templates/`` (one folder per area), CSS and JS in ``static/``.
"""
