"""What a dataset will cost before it costs anything: Qwen token counts and the price table, in one place.

    counter = QwenTokens.load()            # the Qwen BPE vocabulary the dashscope package ships, via tiktoken
    tokens = counter.record_tokens(record, "sft")
    cost = training_cost("qwen3-14b", tokens, epochs=3)

Light to import: tiktoken and the vocabulary load on the first `QwenTokens.load()` (`shared_counter()`: once a
process); without the `tokens` extra there are no token counts and so no cost, never a guess.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from ._prices import (
    BATCH_PRICES,
    DEPLOYMENT_RATES,
    MEDIA_TRAINING_RATES,
    TRAINING_PRICES,
    Cost,
    Price,
    Rate,
    batch_cost,
    training_cost,
)
from ._tokens import QwenTokens, TokenizerMissing, vocabulary_path

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


def counter_loading() -> Callable[[], QwenTokens | None] | None:
    """Start loading the shared counter in a thread and return the wait for it; None when the tokenizer is not
    installed (told without loading it). The load (~0.2 s of CPU, once per instance) then overlaps the I/O that
    comes before a dataset's first record (a HEAD, the connection to Bailian) instead of adding to it."""
    if shared_counter.cache_info().currsize:
        return shared_counter
    try:
        vocabulary_path()
    except TokenizerMissing:
        return None
    if importlib.util.find_spec("tiktoken") is None:
        return None
    loader = threading.Thread(target=shared_counter, name="qwen-tokens", daemon=True)
    loader.start()

    def wait() -> QwenTokens | None:
        loader.join()
        return shared_counter()

    return wait


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


def media_estimate(model: str, hyper_parameters: dict[str, Any], records: int, plan: str | None) -> dict[str, Any]:
    """A media fine-tune's estimate: samples and epochs, and the training and deployment rates where the seed
    prices them; no amount, since the service alone counts a video's or an image's tokens."""
    epochs = hyper_parameters.get("n_epochs")
    training = MEDIA_TRAINING_RATES.get(model)
    deployment = DEPLOYMENT_RATES.get(plan) if plan else None
    return {
        "model": model,
        "records": records,
        "tokens": None,
        "epochs": epochs if isinstance(epochs, int) else None,
        "cost": None,
        "training_rate": training.to_dict() if training else None,
        "deployment_rate": deployment.to_dict() if deployment else None,
    }


def deployment_estimate(model: str, plan: str) -> dict[str, Any]:
    """A deploy run's estimate: the rate its plan bills per 1K tokens served (None where the seed gives none)."""
    rate = DEPLOYMENT_RATES.get(plan)
    return {"model": model, "plan": plan, "deployment_rate": rate.to_dict() if rate else None}


__all__ = [
    "BATCH_PRICES",
    "DEPLOYMENT_RATES",
    "MEDIA_TRAINING_RATES",
    "TRAINING_PRICES",
    "Cost",
    "Price",
    "QwenTokens",
    "Rate",
    "TokenizerMissing",
    "batch_cost",
    "counter_loading",
    "deployment_estimate",
    "media_estimate",
    "run_estimate",
    "shared_counter",
    "training_cost",
]
