"""BlameTrail: incidents, their evidence, and AI-drafted blameless postmortems."""

__version__ = "0.1.0"
