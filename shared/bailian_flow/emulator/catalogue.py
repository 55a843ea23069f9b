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
    "qwen-flash-2025-07-28": 1,
    # The seed's vision-language fine-tunes; they take the `freeze_vit` hyper-parameter.
    "qwen3-vl-8b-instruct": 1,
    "qwen3-vl-8b-thinking": 1,
    # Wan image-to-video (help.aliyun.com model-studio "视频生成模型微调 API 参考", supported base models; wan2.7-i2v
    # is listed by the newer English page): LoRA fine-tunes only.
    "wan2.7-i2v": 1,
    "wan2.6-i2v": 1,
    "wan2.5-i2v-preview": 1,
    "wan2.2-i2v-flash": 1,
    "wan2.2-kf2v-flash": 1,
    # Deployable only (the seed's deployment models).
    "emo": 1,
    "animate-anyone-detect": 1,
}

VL_MODELS = frozenset({"qwen3-vl-8b-instruct", "qwen3-vl-8b-thinking"})
WAN_I2V_MODELS = frozenset({"wan2.7-i2v", "wan2.6-i2v", "wan2.5-i2v-preview", "wan2.2-i2v-flash", "wan2.2-kf2v-flash"})
NOT_FINE_TUNABLE = frozenset({"emo", "animate-anyone-detect", "qwen-flash-2025-07-28"})

# Base models offered for direct deployment (the rest are only fine-tunable, as on the service), with the plans the
# deployment reference (help.aliyun.com model-studio "模型部署 API 参考"; alibabacloud.com "Create deployment") shows
# for them: PTU (with ptu_capacity) and model units (MU, with deploy_spec) for Qwen LLMs; None is the older
# capacity-only form of the `emo` sample, which is the only form for the image/video base models. `cu` and `lora`
# on a Qwen base are not refused: no page says they are, and earlier clients deploy that way.
LLM_PLANS: frozenset[str | None] = frozenset({None, "ptu", "mu", "cu", "lora"})
DEPLOYABLE_BASE_MODELS: dict[str, frozenset[str | None]] = {
    "qwen-plus": LLM_PLANS,
    "qwen-flash-2025-07-28": LLM_PLANS,
    "qwen3-8b": LLM_PLANS,
    "qwen3-14b": LLM_PLANS,
    "qwen3-32b": LLM_PLANS,
    "qwen2.5-7b-instruct": LLM_PLANS,
    "qwen2.5-72b-instruct": LLM_PLANS,
    "emo": frozenset({None}),
    "animate-anyone-detect": frozenset({None}),
}


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
        if name in NOT_FINE_TUNABLE:
            return None
        if name in BASE_MODELS:
            return ModelInfo(name, name, BASE_MODELS[name])
        return self.produced().get(name)


CATALOGUE_KEY = web.AppKey("bailian_flow.emulator.catalogue", ModelCatalogue)


def catalogue(app: web.Application) -> ModelCatalogue:
    """The app's catalogue, created on first use so that modules can be set up in any order."""
    if CATALOGUE_KEY not in app:
        app[CATALOGUE_KEY] = ModelCatalogue()
    return app[CATALOGUE_KEY]
