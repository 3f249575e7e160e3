"""Annex C (Crime Tier Guide) as reference data (C-01, C-02).

Annex C lines that name several offences ("Assault - Blackmail / Threats to Kill / ABH /
Police") are split into one entry each, so a rule can read the attributes of the exact
offence; ``annex_c_line`` keeps the wording they came from. ``recordable`` (PACE 1984) and
``mopi_group_1_public_protection`` are the project's reading of PACE and MOPI, to be checked
by the force's records manager; the tiers are the policy's. An offence not listed is Tier 3
and is not assumed recordable: the rule that needs it must see it in the table (C-02).
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

_BY_CODE = {o.code: o for o in ANNEX_C}
assert len(_BY_CODE) == len(ANNEX_C), "offence codes must be unique"


def offence(code: str) -> OffenceType:
    """The Annex C entry for ``code``; an unlisted offence is Tier 3 and not assumed recordable (C-01)."""
    found = _BY_CODE.get(code.strip().lower())
    if found is not None:
        return found
    return OffenceType(
        code=code,
        name=code,
        tier=CrimeTier.TIER_3,
        recordable=False,
        mopi_group_1_public_protection=False,
        annex_c_line="Other offence-types not covered in Tiers 1 and 2",
        listed=False,
    )


def is_listed(code: str) -> bool:
    return code.strip().lower() in _BY_CODE
