"""The API's resources, one module per area; ``create_app`` mounts every module here.

A module contributes ``ROUTES``: a list of route handlers, routers or controllers. Each
handler declares its access with ``allow(...)`` or ``public()``
(``rfr.entrypoints.http.access_control``), takes ``principal: Principal`` when it acts for
the caller, gets its use case through a ``use_case(...)`` dependency that takes it from
the composition root's ``Services`` (``rfr.entrypoints.http.context``), and is
``sync_to_thread=True`` when it touches the store. Errors are raised, never turned into
responses here: ``problems`` maps them.
"""
