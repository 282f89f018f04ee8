"""Drafting engines: the contract, the output shapes (Sections, Summary), grounding, and the built-in engine."""
