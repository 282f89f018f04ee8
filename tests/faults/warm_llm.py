"""Imported by a fork server before it forks LLM workers: pay pydantic-ai's and tiktoken's one-time costs once.

Each would otherwise cost a killed-and-replaced worker about two seconds of CPU before it reaches the model.
"""

import pydantic_ai.models.openai  # noqa: F401
import pydantic_ai.providers.openai  # noqa: F401
from genai_prices.data_snapshot import get_snapshot

import blametrail.ai.llm  # noqa: F401
import blametrail.ai.prompt  # noqa: F401
import blametrail.engines.grounding  # noqa: F401
from blametrail.ai import tokens

get_snapshot()  # what pydantic-ai loads when a model is built
tokens.raw_count("warm up")  # loads the tokenizer's vocabulary
