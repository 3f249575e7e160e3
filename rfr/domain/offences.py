"""Annex C (Crime Tier Guide) as reference data (C-01, C-02).

Annex C lines that name several offences ("Assault - Blackmail / Threats to Kill / ABH /
Police") are split into one entry each, so a rule can read the attributes of the exact
offence; ``annex_c_line`` keeps the wording they came from. ``recordable`` (PACE 1984) and
``mopi_group_1_public_protection`` are the project's reading of PACE and MOPI, to be checked
by the force's records manager; the tiers are the policy's.

The codes are published (``GET /policy/offences``, and the enum of ``offence_code`` in the
Form 3 schema): a Form 3 names one of ``OFFENCES``, and any other code is refused under C-01
(``rules_probe.offence_known``) rather than guessed at, so a typo never becomes Tier 3
unnoticed. C-01's "any offence not listed is Tier 3" is kept by the explicit code ``other``
(``OTHER_OFFENCE``): the offence is then described in free text beside it, and the entry is
Tier 3, not recordable and not MOPI Group 1 whatever the text says, as a rule that needs
those attributes must see them in the table (C-02).
"""

from __future__ import annotations

import enum

import attrs


class CrimeTier(enum.IntEnum):
    TIER_1 = 1
    TIER_2 = 2
    TIER_3 = 3


@attrs.frozen
class OffenceType:
    code: str
    name: str
    tier: CrimeTier
    recordable: bool
    mopi_group_1_public_protection: bool
    annex_c_line: str
    listed: bool = True


def _entries(tier: CrimeTier, line: str, *rows: tuple[str, str, bool, bool]) -> list[OffenceType]:
    return [OffenceType(code, name, tier, rec, mopi1, line) for code, name, rec, mopi1 in rows]


T1, T2, T3 = CrimeTier.TIER_1, CrimeTier.TIER_2, CrimeTier.TIER_3

ANNEX_C: tuple[OffenceType, ...] = tuple(
    [
        *_entries(T1, "Aggravated Burglary", ("aggravated_burglary", "Aggravated burglary", True, True)),
        *_entries(T1, "Assault GBH", ("assault_gbh", "Assault GBH", True, True)),
        *_entries(
            T1,
            "Death by Dangerous driving",
            ("death_by_dangerous_driving", "Causing death by dangerous driving", True, True),
        ),
        *_entries(T1, "All Robbery Offences", ("robbery", "Robbery (all robbery offences)", True, True)),
        *_entries(T1, "All Arson Offences", ("arson", "Arson (all arson offences)", True, True)),
        *_entries(T1, "Attempted Abduction", ("attempted_abduction", "Attempted abduction", True, True)),
        *_entries(T1, "Attempted Murder", ("attempted_murder", "Attempted murder", True, True)),
        *_entries(
            T1, "Possession of Firearm", ("possession_of_firearm", "Possession of firearm", True, False)
        ),
        *_entries(
            T1,
            "Kidnap / Abduction / False Imprisonment",
            ("kidnap", "Kidnap", True, True),
            ("abduction", "Abduction", True, True),
            ("false_imprisonment", "False imprisonment", True, True),
        ),
        *_entries(T1, "Murder", ("murder", "Murder", True, True)),
        *_entries(T1, "All Sexual Offences", ("sexual_offence", "Sexual offences (all)", True, True)),
        *_entries(
            T2,
            "Assault - Blackmail / Threats to Kill / ABH / Police",
            ("blackmail", "Blackmail", True, False),
            ("threats_to_kill", "Threats to kill", True, True),
            ("assault_abh", "Assault occasioning ABH", True, False),
            ("assault_police", "Assault on police", True, False),
        ),
        *_entries(T2, "Dangerous Driving", ("dangerous_driving", "Dangerous driving", True, False)),
        *_entries(
            T2,
            "Aggravated TDA / TDA",
            ("aggravated_tda", "Aggravated taking without consent", True, False),
            ("tda", "Taking without consent", True, False),
        ),
        *_entries(
            T2,
            "All Burglary (Apart from Aggravated)",
            ("burglary", "Burglary (other than aggravated)", True, False),
        ),
        *_entries(
            T2,
            "All Criminal Damage (Apart Arson)",
            ("criminal_damage", "Criminal damage (other than arson)", True, False),
        ),
        *_entries(
            T2,
            "Racially Aggravated Assault",
            ("racially_aggravated_assault", "Racially aggravated assault", True, False),
        ),
        *_entries(
            T2,
            "Public Order \u2013 Riot / Affray / Violent Disorder / Bomb Hoax",
            ("riot", "Riot", True, True),
            ("affray", "Affray", True, False),
            ("violent_disorder", "Violent disorder", True, True),
            ("bomb_hoax", "Bomb hoax", True, False),
        ),
        *_entries(T2, "Theft Snatch", ("theft_snatch", "Theft snatch", True, False)),
        *_entries(
            T2,
            "Drugs \u2013 Cultivation / Supply / Trafficking",
            ("drugs_cultivation", "Drugs cultivation", True, False),
            ("drugs_supply", "Drugs supply", True, False),
            ("drugs_trafficking", "Drugs trafficking", True, False),
        ),
        *_entries(
            T2,
            "Theft from Motor Vehicle or of Motor Vehicle",
            ("theft_from_motor_vehicle", "Theft from a motor vehicle", True, False),
            ("theft_of_motor_vehicle", "Theft of a motor vehicle", True, False),
        ),
        *_entries(T3, "All Animal Offences", ("animal_offence", "Animal offences (all)", True, False)),
        *_entries(T3, "Common Assault", ("common_assault", "Common assault", True, False)),
        *_entries(T3, "Drugs Possession", ("drugs_possession", "Drugs possession", True, False)),
        *_entries(T3, "All Fraud", ("fraud", "Fraud (all)", True, False)),
        *_entries(
            T3, "Handling Stolen Goods", ("handling_stolen_goods", "Handling stolen goods", True, False)
        ),
        *_entries(
            T3,
            "Public Order - Racial Aggravated / Harassment / Threatening Behaviour",
            ("public_order_racially_aggravated", "Racially aggravated public order", True, False),
            ("harassment", "Harassment", True, False),
            ("threatening_behaviour", "Threatening behaviour", True, False),
        ),
        *_entries(
            T3,
            "Interference with Motor Vehicle",
            ("interference_with_motor_vehicle", "Interference with a motor vehicle", True, False),
        ),
        *_entries(
            T3,
            "Making of without Payment",
            ("making_off_without_payment", "Making off without payment", True, False),
        ),
        *_entries(
            T3,
            "Offensive Weapon - Points and Blades",
            ("offensive_weapon", "Offensive weapon, points and blades", True, False),
        ),
    ]
)

