"""What a media fine-tune's settings must hold before anything is read or uploaded, from the official pages:

- Wan image-to-video ("视频生成模型微调 API 参考", https://help.aliyun.com/zh/model-studio/wan-video-generation-finetune-
  api-reference, 创建调优任务; "Create a tuning job", https://help.aliyun.com/en/model-studio/model-training-api-reference,
  Video generation sample): `training_type` `efficient_sft`, `hyper_parameters` with `batch_size` and `n_epochs`
  (the sample sends both; the reference marks them required), models wan2.6-i2v, wan2.5-i2v-preview,
  wan2.2-i2v-flash, wan2.2-kf2v-flash and wan2.7-i2v.
- Fine-tuning is offered in Beijing only ("当前模型调优 API 仅在北京 Region 开放", 调优任务对象 page), so a run
  against the international host fails before it uploads anything.
- Qwen-VL (qwen3-vl-8b-instruct/-thinking): `freeze_vit` is a hyper-parameter; token billing needs it true, which
  `validate._vl.freeze_vit_warning` says.
"""

from __future__ import annotations

from bailian_flow.pipeline.protocol.runtime import Flow
from bailian_flow.pipeline.protocol.state import RunError, RunState
from bailian_flow.validate._vl import freeze_vit_warning, is_vl_model
from bailian_flow.validate._zip import WAN_MODES

WAN_REQUIRED = ("batch_size", "n_epochs")


def settings_problem(flow: Flow, state: RunState) -> RunError | None:
    """Why this run's settings cannot train a media model (naming the setting), or None."""
    settings = state.settings
    model, key = settings.model, state.source.key

    def wrong(reason: str, field: str) -> RunError:
        return RunError(reason=reason, object=key, field=field, code="InvalidSettings")

    if model not in WAN_MODES and not is_vl_model(model):
        known = ", ".join(sorted(WAN_MODES))
        return wrong(f"a dataset zip trains a Wan ({known}) or a Qwen-VL model; {model} is neither", "model")
    if flow.settings.region != "cn":
        return wrong(f"fine-tuning {model} is offered in the Beijing region only (DASHSCOPE_REGION=cn)", "model")
    if model in WAN_MODES:
        if settings.training_type != "efficient_sft":
            return wrong(f"{model} trains with efficient_sft only", "training_type")
        for name in WAN_REQUIRED:
            value = settings.hyper_parameters.get(name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                reason = f"{model} needs {name} (a positive whole number; the API reference's sample sends both)"
                return wrong(reason, f"hyper_parameters.{name}")
    return None


def warnings_of(state: RunState) -> list[str]:
    warning = freeze_vit_warning(state.settings.model, state.settings.hyper_parameters)
    return [warning] if warning else []
