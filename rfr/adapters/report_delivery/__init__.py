"""Where scheduled reports go (the ReportSink port)."""
