"""Batch input validation and fake output, run in a worker thread over files on disk.

The input file is read line by line (never whole); every request line gets one output line, a deterministic
fake ``chat.completion`` or embedding list derived from the line, so reruns give identical answers. Problems
that make the whole batch invalid (bad JSON, wrong ``url``, duplicate ``custom_id``, too many lines...) are
returned as ``errors`` and no output is kept; per-line problems (``mismatched_model``, ``model_not_found``,
``invalid_request``) go to the error file.

Known models are recognised by name: chat models start with one of :data:`CHAT_MODEL_PREFIXES`, embedding
models with one of :data:`EMBEDDING_MODEL_PREFIXES`; anything else is ``model_not_found``.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .blobs import Blob, BlobStore, BlobWriter, remove

MAX_LINES = 50_000
MAX_LINE_BYTES = 6 * 1024 * 1024
MAX_REPORTED_ERRORS = 100
CHAT_ENDPOINT = "/v1/chat/completions"
EMBEDDINGS_ENDPOINT = "/v1/embeddings"
# The batch page's free test model (OpenAI兼容-Batch, 快速开始, https://help.aliyun.com/document_detail/2975721.html):
# model `batch-test-model` with line url `/v1/chat/ds-test` runs no inference; input ≤ 1 MB and ≤ 100 lines.
TEST_ENDPOINT = "/v1/chat/ds-test"
TEST_MODEL = "batch-test-model"
TEST_MAX_LINES = 100
TEST_MAX_BYTES = 1 << 20
ENDPOINTS = (CHAT_ENDPOINT, EMBEDDINGS_ENDPOINT, TEST_ENDPOINT)
CHAT_MODEL_PREFIXES = ("qwen", "deepseek", "kimi", "glm", "llama")
EMBEDDING_MODEL_PREFIXES = ("text-embedding-", "multimodal-embedding")
DEFAULT_EMBEDDING_DIMENSIONS = 8
MAX_EMBEDDING_DIMENSIONS = 2048


@dataclass
class BatchResult:
    errors: list[dict[str, Any]] = field(default_factory=list)
    total: int = 0
    succeeded: int = 0
    failed: int = 0
    model: str | None = None
    output: Blob | None = None
    error_output: Blob | None = None


class _Invalid(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def model_known(model: str, endpoint: str) -> bool:
    if endpoint == TEST_ENDPOINT:
        return model == TEST_MODEL
    prefixes = EMBEDDING_MODEL_PREFIXES if endpoint == EMBEDDINGS_ENDPOINT else CHAT_MODEL_PREFIXES
    return model.startswith(prefixes)


def run_batch(
    input_path: Path,
    endpoint: str,
    created_at: int,
    blobs: BlobStore,
    failed_share: float = 0.0,
    shuffle_seed: str | None = None,
) -> BatchResult:
    """Validate ``input_path`` and write the output and error files (kept only when they have lines).

    ``failed_share`` of the lines (chosen by their content, so reruns agree) fail with ``internal_error``.
    ``shuffle_seed``: each result file lists its lines shuffled by that seed, not in input order.
    """
    result = BatchResult()
    output = blobs.open_writer()
    error_output = blobs.open_writer()
    seen_ids: set[str] = set()
    try:
        with input_path.open("rb") as handle:
            line_no = 0
            while True:
                raw = handle.readline(MAX_LINE_BYTES + 1)
                if not raw:
                    break
                line_no += 1
                if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                    _skip_rest_of_line(handle)
                    _fail(result, "line_too_long", f"Line exceeds {MAX_LINE_BYTES} bytes.", line_no)
                    continue
                if not raw.strip():
                    continue
                result.total += 1
                if result.total > MAX_LINES:
                    _fail(result, "too_many_requests", f"The input file has more than {MAX_LINES} lines.", None)
                    break
                try:
                    request = _parse_line(raw, endpoint)
                except _Invalid as exc:
                    _fail(result, exc.code, exc.message, line_no)
                    continue
                custom_id = request["custom_id"]
                if custom_id in seen_ids:
                    _fail(
                        result,
                        "duplicate_custom_id",
                        f"custom_id {custom_id!r} is used more than once.",
                        line_no,
                    )
                    continue
                seen_ids.add(custom_id)
                if result.errors:
                    continue  # the batch is invalid already; keep scanning only to report more errors
                _answer(request, raw, endpoint, created_at, result, output, error_output, failed_share)
        if result.total == 0 and not result.errors:
            _fail(result, "empty_file", "The input file has no requests.", None)
        if endpoint == TEST_ENDPOINT and (result.total > TEST_MAX_LINES or input_path.stat().st_size > TEST_MAX_BYTES):
            _fail(result, "invalid_file", "A test-model input holds at most 100 lines and 1 MB.", None)
    except BaseException:
        output.discard()
        error_output.discard()
        raise
    if result.errors:
        output.discard()
        error_output.discard()
        return result
    result.output = _keep_if_written(blobs, output)
    result.error_output = _keep_if_written(blobs, error_output)
    if shuffle_seed is not None:
        result.output = _shuffled(blobs, result.output, shuffle_seed)
        result.error_output = _shuffled(blobs, result.error_output, shuffle_seed)
    return result


def _shuffled(blobs: BlobStore, blob: Blob | None, seed: str) -> Blob | None:
    """The blob's lines in a seeded random order (a new blob; the old one is removed)."""
    if blob is None:
        return None
    lines = blob.path.read_bytes().splitlines(keepends=True)
    random.Random(seed).shuffle(lines)
    writer = blobs.open_writer()
    writer.write(b"".join(lines))
    remove(blob.path)
    return blobs.commit(writer)


