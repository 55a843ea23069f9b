"""`client.fine_tunes`: fine-tune jobs (native)."""

from __future__ import annotations

import asyncio
import builtins
import json
from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence
from typing import Any

import aiohttp

from .. import errors
from .._base import Operation
from .._config import Family, Limiter
from .._pagination import iterate_pages
from ..models.fine_tunes import (
    Checkpoint,
    DataSource,
    FineTuneCreate,
    FineTuneEvent,
    FineTuneJob,
    FineTuneLogs,
    FineTunePage,
    HyperParameters,
)
from ._resource import Resource, native_payload, quote, stream_broken

__all__ = ["FineTunes"]


def _op(name: str, method: str, idempotent: bool, **kw: Any) -> Operation:
    return Operation(f"fine_tunes.{name}", method, Family.NATIVE, Limiter.FINE_TUNES, idempotent, **kw)


# Creating twice would start (and bill) two trainings: not retried once it may have reached the server.
_CREATE = _op("create", "POST", False)
_GET = _op("get", "GET", True)
_LIST = _op("list", "GET", True)
# Cancelling a job twice leaves it cancelled: safe.
_CANCEL = _op("cancel", "POST", True)
_DELETE = _op("delete", "DELETE", True, absent_means_done=True)
_LOGS = _op("logs", "GET", True)
_CHECKPOINTS = _op("checkpoints", "GET", True)
# Exporting the same checkpoint under the same name again yields the same model: safe.
_EXPORT = _op("export", "GET", True)
_STREAM = _op("events", "GET", True)


