"""Fine-tune jobs (native `/fine-tunes`)."""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal, Union

from pydantic import BeforeValidator, Field, model_validator

from ._common import ApiModel, OpenStatus, RequestModel

__all__ = [
    "Checkpoint",
    "DataSource",
    "FineTuneCreate",
    "FineTuneEvent",
    "FineTuneJob",
    "FineTuneLogs",
    "FineTunePage",
    "FineTuneStatus",
    "HyperParameters",
    "MountStorage",
]


class FineTuneStatus(OpenStatus):
    PENDING: Final = "PENDING"
    QUEUING: Final = "QUEUING"
    RUNNING: Final = "RUNNING"
    CANCELING: Final = "CANCELING"
    SUCCEEDED: Final = "SUCCEEDED"
    FAILED: Final = "FAILED"
    CANCELED: Final = "CANCELED"
    TERMINAL = frozenset({SUCCEEDED, FAILED, CANCELED})


class HyperParameters(ApiModel):
    n_epochs: int | None = None
    batch_size: int | None = None
    max_length: int | None = None
    # The service echoes it as a string ("1.6e-5"); callers may send either.
    learning_rate: Union[float, str, None] = None  # noqa: UP007 - pydantic keeps the order: number first
    lr_scheduler_type: str | None = None
    split: float | None = None
    max_split_val_dataset_sample: int | None = None
    eval_steps: int | None = None
    logging_steps: int | None = None
    warmup_ratio: float | None = None
    weight_decay: float | None = None
    freeze_vit: bool | None = None
    lora_rank: int | None = None
    lora_alpha: int | None = None
    lora_dropout: float | None = None
    save_strategy: str | None = None
    save_steps: int | None = None
    save_total_limit: int | None = None


class MountStorage(ApiModel):
    region: str
    bucket: str
    file_path: str


class DataSource(ApiModel):
    """An element of `training_datasets` / `validation_datasets`: a file id or an OSS mount."""

    data_source_type: Literal["file_id", "oss_mount"] | str = "file_id"
    file_id: str | None = None
    mount_storage: MountStorage | None = None

    @classmethod
    def file(cls, file_id: str) -> DataSource:
        return cls(data_source_type="file_id", file_id=file_id)


class FineTuneCreate(RequestModel):
    """`POST /fine-tunes`. Either the current `training_datasets` form or the legacy `training_file_ids`
    one."""

    model: str
    training_type: str | None = None
    training_file_ids: list[str] | None = None
    validation_file_ids: list[str] | None = None
    training_datasets: list[DataSource] | None = None
    validation_datasets: list[DataSource] | None = None
    hyper_parameters: HyperParameters | dict[str, Any] | None = None
    job_name: str | None = None
    model_name: str | None = None
    finetuned_output_suffix: str | None = None

    @model_validator(mode="after")
    def _has_training_data(self) -> FineTuneCreate:
        if not self.training_file_ids and not self.training_datasets:
            raise ValueError("give training_file_ids or training_datasets")
        return self


class FineTuneJob(ApiModel):
    job_id: str
    job_name: str | None = None
    status: Annotated[str, BeforeValidator(FineTuneStatus.normalize)]
    model: str | None = None
    base_model: str | None = None
    finetuned_output: str | None = None
    training_type: str | None = None
    training_file_ids: list[str] = Field(default_factory=list)
    validation_file_ids: list[str] = Field(default_factory=list)
    training_datasets: list[DataSource] | None = None
    validation_datasets: list[DataSource] | None = None
    hyper_parameters: HyperParameters | None = None
    create_time: str | None = None
    end_time: str | None = None
    workspace_id: str | None = None
    usage: int | None = None

    @property
    def is_terminal(self) -> bool:
        return FineTuneStatus.is_terminal(self.status)


class FineTunePage(ApiModel):
    page_no: int = 1
    page_size: int = 10
    total: int = 0
    jobs: list[FineTuneJob] = Field(default_factory=list)


class FineTuneLogs(ApiModel):
    total: int = 0
    logs: list[str] = Field(default_factory=list)


class Checkpoint(ApiModel):
    checkpoint: str | None = None
    checkpoint_id: str | None = None
    full_name: str | None = None
    job_id: str | None = None
    model_name: str | None = None
    model_display_name: str | None = None
    status: str | None = None
    step: int | None = None
    create_time: str | None = None
    expire_time: str | None = None


class FineTuneEvent(ApiModel):
    """One server-sent event of `GET /fine-tunes/{id}/stream`: `data` is the raw payload (usually a log
    line)."""

    event: str | None = None
    id: str | None = None
    data: str = ""
