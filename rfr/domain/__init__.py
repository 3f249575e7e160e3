"""Aggregates, events, value objects and policy rules. Pure Python, eventsourcing and attrs only.

Modules, by what they hold:

- ``people`` (Role, Rank, Actor), ``images`` (ImageLevel, PerceivedAgeBand, MopiGroup,
  VulnerabilityFlags), ``search_terms`` (SearchPurpose, SearchGround, Urgency, PreRfrChecks),
  ``forms`` (LibraryApplication, ApprovalRecord, Form3, Dissemination, LegalHold, ReviewOutcome),
  ``offences`` (Annex C), ``policy_config`` (PolicyConfig), ``match_report`` (the Match Report
  and the 8.27 caveat), ``adjudication`` (S-05, one shape for candidates and UCC matches).
- Rules as pure functions returning ``decisions.Decision``: ``rules_access``, ``rules_library``,
  ``rules_probe``, ``rules_search``, ``retention``; ``retention_sweep`` says what the
  retention worker must delete and when.
- Aggregates: ``library_approval``, ``reference_library``, ``enrolment_batch`` (a library's
  images), ``probe_image`` (with the UCC entry), ``search_request``, ``ucc_matches`` (U-02
  queue), ``user``, ``access_token``,
  ``policy_exception``, ``policy_settings``, ``report_schedule`` (with UsageReportRun),
  ``audit_access``, ``refused_attempt``. Their common base and the refusal mechanism are in
  ``governed``; ``legal_holds`` is the R-04 base of probes and libraries.
- Plumbing without technology: ``codec`` (value objects as event data), ``calendar``.
"""
