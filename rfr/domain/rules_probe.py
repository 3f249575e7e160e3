"""Rules on a probe image and its Form 3 (P-01..P-08, C-01), and on its UCC addition (U-01). Pure functions.

P-04 is decided by ``under_16_safeguards`` alone: the submission of a Form 3, the endorsement
a probe needs and the giving of it, and the probe's readiness for a search all ask it, with
the perceived age the probe has now, so a reassessed age meets the same rule as a submitted one.
"""

from __future__ import annotations

import enum
from collections.abc import Collection

from rfr.domain.decisions import Decision, combine
from rfr.domain.forms import Form3
from rfr.domain.images import ImageLevel, PerceivedAgeBand, VulnerabilityFlags
from rfr.domain.offences import OTHER_CODE, find_offence
from rfr.domain.people import Rank
from rfr.domain.policy_config import PolicyConfig
from rfr.domain.search_terms import SearchGround

# Bands handled as "under 16" (P-04): an unknown perceived age is treated cautiously (Annex A para 2).
UNDER_16_BANDS = frozenset({PerceivedAgeBand.AGE_13_15, PerceivedAgeBand.UNKNOWN})


class EndorsementKind(enum.StrEnum):
    """Individual endorsements of a probe by an Inspector or above, named by the rule that asks."""

    UNDER_16 = "P-04"
    VULNERABILITY = "P-06"
    HIGH_IMAGE_LEVEL = "P-08"


def form3_complete(form: Form3) -> Decision:
    """P-01: the parts every Form 3 must state."""
    missing = []
    if not form.case_reference.strip():
        missing.append("case reference")
    if not form.purposes:
        missing.append("a search purpose (8.2)")
    if not form.grounds:
        missing.append("a search ground (8.3)")
    if SearchGround.OFFENCE in form.grounds and not (form.offence_code or "").strip():
        missing.append("the offence, as the ground is an offence")
    if not form.necessity_and_proportionality.strip():
        missing.append("necessity and proportionality")
    if not form.image_source.strip():
        missing.append("the source of the image")
    if not form.source_sensitivity.strip():
        missing.append("the sensitivity of the source")
    if not form.most_current_image_confirmed:
        missing.append("confirmation that this is the most current suitable image")
    return Decision.check(not missing, "P-01", f"Form 3 is missing: {', '.join(missing)}" if missing else "")


def pre_rfr_checks_or_urgency(form: Form3) -> Decision:
    """P-02: less intrusive options tried and why they failed, or Urgency with a rationale."""
    checked = form.pre_rfr_checks is not None and form.pre_rfr_checks.stated
    urgent = form.urgency is not None and form.urgency.stated
    return Decision.check(
        checked or urgent,
        "P-02",
        "record the pre-RFR checks tried and why they did not suffice, or the Urgency with its rationale",
    )


def age_allows_search(age: PerceivedAgeBand) -> Decision:
    """P-03: no search of a subject perceived to be under 13."""
    return Decision.check(
        age is not PerceivedAgeBand.UNDER_13, "P-03", "a subject perceived to be under 13 is not searched"
    )


def offence_known(form: Form3) -> Decision:
    """C-01: the offence is named by a published code, never guessed; ``other`` is described.

    A code that is not in ``offences.OFFENCES`` (a typo, a local name) is refused rather than
    taken as Tier 3. An offence not listed in Annex C is ``other``, Tier 3, with the offence
    described in ``offence_description``; the description is never read for its attributes (C-02).
    """
    code = (form.offence_code or "").strip()
    if not code:
        return Decision.allow()  # whether an offence is needed at all is P-01's question
    found = find_offence(code)
    if found is None:
        return Decision.refuse(
            "C-01",
            f"{form.offence_code!r} is not an offence code of Annex C: name a listed offence "
            f"(GET /policy/offences), or {OTHER_CODE!r} with the offence described",
        )
    if found.code == OTHER_CODE:
        return Decision.check(
            bool((form.offence_description or "").strip()),
            "C-01",
            f"an offence not listed in Annex C ({OTHER_CODE!r}) must be described in offence_description",
        )
    return Decision.allow("C-01")