OTHER_CODE = "other"

# C-01: "any offence not listed is Tier 3". Never recordable nor MOPI Group 1: those are read
# from this table, and an offence described only in free text is not in it (C-02).
OTHER_OFFENCE = OffenceType(
    code=OTHER_CODE,
    name="Other offence, not listed in Annex C (described in the Form 3)",
    tier=CrimeTier.TIER_3,
    recordable=False,
    mopi_group_1_public_protection=False,
    annex_c_line="Other offence-types not covered in Tiers 1 and 2",
    listed=False,
)

# Every code a Form 3 may name: the Annex C entries, then ``other``.
OFFENCES: tuple[OffenceType, ...] = (*ANNEX_C, OTHER_OFFENCE)
OFFENCE_CODES: tuple[str, ...] = tuple(o.code for o in OFFENCES)

_BY_CODE = {o.code: o for o in OFFENCES}
assert len(_BY_CODE) == len(OFFENCES), "offence codes must be unique"


class UnknownOffence(KeyError):
    """A code that is neither in Annex C nor ``other``."""


def find_offence(code: str | None) -> OffenceType | None:
    """The entry for ``code`` (case and surrounding spaces ignored), or None if there is none."""
    return _BY_CODE.get(code.strip().lower()) if code else None


def offence(code: str) -> OffenceType:
    """The entry for ``code``; an unknown code raises ``UnknownOffence`` instead of being guessed (C-01)."""
    found = find_offence(code)
    if found is None:
        raise UnknownOffence(code)
    return found


def is_known(code: str | None) -> bool:
    """A code a Form 3 may name: listed in Annex C, or ``other``."""
    return find_offence(code) is not None


def is_listed(code: str) -> bool:
    """Listed in Annex C itself (``other`` is known, not listed)."""
    found = find_offence(code)
    return found is not None and found.listed


def tier_of(code: str | None) -> CrimeTier:
    """C-01: the tier of an offence; no offence, ``other`` or an unlisted code is Tier 3.

    An unknown code is refused when a Form 3 is submitted; it can only be met here in a probe
    recorded before codes were checked, and C-01 still makes that Tier 3.
    """
    found = find_offence(code)
    return found.tier if found is not None else CrimeTier.TIER_3
