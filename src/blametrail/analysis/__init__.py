"""Pure analysis: evidence in (frozen dataclasses), findings and drafts out. No clock, database or network."""
