"""Annex C offence codes as published reference data (C-01, C-02).

Whoever reads the policy values in force reads the offence table too: a Form 3 must name one
of these codes (C-01), and the tier, "recordable" and MOPI Group 1 of an offence are read
from here and nowhere else (C-02).
"""

from __future__ import annotations

import attrs

from rfr.application.services.base import UseCase
from rfr.application.services.policy import SETTINGS_READERS
from rfr.domain.offences import OFFENCES, OffenceType

OFFENCE_READERS = SETTINGS_READERS


@attrs.frozen
class OffenceView:
    """One offence a Form 3 may name, with the attributes the rules read from it (C-01, C-02).

    Attributes:
        code: The code a Form 3 gives as ``offence_code``.
        label: The offence in words.
        tier: The Crime Tier, 1 to 3 (C-01); it sets the review period of a UCC entry (U-03).
        recordable: A recordable offence (PACE 1984); under 16 only these are searched (P-04).
        mopi_group_1_public_protection: MOPI Group 1, public protection matters.
        annex_c_line: The line of Annex C the entry comes from.
        listed: False only for ``other``, an offence not listed in Annex C, described in the Form 3.
    """

    code: str
    label: str
    tier: int
    recordable: bool
    mopi_group_1_public_protection: bool
    annex_c_line: str
    listed: bool

    @classmethod
    def of(cls, offence: OffenceType) -> OffenceView:
        return cls(
            code=offence.code,
            label=offence.name,
            tier=int(offence.tier),
            recordable=offence.recordable,
            mopi_group_1_public_protection=offence.mopi_group_1_public_protection,
            annex_c_line=offence.annex_c_line,
            listed=offence.listed,
        )


class OffenceCodes(UseCase):
    def list(self, acting_user: str) -> tuple[OffenceView, ...]:
        """Every code in Annex C order, ``other`` last."""
        self._read(acting_user, "read offence codes", OFFENCE_READERS)
        return tuple(OffenceView.of(o) for o in OFFENCES)
