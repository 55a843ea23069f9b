"""What a dataset will cost before it costs anything: Qwen token counts and the price table, in one place.

    counter = QwenTokens.load()            # the Qwen BPE vocabulary the dashscope package ships, via tiktoken
    tokens = counter.record_tokens(record, "sft")
    cost = training_cost("qwen3-14b", tokens, epochs=3)

Imported by the CLI's `validate` and by nothing on a function's import path unless asked for.
"""

from __future__ import annotations

from ._prices import BATCH_PRICES, TRAINING_PRICES, Cost, Price, batch_cost, training_cost
from ._tokens import QwenTokens, TokenizerMissing

__all__ = [
    "BATCH_PRICES",
    "TRAINING_PRICES",
    "Cost",
    "Price",
    "QwenTokens",
    "TokenizerMissing",
    "batch_cost",
    "training_cost",
]
