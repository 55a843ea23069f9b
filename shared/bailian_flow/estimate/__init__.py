"""What a dataset will cost before it costs anything: Qwen token counts and the price table, in one place.

    counter = QwenTokens.load()            # the Qwen BPE vocabulary the dashscope package ships, via tiktoken
    tokens = counter.record_tokens(record, "sft")
    cost = training_cost("qwen3-14b", tokens, epochs=3)

Light to import: tiktoken and the vocabulary load on the first `QwenTokens.load()` (`shared_counter()`: once a
process); without the `tokens` extra there are no token counts and so no cost, never a guess.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from ._prices import BATCH_PRICES, TRAINING_PRICES, Cost, Price, batch_cost, training_cost
from ._tokens import QwenTokens, TokenizerMissing

# Bailian's n_epochs when the run does not set it: 1 (the training API reference's hyper_parameters table,
# service-contract.md#C7).
DEFAULT_EPOCHS = 1


@lru_cache(maxsize=1)
def shared_counter() -> QwenTokens | None:
    """One tokenizer per process (a function instance loads the vocabulary once); None when not installed."""
    try:
        return QwenTokens.load()
    except TokenizerMissing:
        return None


def run_estimate(model: str, hyper_parameters: dict[str, Any], records: int, tokens: int | None) -> dict[str, Any]:
    """What a run records before its job starts: the same figures `bailian-flow validate` prints."""
    epochs = int(hyper_parameters.get("n_epochs") or DEFAULT_EPOCHS)
    cost = training_cost(model, tokens, epochs) if tokens is not None else None
    return {
        "model": model,
        "records": records,
        "tokens": tokens,
        "epochs": epochs,
        "cost": cost.to_dict() if cost is not None else None,
    }


__all__ = [
    "BATCH_PRICES",
    "TRAINING_PRICES",
    "Cost",
    "Price",
    "QwenTokens",
    "TokenizerMissing",
    "batch_cost",
    "run_estimate",
    "shared_counter",
    "training_cost",
]
