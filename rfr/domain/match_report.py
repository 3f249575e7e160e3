"""The Match Report (S-06): its record, the standard dissemination caveat of policy 8.27 verbatim,
and the performance document link."""

from __future__ import annotations

from datetime import datetime

import attrs

DISSEMINATION_CAVEAT = (
    "This type of identification has come from a Facial Recognition Search (FRS) the FR Operator "
    "uploaded and searched the image above through Facial Recognition Software. They believe the "
    "suspect shows good likeness to this image. This is not an expert facial comparison and "
    "therefore, this does not meet the evidential requirements under PACE Code D for Recognition "
    "and an MG11 from the identifying officer will not be provided."
)

PERFORMANCE_DOCUMENT_URL = (
    "https://www.met.police.uk/SysSiteAssets/media/downloads/force-content/met/advice/lfr/new/"
    "understanding-accuracy-and-demographic-differences-v3..pdf"
)

PERFORMANCE_STATEMENT = (
    "Performance of the RFR System: The MPS has outlined details as regards performance and "
    "demographic differential considerations in relation to its FR systems here: "
    f"<{PERFORMANCE_DOCUMENT_URL}>"
)


@attrs.frozen
class MatchReport:
    """S-06: the saved record of a viable match, with the 8.27 caveat and the performance link."""

    report_id: str
    candidate_id: str
    caveat: str
    performance_statement: str
    performance_document_url: str
    issued_at: datetime
