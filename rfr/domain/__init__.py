"""Aggregates, events, value objects and policy rules. Pure Python, eventsourcing and attrs only.

Modules, by what they hold:

- ``people`` (Role, Rank, Actor), ``images`` (ImageLevel, PerceivedAgeBand, MopiGroup,
  VulnerabilityFlags), ``search_terms`` (SearchPurpose, SearchGround, Urgency, PreRfrChecks),
  ``forms`` (LibraryApplication, ApprovalRecord, Form3, Dissemination, LegalHold, ReviewOutcome),
  ``offences`` (Annex C), ``policy_config`` (PolicyConfig), ``match_report`` (8.27 caveat).
- Rules as pure functions returning ``decisions.Decision``: ``rules_access``, ``rules_library``,
  ``rules_probe``, ``rules_search``, ``retention``.
- Aggregates: ``library_approval``, ``reference_library``, ``probe_image`` (with the UCC entry),
  ``search_request``, ``user``, ``policy_exception``, ``policy_settings``, ``refused_attempt``;
  their common base and the refusal mechanism are in ``governed``.
"""
