"""Fine-tune job records: lifecycle, token usage, logs and checkpoints, derived from the emulated clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .common import format_space
from .timeline import Phase, Timeline

PENDING_SECONDS = 5.0
QUEUING_SECONDS = 5.0
RUNNING_SECONDS = 60.0
CANCELING_SECONDS = 3.0
# A scripted failure strikes halfway through training.
FAIL_AFTER_RUNNING_SECONDS = 30.0
STEPS_PER_EPOCH = 10
TOKENS_PER_EPOCH_PER_FILE = 93_269
CHECKPOINT_RETENTION_SECONDS = 7 * 24 * 3600

TERMINAL = frozenset({"SUCCEEDED", "FAILED", "CANCELED"})
TRAINING_TYPES = frozenset({"cpt", "sft", "efficient_sft", "dpo_full", "dpo_lora"})
# The documented defaults (help.aliyun.com model-studio "模型调优 API 参考", hyper_parameters table). They drive the
# emulated training; the job answers only the hyper-parameters that were sent ("显性声明过的超参表").
DEFAULT_HYPER_PARAMETERS: dict[str, Any] = {
    "n_epochs": 1,
    "max_length": 2048,
    "split": 0.8,
    "lr_scheduler_type": "cosine",
    "warmup_ratio": 0.05,
    "weight_decay": 0.1,
    "eval_steps": 50,
    "logging_steps": 5,
    "lora_rank": 8,
    "lora_alpha": 32,
    "lora_dropout": 0.1,
    "save_total_limit": 1,
}


@dataclass
class FineTuneJob:
    job_id: str
    job_name: str
    model: str
    base_model: str
    finetuned_output: str
    training_file_ids: list[str]
    validation_file_ids: list[str]
    # What training uses (the documented defaults under what was sent) and what was sent (echoed).
    hyper_parameters: dict[str, Any]
    sent_hyper_parameters: dict[str, Any]
    training_type: str
    created: float
    timeline: Timeline
    workspace_id: str
    request_extras: dict[str, Any] = field(default_factory=dict)
    # The scripted outcome (None: success), kept so that serial training can re-plan a queued job.
    outcome: str | None = None
    exports: dict[str, str] = field(default_factory=dict)

    @classmethod
    def schedule(cls, created: float, outcome: str | None, running_at: float | None = None) -> Timeline:
        """PENDING, QUEUING, then training from ``running_at`` (default: as soon as queuing is over)."""
        earliest = PENDING_SECONDS + QUEUING_SECONDS
        running = earliest if running_at is None else max(earliest, running_at - created)
        if outcome is not None and outcome != "SUCCEEDED":
            end = (running + FAIL_AFTER_RUNNING_SECONDS, outcome)
        else:
            end = (running + RUNNING_SECONDS, "SUCCEEDED")
        return Timeline.starting(created, (0.0, "PENDING"), (PENDING_SECONDS, "QUEUING"), (running, "RUNNING"), end)

    def training_ends(self) -> float | None:
        """When this job stops occupying the trainer (its terminal phase), or None if it never trains."""
        if self.timeline.started_at("RUNNING") is None:
            return None
        return next((phase.start for phase in self.timeline.phases if phase.status in TERMINAL), None)

    @property
    def n_epochs(self) -> int:
        return int(self.hyper_parameters.get("n_epochs", DEFAULT_HYPER_PARAMETERS["n_epochs"]))

    def status(self, now: float) -> str:
        return self.timeline.status(now)

    def cancel(self, now: float) -> None:
        self.timeline.cut_and_append(now, Phase(now, "CANCELING"), Phase(now + CANCELING_SECONDS, "CANCELED"))

    def end_time(self, now: float) -> float | None:
        phase = self.timeline.current(now)
        return phase.start if phase.status in TERMINAL else None

    def _running_window(self) -> tuple[float, float] | None:
        """Emulated start and end of training; the end is when the next phase (any) begins."""
        start = self.timeline.started_at("RUNNING")
        if start is None:
            return None
        later = [phase.start for phase in self.timeline.phases if phase.start > start]
        return start, min(later) if later else start + RUNNING_SECONDS

    def trained_fraction(self, now: float) -> float:
        window = self._running_window()
        if window is None:
            return 0.0
        start, end = window
        return max(0.0, min(now, end, start + RUNNING_SECONDS) - start) / RUNNING_SECONDS

    def usage(self, now: float) -> int | None:
        """Consumed tokens: reported only for SUCCEEDED and CANCELED jobs, as the service does."""
        status = self.status(now)
        if status not in ("SUCCEEDED", "CANCELED"):
            return None
        full = TOKENS_PER_EPOCH_PER_FILE * max(1, len(self.training_file_ids)) * self.n_epochs
        return round(full * self.trained_fraction(now))

    def to_output(self, now: float) -> dict[str, Any]:
        status = self.status(now)
        output: dict[str, Any] = {
            "job_id": self.job_id,
            "job_name": self.job_name,
            "status": status,
            "model": self.model,
            "base_model": self.base_model,
            "training_file_ids": list(self.training_file_ids),
            "validation_file_ids": list(self.validation_file_ids),
            "hyper_parameters": dict(self.sent_hyper_parameters),
            "training_type": self.training_type,
            "create_time": format_space(self.created),
            "workspace_id": self.workspace_id,
            "user_identity": "emulator",
            "creator": "emulator",
            "modifier": "emulator",
            "group": "llm",
            **self.request_extras,
        }
        # "仅调优任务状态为 SUCCEED 时出现" (调优任务对象, output.finetuned_output).
        if status == "SUCCEEDED":
            output["finetuned_output"] = self.finetuned_output
        end = self.end_time(now)
        if end is not None:
            output["end_time"] = format_space(end)
        usage = self.usage(now)
        if usage is not None:
            output["usage"] = usage
        return output

    # -- logs and checkpoints -------------------------------------------------------------------------

    def _steps(self) -> list[tuple[float, int]]:
        """(emulated time, step) of every training step that happened or will happen on the timeline."""
        window = self._running_window()
        if window is None:
            return []
        start, end = window
        total = STEPS_PER_EPOCH * self.n_epochs
        step_seconds = RUNNING_SECONDS / total
        return [
            (start + step * step_seconds, step) for step in range(1, total + 1) if start + step * step_seconds <= end
        ]

    def checkpoint_steps(self, now: float) -> list[tuple[float, int]]:
        return [(at, step) for at, step in self._steps() if step % STEPS_PER_EPOCH == 0 and at <= now]

    def log_lines(self, now: float) -> list[str]:
        # Steps go first so that, at equal times, the last step precedes the final status lines.
        events: list[tuple[float, str]] = []
        total = STEPS_PER_EPOCH * self.n_epochs
        for at, step in self._steps():
            loss = 2.0 / (1.0 + step / STEPS_PER_EPOCH)
            events.append((at, f"{{'step': {step}, 'total_steps': {total}, 'loss': {loss:.4f}}}"))
            if step % STEPS_PER_EPOCH == 0:
                events.append((at, f"Saving checkpoint-{step}"))
        for phase in self.timeline.phases:
            events.extend((phase.start, text) for text in self._phase_lines(phase.status, now))
        events.sort(key=lambda event: event[0])
        return [f"{format_space(at)} {text}" for at, text in events if at <= now]

    def _phase_lines(self, status: str, now: float) -> list[str]:
        if status == "PENDING":
            return [f"Job {self.job_id} created, model {self.model}, training type {self.training_type}"]
        if status == "QUEUING":
            return ["Job is queuing for resources"]
        if status == "RUNNING":
            return [f"Training started: {self.n_epochs} epoch(s), hyper_parameters={self.hyper_parameters}"]
        if status == "SUCCEEDED":
            return [
                f"Actual number of consumed tokens is {self.usage(now) or 0}!",
                f"Fine-tuned model: {self.finetuned_output}",
                "##FT_COMPLETE##",
            ]
        if status == "CANCELING":
            return ["Cancel requested, stopping training"]
        if status == "CANCELED":
            return [f"Actual number of consumed tokens is {self.usage(now) or 0}!", "Job canceled"]
        if status == "FAILED":
            return ["Training failed: InternalError, the training process exited unexpectedly"]
        return [f"Status changed to {status}"]

    def checkpoints(self, now: float) -> list[dict[str, Any]]:
        succeeded = self.status(now) == "SUCCEEDED"
        items: list[dict[str, Any]] = []
        for at, step in reversed(self.checkpoint_steps(now)):
            name = f"checkpoint-{step}"
            item: dict[str, Any] = {
                "create_time": format_space(at),
                "full_name": f"{self.job_id}:{name}",
                "job_id": self.job_id,
                "checkpoint_id": f"{self.job_id}-{name}",
                "checkpoint": name,
                "model_display_name": f"{self.finetuned_output}:{name}",
                "status": "SUCCEEDED" if succeeded else "PENDING",
                "expire_time": format_space(at + CHECKPOINT_RETENTION_SECONDS),
                "step": step,
            }
            if succeeded:
                item["model_name"] = self.exports.get(name, f"{self.finetuned_output}-{name}")
            items.append(item)
        return items
