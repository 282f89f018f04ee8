"""Learning across incidents: full-text search, similar incidents and analytics (issue 16)."""
