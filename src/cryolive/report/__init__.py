"""The session report: a multi-page PDF of a visit (docs/report.md)."""
