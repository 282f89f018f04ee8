"""The live incident summary: its table, its debounced refresh, rebuilding it from the evidence."""