def _keep_if_written(blobs: BlobStore, writer: BlobWriter) -> Blob | None:
    if writer.size == 0:
        writer.discard()
        return None
    return blobs.commit(writer)


def _skip_rest_of_line(handle: Any) -> None:
    while True:
        chunk = handle.readline(MAX_LINE_BYTES)
        if not chunk or chunk.endswith(b"\n"):
            return


def _fail(result: BatchResult, code: str, message: str, line: int | None) -> None:
    if len(result.errors) < MAX_REPORTED_ERRORS:
        result.errors.append({"code": code, "message": message, "param": None, "line": line})


def _parse_line(raw: bytes, endpoint: str) -> dict[str, Any]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _Invalid("invalid_encoding", "The line is not valid UTF-8.") from None
    try:
        request = json.loads(text)
    except ValueError:
        raise _Invalid("invalid_json_line", "The line is not a valid JSON object.") from None
    if not isinstance(request, dict):
        raise _Invalid("invalid_json_line", "The line is not a JSON object.")
    for name, kind in (("custom_id", str), ("method", str), ("url", str), ("body", dict)):
        if not isinstance(request.get(name), kind):
            raise _Invalid("missing_required_parameter", f"The line has no valid {name!r}.")
    if request["method"].upper() != "POST":
        raise _Invalid("invalid_method", f"method must be POST, got {request['method']!r}.")
    if request["url"] != endpoint:
        raise _Invalid(
            "mismatched_endpoint",
            f"The line's url {request['url']!r} differs from the batch endpoint {endpoint!r}.",
        )
    return request


