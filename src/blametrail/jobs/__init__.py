"""Jobs: the only package importing the queue; it owns the job transactions (generation, summary, sweep)."""