def under_16_safeguards(
    age: PerceivedAgeBand,
    offence_code: str | None,
    *,
    endorser_rank: Rank | None = None,
    endorsement_due: bool = False,
) -> Decision:
    """P-04, decided here and nowhere else: a subject perceived 13-15 (or of unknown age, handled
    as under 16, Annex A para 2) is searched only for a recordable offence, with an Inspector's
    endorsement [4.7, 8.6, 8.22].

    The answer names P-04 whenever P-04 governs the probe, allowed or refused, and no rule when
    it does not (16 and over; under 13 is P-03's). Its two halves:

    - the offence, where the search is about one, must be recordable, read from Annex C (C-02):
      ``other`` and an unknown code are not;
    - the endorsement, by an officer of Inspector rank or above: ``endorser_rank`` is the rank of
      whoever endorsed or is endorsing (None: nobody). It is demanded with ``endorsement_due``
      (giving the endorsement, and before any search), not when a Form 3 is submitted, since
      nobody can have endorsed a probe that does not exist yet.
    """
    if age not in UNDER_16_BANDS:
        return Decision.allow()
    checks = [Decision.allow("P-04")]
    code = (offence_code or "").strip()
    if code:
        found = find_offence(code)
        name = found.name if found is not None else code
        checks.append(
            Decision.check(
                found is not None and found.recordable,
                "P-04",
                f"under 16 the offence must be a recordable offence in Annex C; {name!r} is not",
            )
        )
    if endorsement_due or endorser_rank is not None:
        checks.append(
            Decision.check(
                endorser_rank is not None and endorser_rank >= Rank.INSPECTOR,
                "P-04",
                "a subject perceived to be under 16 needs the endorsement of an officer of Inspector "
                "rank or above",
            )
        )
    return combine(*checks)


def age_16_17_case(form: Form3, age: PerceivedAgeBand) -> Decision:
    """P-05: 16-17, any offence, with the necessity case recorded."""
    if age is PerceivedAgeBand.AGE_16_17:
        return Decision.check(
            bool(form.necessity_and_proportionality.strip()),
            "P-05",
            "for a subject perceived 16-17 the necessity case must be recorded",
        )
    return Decision.allow()


def ground_g_case(form: Form3) -> Decision:
    """P-07: a victim, witness or associate needs the 8.11 necessity and 8.12 proportionality case."""
    if SearchGround.VICTIM_WITNESS_ASSOCIATE not in form.grounds:
        return Decision.allow()
    if form.ground_g_rationale is None:
        return Decision.refuse("P-07", "ground 8.3(g) needs its necessity and proportionality rationale")
    missing = form.ground_g_rationale.missing_parts()
    return Decision.check(
        not missing, "P-07", f"ground 8.3(g) rationale is missing: {', '.join(missing)}" if missing else ""
    )


def form3_acceptable(form: Form3) -> Decision:
    return combine(
        form3_complete(form),
        pre_rfr_checks_or_urgency(form),
        offence_known(form),
        age_allows_search(form.perceived_age),
        under_16_safeguards(form.perceived_age, form.offence_code),
        age_16_17_case(form, form.perceived_age),
        ground_g_case(form),
    )


def required_endorsements(
    age: PerceivedAgeBand, vulnerability: VulnerabilityFlags, level: ImageLevel, config: PolicyConfig
) -> frozenset[EndorsementKind]:
    """Which Inspector endorsements the probe needs before it is searched (P-04, P-06, P-08)."""
    needed = set(endorsements_whatever_the_level(age, vulnerability))
    if high_level_endorsement_needed(level, config):
        needed.add(EndorsementKind.HIGH_IMAGE_LEVEL)
    return frozenset(needed)


def endorsements_whatever_the_level(
    age: PerceivedAgeBand, vulnerability: VulnerabilityFlags
) -> frozenset[EndorsementKind]:
    """The endorsements the person shown calls for (P-04, P-06), which no policy setting changes:
    the endorsement queue's projection keeps them as the probe's events come."""
    needed = set()
    if not under_16_safeguards(age, None, endorsement_due=True).allowed:
        needed.add(EndorsementKind.UNDER_16)
    if vulnerability.any:
        needed.add(EndorsementKind.VULNERABILITY)
    return frozenset(needed)


def high_level_endorsement_needed(level: ImageLevel, config: PolicyConfig) -> bool:
    """P-08: an image at a level the policy config reserves for an Inspector's approval."""
    return level in config.inspector_approval_levels


def ucc_addition_allowed(
    *,
    in_ucc: bool,
    searched: bool,
    viable_match_of_known_person: bool,
    grounds_still_applying: Collection[SearchGround],
    form_grounds: Collection[SearchGround],
) -> Decision:
    """U-01 [6.1, 6.2]: what the probe itself must satisfy to enter the Unresolved Crime Cache.

    Not in the cache already; searched; no search of it found a viable match of a known person
    (a match of an unknown person leaves the purpose unmet); and at least one of its Form 3
    grounds (8.3) still applies. Who approves the addition is P-08's question, asked apart.
    """
    grounds = set(grounds_still_applying)
    return combine(
        Decision.check(not in_ucc, "U-01", "already in the cache"),
        Decision.check(searched, "U-01", "the probe has not been searched yet"),
        Decision.check(
            not viable_match_of_known_person,
            "U-01",
            "a viable match of a known person was found, so the purpose is met",
        ),
        Decision.check(
            bool(grounds) and grounds <= set(form_grounds),
            "U-01",
            "name the Form 3 ground(s) that still apply",
        ),
    )
