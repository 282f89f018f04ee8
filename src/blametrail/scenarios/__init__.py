"""Synthetic incidents with known causes, local observability servers, and the evaluation that scores the analysis."""

DEFAULT_SEED = 20260105  # the seed `blametrail evaluate` and its test use, so their numbers agree
