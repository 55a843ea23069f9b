"""Which models exist: base models that can be fine-tuned or deployed, plus models the emulator produced.

Fine-tunes, exported checkpoints and imported custom models become deployable; their modules register a source
here so that the deployments module does not need to know about them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web


@dataclass(frozen=True)
class ModelInfo:
    model_name: str
    base_model: str
    base_capacity: int


# Base models the emulator knows, with their deployment unit (base_capacity).
BASE_MODELS: dict[str, int] = {
    "qwen3-0.6b": 1,
    "qwen3-1.7b": 1,
    "qwen3-4b": 1,
    "qwen3-8b": 1,
    "qwen3-14b": 1,
    "qwen3-32b": 2,
    "qwen3-30b-a3b": 2,
    "qwen2.5-7b-instruct": 1,
    "qwen2.5-14b-instruct": 1,
    "qwen2.5-32b-instruct": 2,
    "qwen2.5-72b-instruct": 4,
    "qwen-plus": 4,
    "qwen-turbo": 1,
}

# Base models offered for direct deployment (the rest are only fine-tunable, as on the service).
DEPLOYABLE_BASE_MODELS = ("qwen3-8b", "qwen3-14b", "qwen3-32b", "qwen2.5-7b-instruct", "qwen2.5-72b-instruct")


class ModelCatalogue:
    def __init__(self) -> None:
        self._sources: list[Callable[[], list[ModelInfo]]] = []

    def add_source(self, source: Callable[[], list[ModelInfo]]) -> None:
        self._sources.append(source)

    def produced(self) -> dict[str, ModelInfo]:
        """Models the emulator produced (fine-tune outputs, exports, imports), by name."""
        models: dict[str, ModelInfo] = {}
        for source in self._sources:
            for info in source():
                models[info.model_name] = info
        return models

    def deployable(self) -> dict[str, ModelInfo]:
        models = {name: ModelInfo(name, name, BASE_MODELS[name]) for name in DEPLOYABLE_BASE_MODELS}
        models.update(self.produced())
        return models

    def fine_tunable(self, name: str) -> ModelInfo | None:
        """A base model, or a fine-tuned output that can be trained further."""
        if name in BASE_MODELS:
            return ModelInfo(name, name, BASE_MODELS[name])
        return self.produced().get(name)


CATALOGUE_KEY = web.AppKey("bailian_flow.emulator.catalogue", ModelCatalogue)


def catalogue(app: web.Application) -> ModelCatalogue:
    """The app's catalogue, created on first use so that modules can be set up in any order."""
    if CATALOGUE_KEY not in app:
        app[CATALOGUE_KEY] = ModelCatalogue()
    return app[CATALOGUE_KEY]
