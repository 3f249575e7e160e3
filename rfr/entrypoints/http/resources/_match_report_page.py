"""The printable match report (S-06): one self-contained HTML page, no script, no external resource.

The caveat and the performance statement are the domain's own text, put on the page as text
(escaped, never reworded), so what is printed and saved to the case is the policy's wording.
No image is embedded: the page may leave the system with the case file, and images have
their own access rules (L-13) and dissemination record (S-07).
"""

from __future__ import annotations

from datetime import datetime
from html import escape

import attrs

from rfr.application.services.searches import AdjudicationView, CandidateView, MatchReportView

# The page loads nothing and runs nothing; the inline style is its only resource.
CONTENT_SECURITY_POLICY = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"

_STYLE = """
body { font-family: Georgia, serif; max-width: 48em; margin: 2em auto; color: #111; }
h1 { font-size: 1.5em; border-bottom: 2px solid #111; padding-bottom: .3em; }
h2 { font-size: 1.1em; margin-top: 1.6em; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: .3em .6em; border: 1px solid #999; }
th { width: 14em; background: #f2f2f2; }
.caveat { border: 2px solid #111; padding: .8em 1em; font-weight: bold; }
@media print { a { color: #111; } }
"""


@attrs.frozen
class MatchReportDocument:
    """A match report with what it reports on: the request, the probe's case and the candidate.

    Attributes:
        report_id: The report's id.
        request_id: The search request it belongs to.
        probe_id: The probe searched.
        case_reference: The case reference of the probe's Form 3.
        requester_id: The user id of the requester.
        candidate: The viable match reported.
        caveat: The policy's caveat, word for word: a match is intelligence, not identification.
        performance_statement: The statement of the algorithm's performance.
        performance_document_url: Where the full performance document is published.
        issued_at: When the report was issued.
    """

    report_id: str
    request_id: str
    probe_id: str
    case_reference: str
    requester_id: str
    candidate: CandidateView
    caveat: str
    performance_statement: str
    performance_document_url: str
    issued_at: datetime

    @classmethod
    def of(
        cls,
        report: MatchReportView,
        *,
        request_id: str,
        probe_id: str,
        case_reference: str,
        requester_id: str,
        candidate: CandidateView,
    ) -> MatchReportDocument:
        return cls(
            report.report_id,
            request_id,
            probe_id,
            case_reference,
            requester_id,
            candidate,
            report.caveat,
            report.performance_statement,
            report.performance_document_url,
            report.issued_at,
        )


def _text(value: object) -> str:
    return escape(str(value), quote=False)


def _rows(pairs: list[tuple[str, object]]) -> str:
    return "\n".join(f"<tr><th>{_text(k)}</th><td>{_text(v)}</td></tr>" for k, v in pairs)


def _adjudication(a: AdjudicationView | None) -> list[tuple[str, object]]:
    if a is None:
        return [("Adjudication", "not adjudicated")]
    return [
        ("Adjudication", "viable match" if a.viable else "not a viable match"),
        ("Adjudicated by", a.by),
        ("Adjudicated at", a.at.isoformat(timespec="seconds")),
        ("Rationale", a.rationale),
        ("Identity known", {True: "yes", False: "no", None: "not stated"}[a.identity_known]),
    ]


def render(document: MatchReportDocument) -> str:
    c = document.candidate
    report_rows = [
        ("Case reference", document.case_reference),
        ("Report", document.report_id),
        ("Issued at", document.issued_at.isoformat(timespec="seconds")),
        ("Search request", document.request_id),
        ("Requested by", document.requester_id),
        ("Probe image", document.probe_id),
    ]
    candidate_rows = [
        ("Candidate", c.candidate_id),
        ("Rank", c.rank),
        ("Similarity score", f"{c.score:.4f}"),
        ("Library", c.library_id),
        ("Library image", c.image_id),
        ("Algorithm", c.algorithm_id),
        *_adjudication(c.adjudication),
    ]
    url = escape(document.performance_document_url, quote=True)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Match report {_text(document.report_id)}</title>
<style>{_STYLE}</style>
</head>
<body>
<h1>Facial recognition match report</h1>
<table>
{_rows(report_rows)}
</table>
<h2>Potential match</h2>
<table>
{_rows(candidate_rows)}
</table>
<h2>Dissemination caveat (policy 8.27)</h2>
<p class="caveat">{_text(document.caveat)}</p>
<h2>Performance of the system</h2>
<p>{_text(document.performance_statement)}</p>
<p><a href="{url}">{_text(document.performance_document_url)}</a></p>
</body>
</html>
"""
