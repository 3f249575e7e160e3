"""Application services: one use case class per area of the policy process.

``base`` holds the foundation (``UseCase``, ``Need``, ``Act``, ``Page``, ``list_ids``);
``bootstrap`` the one-time creation of the first administrator. Use cases return read
models (frozen attrs classes of JSON-able data), never aggregates.
"""
