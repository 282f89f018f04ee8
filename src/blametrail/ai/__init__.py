"""AI: the LLM engines, prompts, providers, scrubbing, token counting, and how an organization's engine is chosen."""
