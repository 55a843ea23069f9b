"""Fine-tune jobs (native `/fine-tunes`)."""

from __future__ import annotations

from typing import Annotated, Any, Final, Literal

from pydantic import AliasChoices, BeforeValidator, Field, model_validator

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


def _number(value: Any) -> Any:
    """A learning rate as a number: the pages send and echo it as a string ("1.6e-5") or a number."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value  # left for the float field to refuse with a clear message
    return value


class HyperParameters(ApiModel):
    """`hyper_parameters`: in an answer, only what the create declared (the job object's "explicitly declared
    hyperparameters", service-contract.md#C6); an absent field means the service default, never None."""

    n_epochs: int | None = None
    batch_size: int | None = None
    max_length: int | None = None
    learning_rate: Annotated[float | None, BeforeValidator(_number)] = None
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

    def declared(self) -> dict[str, Any]:
        """Only the fields the answer (or the caller) set: what a job was created with, defaults left out."""
        return self.model_dump(exclude_unset=True)


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
    """The fine-tune job object (help.aliyun.com/zh/model-studio/fine-tuning-job-object-api, 字段说明).

    Documented echoes: `training_file_ids`, `validation_file_ids`, `model`, `hyper_parameters` (only what was
    sent). `job_name` is documented only as "the same as job_id" (the table spells it `jobs_name`): a name the
    caller sent may not be kept (service-contract.md#C2), so a lost create is recognised by `made_from`.
    `finetuned_output` appears only once SUCCEEDED, `usage` on SUCCEEDED/CANCELED, `end_time` on terminal jobs.
    """

    job_id: str
    job_name: str | None = Field(default=None, validation_alias=AliasChoices("job_name", "jobs_name"))
    status: Annotated[str, BeforeValidator(FineTuneStatus.normalize)]
    model: str | None = None
    base_model: str | None = None
    model_name: str | None = None
    finetuned_output_suffix: str | None = None
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

    @property
    def output_model(self) -> str | None:
        """The trained model's id: only a SUCCEEDED job has one (a value on any other status is ignored)."""
        return self.finetuned_output if self.status == FineTuneStatus.SUCCEEDED else None

    def name_kept(self) -> bool:
        """Whether the service kept a name of its own choosing out of it: False when `job_name` is the job id
        (the documented behaviour) or missing, so the name cannot identify the job."""
        return bool(self.job_name) and self.job_name != self.job_id

    def made_from(self, training_file_ids: list[str]) -> bool:
        """Whether this job trains on exactly these files: every attempt uploads files of its own, so the
        documented `training_file_ids` echo identifies the job whatever became of its name."""
        return bool(training_file_ids) and sorted(self.training_file_ids) == sorted(training_file_ids)


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
