"""Flags the worker records for the Operational Lead when they fall due (L-06, L-09, L-10, U-03).

The catalogue has these things "flagged": an approval whose review is overdue (L-06), a verbal
approval whose written rationale is outstanding (L-09), an Inspector's urgent approval until a
Superintendent decides (L-10), a cache entry whose review is overdue (U-03). The views compute
the flags whenever they are read; the worker also records each one as an event the first time
it is due, naming the Operational Lead as notified, so the trail shows when each was raised,
and a worker that was stopped raises them on its next round (or on a round ``--as-of``).

When each is due (decided here once, read by the aggregates):

- L-06 and U-03: once the review date has passed, while the approval is in force or the entry
  is in the cache; a later review sets a new date, flagged again when it passes.
- L-09: once the written rationale's due date has passed with it still outstanding (it is
  shown as outstanding from the approval; it is *overdue* from its due date).
- L-10: from the urgent approval itself: the rule sets no deadline for the Superintendent,
  only that the approval stays flagged until one decides.

A flag is recorded once per rule and due date, so a round run twice records nothing new.
"""

from __future__ import annotations

from rfr.domain.people import Actor

# The worker, acting for the oversight the policy asks for; no User has its id, so nobody signs
# in as it, and it holds no role: recording a flag decides nothing.
OVERSIGHT_WORKER = Actor("rfr:oversight-worker", set())

# Whom each flag is for, named in the event as approvals name it (``library_approval``).
NOTIFIED = "operational_lead"

FLAG_MESSAGES = {
    "L-06": "the library approval's review is overdue",
    "L-09": "the written rationale of the verbal approval is overdue",
    "L-10": "the Inspector's urgent approval awaits a Superintendent's decision",
    "U-03": "the Unresolved Crime Cache entry's review is overdue",
}
