"""The price table: the one place that knows what Bailian charges (bailian-api.md §10, the seed's price reference).

Training is billed per token consumed: tokens × epochs × the model's unit price. Batch inference is billed per
input and output token at the batch price. A model missing here has no estimate (None), never a guessed one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Price:
    per_1k_tokens: float
    currency: str


@dataclass(frozen=True)
class Cost:
    amount: float
    currency: str
    basis: str  # how it was computed, for a person to check

    def to_dict(self) -> dict[str, Any]:
        return {"amount": round(self.amount, 10), "currency": self.currency, "basis": self.basis}


TRAINING_PRICES: dict[str, Price] = {
    "qwen3-14b": Price(0.0016, "USD"),
    "qwen3-32b": Price(0.008, "USD"),
}

# Input and output are priced alike for the models listed.
BATCH_PRICES: dict[str, Price] = {
    "qwen-plus": Price(0.002, "CNY"),
}


@dataclass(frozen=True)
class Rate:
    """A price per 1K tokens that cannot be turned into an amount before the service counts the tokens."""

    input_per_1k: float
    output_per_1k: float
    currency: str
    what: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "input_per_1k_tokens": self.input_per_1k,
            "output_per_1k_tokens": self.output_per_1k,
            "currency": self.currency,
            "basis": self.what,
        }


# Media training: the service counts a video's tokens itself, so only the rate is known beforehand (the seed's
# price reference: "wan2.6-i2v (Training) | 0.002 CNY / 1K tokens | 0.004 CNY / 1K tokens").
MEDIA_TRAINING_RATES: dict[str, Rate] = {
    "wan2.6-i2v": Rate(0.002, 0.004, "CNY", "wan2.6-i2v training, per 1K tokens the service counts, times epochs"),
}

# Deployments bill the tokens they serve, by plan (the seed's price reference: PTU, MU and LoRA plans).
DEPLOYMENT_RATES: dict[str, Rate] = {
    "ptu": Rate(0.002, 0.002, "CNY", "PTU plan deployment, per 1K tokens served"),
    "mu": Rate(0.003, 0.003, "CNY", "MU plan deployment, per 1K tokens served"),
    "lora": Rate(0.001, 0.001, "CNY", "LoRA plan deployment, per 1K tokens served"),
}


def training_cost(model: str, tokens: int, epochs: int) -> Cost | None:
    price = TRAINING_PRICES.get(model)
    if price is None:
        return None
    amount = tokens * epochs * price.per_1k_tokens / 1000
    basis = f"{tokens:,} tokens × {epochs} epoch(s) × {price.per_1k_tokens} {price.currency}/1K ({model} training)"
    return Cost(amount, price.currency, basis)


def batch_cost(model: str, input_tokens: int) -> Cost | None:
    """The input side only: output tokens are known when the batch ends (and only successful requests bill)."""
    price = BATCH_PRICES.get(model)
    if price is None:
        return None
    amount = input_tokens * price.per_1k_tokens / 1000
    basis = f"{input_tokens:,} input tokens × {price.per_1k_tokens} {price.currency}/1K ({model} batch), plus output"
    return Cost(amount, price.currency, basis)