def _answer(
    request: dict[str, Any],
    raw: bytes,
    endpoint: str,
    created_at: int,
    result: BatchResult,
    output: BlobWriter,
    error_output: BlobWriter,
    failed_share: float,
) -> None:
    digest = hashlib.sha256(raw.strip()).hexdigest()
    body: dict[str, Any] = request["body"]
    model = body.get("model")
    error: tuple[int, str, str] | None = None
    if not isinstance(model, str) or not model:
        error = (400, "invalid_request", "The request body has no model.")
    else:
        if result.model is None:
            result.model = model
        if model != result.model:
            error = (
                400,
                "mismatched_model",
                f"Model {model!r} differs from the batch's model {result.model!r}.",
            )
        elif not model_known(model, endpoint):
            error = (
                404,
                "model_not_found",
                f"The model {model!r} does not exist or you do not have access to it.",
            )
    if error is None and int(digest[:8], 16) / 0xFFFFFFFF < failed_share:
        error = (500, "internal_error", "The request failed inside the service (scripted).")
    if error is None:
        try:
            chat = endpoint in (CHAT_ENDPOINT, TEST_ENDPOINT)
            answer = _fake_chat(body, digest, created_at) if chat else _fake_embedding(body)
        except _Invalid as exc:
            error = (400, exc.code, exc.message)
    request_id = str(uuid.UUID(digest[:32]))
    line: dict[str, Any] = {"id": f"batch_req_{digest[:24]}", "custom_id": request["custom_id"]}
    if error is None:
        line["response"] = {"status_code": 200, "request_id": request_id, "body": answer}
        line["error"] = None
        result.succeeded += 1
        target = output
    else:
        status, code, message = error
        line["response"] = {
            "status_code": status,
            "request_id": request_id,
            "body": {"error": {"code": code, "message": message, "type": "invalid_request_error"}},
        }
        line["error"] = {"code": code, "message": message}
        result.failed += 1
        target = error_output
    target.write(json.dumps(line, ensure_ascii=False).encode("utf-8") + b"\n")


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def _fake_chat(body: dict[str, Any], digest: str, created_at: int) -> dict[str, Any]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _Invalid("invalid_request", "messages must be a non-empty list.")
    prompt = " ".join(_text_of(m.get("content")) for m in messages if isinstance(m, dict))
    last_user = next(
        (_text_of(m.get("content")) for m in reversed(messages) if isinstance(m, dict) and m.get("role") == "user"),
        "",
    )
    content = f"Emulated answer {digest[:8]} to: {last_user[:200]}"
    prompt_tokens = max(1, len(prompt) // 4)
    completion_tokens = max(1, len(content) // 4)
    return {
        "id": f"chatcmpl-{digest[:29]}",
        "object": "chat.completion",
        "created": created_at,
        "model": body["model"],
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
        "system_fingerprint": None,
    }


def _fake_embedding(body: dict[str, Any]) -> dict[str, Any]:
    raw_input = body.get("input")
    inputs = [raw_input] if isinstance(raw_input, str) else raw_input
    if not isinstance(inputs, list) or not inputs or not all(isinstance(text, str) for text in inputs):
        raise _Invalid("invalid_request", "input must be a string or a non-empty list of strings.")
    dimensions = body.get("dimensions", DEFAULT_EMBEDDING_DIMENSIONS)
    if not isinstance(dimensions, int) or not 1 <= dimensions <= MAX_EMBEDDING_DIMENSIONS:
        raise _Invalid("invalid_request", f"dimensions must be between 1 and {MAX_EMBEDDING_DIMENSIONS}.")
    data = [
        {"object": "embedding", "index": index, "embedding": _vector(body["model"], text, dimensions)}
        for index, text in enumerate(inputs)
    ]
    tokens = sum(max(1, len(text) // 4) for text in inputs)
    return {
        "object": "list",
        "data": data,
        "model": body["model"],
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def _vector(model: str, text: str, dimensions: int) -> list[float]:
    """A unit vector that depends only on (model, text)."""
    values: list[float] = []
    counter = 0
    while len(values) < dimensions:
        block = hashlib.sha256(f"{model}\0{text}\0{counter}".encode()).digest()
        values.extend((byte - 127.5) / 127.5 for byte in block)
        counter += 1
    values = values[:dimensions]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [round(v / norm, 6) for v in values]


def expire_result(result: BatchResult, fraction: float, blobs: BlobStore) -> BatchResult:
    """What a batch that ran out of its window leaves: the first ``fraction`` of its answers (in the order it
    answered them), and a ``batch_expired`` error line for every request it did not reach."""
    kept = BatchResult(total=result.total, model=result.model)
    output = blobs.open_writer()
    errors = blobs.open_writer()
    try:
        kept.succeeded, missed = _keep_first(result.output, int(result.succeeded * fraction), output, errors)
        failed, missed_errors = _keep_first(result.error_output, int(result.failed * fraction), errors, errors)
        kept.failed = failed + missed + missed_errors
    except BaseException:
        output.discard()
        errors.discard()
        raise
    kept.output = _keep_if_written(blobs, output)
    kept.error_output = _keep_if_written(blobs, errors)
    return kept


def _keep_first(blob: Blob | None, reached: int, target: BlobWriter, expired: BlobWriter) -> tuple[int, int]:
    """Copy the first `reached` lines of `blob` to `target`, the rest to `expired` as `batch_expired` lines."""
    if blob is None:
        return 0, 0
    kept = missed = 0
    with blob.path.open("rb") as handle:
        for raw in handle:
            if kept < reached:
                target.write(raw)
                kept += 1
                continue
            line = json.loads(raw)
            error = {"code": "batch_expired", "message": "The batch expired before this request was processed."}
            answer = {"id": line["id"], "custom_id": line["custom_id"], "response": None, "error": error}
            expired.write(json.dumps(answer, ensure_ascii=False).encode("utf-8") + b"\n")
            missed += 1
    return kept, missed
