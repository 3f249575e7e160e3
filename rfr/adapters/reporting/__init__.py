"""Usage reports drawn for people: inline-SVG charts and the standalone HTML report.

Shared by the web client's report page and by the HTML report served over the API and
attached to scheduled e-mails, so both show the same charts of the same figures.
"""