class FineTunes(Resource):
    async def create(
        self,
        model: str,
        *,
        training_file_ids: Sequence[str] | None = None,
        validation_file_ids: Sequence[str] | None = None,
        training_datasets: Sequence[DataSource | dict[str, Any]] | None = None,
        validation_datasets: Sequence[DataSource | dict[str, Any]] | None = None,
        training_type: str | None = None,
        hyper_parameters: HyperParameters | dict[str, Any] | None = None,
        job_name: str | None = None,
        model_name: str | None = None,
        finetuned_output_suffix: str | None = None,
        **extra: Any,
    ) -> FineTuneJob:
        """Start a fine-tune. Give `training_file_ids` (legacy form) or `training_datasets` (current form)."""
        request = FineTuneCreate.model_validate(
            {
                "model": model,
                "training_type": training_type,
                "training_file_ids": list(training_file_ids) if training_file_ids is not None else None,
                "validation_file_ids": list(validation_file_ids) if validation_file_ids is not None else None,
                "training_datasets": list(training_datasets) if training_datasets is not None else None,
                "validation_datasets": list(validation_datasets) if validation_datasets is not None else None,
                "hyper_parameters": hyper_parameters,
                "job_name": job_name,
                "model_name": model_name,
                "finetuned_output_suffix": finetuned_output_suffix,
                **extra,
            }
        )
        answer = await self._client.request(_CREATE, "/fine-tunes", json=request.to_body())
        return self._client.parse(FineTuneJob, native_payload(answer), answer)

    async def get(self, job_id: str) -> FineTuneJob:
        answer = await self._client.request(_GET, f"/fine-tunes/{quote(job_id)}")
        return self._client.parse(FineTuneJob, native_payload(answer), answer)

    async def list_page(self, page_no: int = 1, page_size: int = 10, model: str | None = None) -> FineTunePage:
        params: dict[str, str | int] = {"page_no": page_no, "page_size": page_size}
        if model:
            params["model"] = model
        answer = await self._client.request(_LIST, "/fine-tunes", params=params)
        return self._client.parse(FineTunePage, native_payload(answer), answer)

    def list(self, model: str | None = None, page_size: int = 100) -> AsyncIterator[FineTuneJob]:
        """Every job, page after page (`page_size` 1-100)."""

        async def fetch(page_no: int) -> tuple[list[FineTuneJob], int, int]:
            page = await self.list_page(page_no, page_size, model)
            return page.jobs, page.total, page.page_size or page_size

        return iterate_pages(fetch)

    async def made_from(self, training_file_ids: Sequence[str], model: str | None = None) -> Sequence[FineTuneJob]:
        """Every job training on exactly these files, oldest first: how a create whose answer was lost is found
        again whatever became of its `job_name` (service-contract.md#C2, #C3)."""
        wanted = [*training_file_ids]
        found = [job async for job in self.list(model=model) if job.made_from(wanted)]
        return sorted(found, key=lambda job: (job.create_time or "", job.job_id))

    async def cancel(self, job_id: str) -> None:
        await self._client.request(_CANCEL, f"/fine-tunes/{quote(job_id)}/cancel")

    async def delete(self, job_id: str) -> None:
        """Delete a terminal job (a running one gives `BadRequestError` UnsupportedOperation)."""
        await self._client.request(_DELETE, f"/fine-tunes/{quote(job_id)}")

    async def logs(self, job_id: str, offset: int = 0, line: int = 100) -> FineTuneLogs:
        answer = await self._client.request(
            _LOGS, f"/fine-tunes/{quote(job_id)}/logs", params={"offset": offset, "line": line}
        )
        return self._client.parse(FineTuneLogs, native_payload(answer), answer)

    async def checkpoints(self, job_id: str) -> builtins.list[Checkpoint]:
        """Checkpoints, newest step first."""
        answer = await self._client.request(_CHECKPOINTS, f"/fine-tunes/{quote(job_id)}/checkpoints")
        payload = native_payload(answer)
        if not isinstance(payload, list):
            raise errors.APIResponseValidationError("checkpoints: output is not a list", request_id=answer.request_id)
        return [self._client.parse(Checkpoint, item, answer) for item in payload]

    async def export(self, job_id: str, checkpoint: str, model_name: str) -> bool:
        answer = await self._client.request(
            _EXPORT,
            f"/fine-tunes/{quote(job_id)}/export/{quote(checkpoint)}",
            params={"model_name": model_name},
        )
        return bool(native_payload(answer))

    async def events(self, job_id: str) -> AsyncIterator[FineTuneEvent]:
        """The job's server-sent events until the server ends the stream; an `event:error` frame is raised."""
        answer = await self._client.request(
            _STREAM,
            f"/fine-tunes/{quote(job_id)}/stream",
            headers={"X-DashScope-SSE": "enable", "Accept": "text/event-stream"},
            stream=True,
        )
        assert answer.response is not None
        response = answer.response
        try:
            async for fields, data in _sse_frames(response.content):
                event = FineTuneEvent(event=fields.get("event"), id=fields.get("id"), data=data)
                if event.event == "error":
                    raise _stream_error(event, fields.get("status"), answer.request_id, self._client.scrub)
                yield event
        except (asyncio.TimeoutError, aiohttp.ClientError) as exc:
            raise stream_broken(answer, exc) from exc
        finally:
            response.release()


async def _sse_frames(lines: AsyncIterable[bytes]) -> AsyncIterator[tuple[dict[str, str], str]]:
    """(fields, data) of each server-sent event frame that has data, a last frame without its blank line too."""
    fields: dict[str, str] = {}
    data_lines: list[str] = []
    async for raw in lines:
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if line:
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                data_lines.append(value)
            elif name:  # a line starting with ':' is a comment (heartbeat)
                fields[name] = value
            continue
        if data_lines:
            yield fields, "\n".join(data_lines)
        fields, data_lines = {}, []
    if data_lines:
        yield fields, "\n".join(data_lines)


def _stream_error(
    event: FineTuneEvent, status: str | None, request_id: str | None, scrub: Callable[[str], str]
) -> errors.APIStatusError:
    """The error an `event:error` frame carries; its message, from the server, is `scrub`bed of the key."""
    code: str | None = None
    message = event.data
    try:
        body = json.loads(event.data)
    except ValueError:
        body = None
    if isinstance(body, dict):
        code = body.get("code")
        message = str(body.get("message") or event.data)
        request_id = body.get("request_id") or request_id
    http_status = int(status) if status and status.strip().isdigit() else None
    return errors.status_error(http_status, code, scrub(message), request_id)
