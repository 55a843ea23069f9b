"""Batches (`/compatible-mode/v1/batches`) on a frozen-clock emulator: creation rules, the lifecycle step by
step, output and error files, validation failures, cancel, scripts and listing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from emulator_support import Emulator

CHAT = "/v1/chat/completions"
EMBEDDINGS = "/v1/embeddings"


class Client:
    def __init__(self, session: aiohttp.ClientSession, emulator: Emulator) -> None:
        self.session = session
        self.emulator = emulator
        self.base = emulator.url + "/compatible-mode/v1"
        self.headers = {"Authorization": f"Bearer {emulator.api_key}"}

    async def call(self, method: str, path: str, *, json_body: Any = None, **params: Any) -> tuple[int, Any]:
        async with self.session.request(
            method, self.base + path, json=json_body, params=params, headers=self.headers
        ) as response:
            return response.status, await response.json()

    async def upload(self, lines: list[Any] | bytes, purpose: str = "batch") -> str:
        content = lines if isinstance(lines, bytes) else "".join(json.dumps(line) + "\n" for line in lines).encode()
        form = aiohttp.FormData(default_to_multipart=True)
        form.add_field("purpose", purpose)
        form.add_field("file", content, filename="input.jsonl")
        async with self.session.post(self.base + "/files", data=form, headers=self.headers) as response:
            body = await response.json()
            assert response.status == 200, body
            return str(body["id"])

    async def content(self, file_id: str) -> list[dict[str, Any]]:
        async with self.session.get(f"{self.base}/files/{file_id}/content", headers=self.headers) as response:
            assert response.status == 200
            return [json.loads(line) for line in (await response.text()).splitlines()]

    async def create(self, input_file_id: str, endpoint: str = CHAT, **extra: Any) -> dict[str, Any]:
        body = {"input_file_id": input_file_id, "endpoint": endpoint, "completion_window": "24h", **extra}
        status, batch = await self.call("POST", "/batches", json_body=body)
        assert status == 200, batch
        return dict(batch)

    async def get(self, batch_id: str) -> dict[str, Any]:
        status, batch = await self.call("GET", f"/batches/{batch_id}")
        assert status == 200, batch
        return dict(batch)

    async def control(self, path: str, body: Any) -> Any:
        async with self.session.post(f"{self.emulator.url}/_emulator{path}", json=body) as response:
            assert response.status == 200
            return await response.json()

    async def advance(self, seconds: float) -> None:
        await self.control("/clock", {"advance": seconds})


@pytest.fixture
async def client(frozen: Emulator) -> AsyncIterator[Client]:
    frozen.reset()
    frozen.configure({"profile": "default"})  # the behaviours tested here, whatever the suite's profile
    async with aiohttp.ClientSession() as session:
        yield Client(session, frozen)


def chat_line(custom_id: str, text: str, model: str = "qwen-plus") -> dict[str, Any]:
    body = {"model": model, "messages": [{"role": "user", "content": text}]}
    return {"custom_id": custom_id, "method": "POST", "url": CHAT, "body": body}


async def test_chat_batch_walks_the_lifecycle_and_answers_every_line(client: Client) -> None:
    lines = [chat_line(str(n), f"question {n}") for n in range(4)]
    lines.append(chat_line("other-model", "hi", model="qwen-turbo"))
    lines.append(chat_line("unknown", "hi", model="no-such-model"))
    lines[0]["body"]["model"] = "qwen-plus"  # the first line fixes the batch model
    batch = await client.create(await client.upload(lines), metadata={"ds_name": "nightly"})
    assert batch["object"] == "batch"
    assert batch["status"] == "validating"
    assert batch["id"].startswith("batch_")
    assert batch["endpoint"] == CHAT
    assert batch["metadata"] == {"ds_name": "nightly"}
    assert batch["expires_at"] == batch["created_at"] + 24 * 3600
    assert batch["errors"] is None
    assert batch["output_file_id"] is None

    await client.advance(4)
    assert (await client.get(batch["id"]))["status"] == "validating"
    await client.advance(1.5)
    running = await client.get(batch["id"])
    assert running["status"] == "in_progress"
    assert running["in_progress_at"] == batch["created_at"] + 5
    assert running["request_counts"]["total"] == 6
    await client.advance(20)
    finalizing = await client.get(batch["id"])
    assert finalizing["status"] == "finalizing"
    assert finalizing["finalizing_at"] == batch["created_at"] + 25
    await client.advance(5)
    done = await client.get(batch["id"])
    assert done["status"] == "completed"
    assert done["completed_at"] == batch["created_at"] + 30
    assert done["request_counts"] == {"total": 6, "completed": 4, "failed": 2}
    assert done["model"] == "qwen-plus"

    output = await client.content(done["output_file_id"])
    assert [line["custom_id"] for line in output] == ["0", "1", "2", "3"]
    first = output[0]
    assert first["error"] is None
    assert first["response"]["status_code"] == 200
    completion = first["response"]["body"]
    assert completion["object"] == "chat.completion"
    assert completion["model"] == "qwen-plus"
    assert "question 0" in completion["choices"][0]["message"]["content"]
    assert completion["usage"]["total_tokens"] > 0
    assert output[1]["response"]["body"]["choices"] != completion["choices"]

    errors = {line["custom_id"]: line for line in await client.content(done["error_file_id"])}
    assert errors["other-model"]["error"]["code"] == "mismatched_model"
    assert errors["unknown"]["error"]["code"] == "mismatched_model"

    status, output_file = await client.call("GET", f"/files/{done['output_file_id']}")
    assert status == 200
    assert output_file["purpose"] == "batch_output"


async def test_unknown_model_of_the_batch_goes_to_the_error_file(client: Client) -> None:
    lines = [chat_line("a", "x", model="no-such-model"), chat_line("b", "y", model="no-such-model")]
    batch = await client.create(await client.upload(lines))
    await client.advance(31)
    done = await client.get(batch["id"])
    assert done["status"] == "completed"
    assert done["output_file_id"] is None
    assert done["request_counts"] == {"total": 2, "completed": 0, "failed": 2}
    errors = await client.content(done["error_file_id"])
    assert [line["error"]["code"] for line in errors] == ["model_not_found", "model_not_found"]
    assert errors[0]["response"]["status_code"] == 404


async def test_outputs_are_deterministic_per_line(client: Client) -> None:
    lines = [chat_line("1", "same question")]
    first = await client.create(await client.upload(lines))
    second = await client.create(await client.upload(lines))
    await client.advance(31)
    answers = []
    for batch_id in (first["id"], second["id"]):
        done = await client.get(batch_id)
        [line] = await client.content(done["output_file_id"])
        answers.append(line["response"]["body"]["choices"][0]["message"]["content"])
    assert answers[0] == answers[1]


async def test_embeddings_batch_returns_vectors(client: Client) -> None:
    line = {
        "custom_id": "e1",
        "method": "POST",
        "url": EMBEDDINGS,
        "body": {"model": "text-embedding-v4", "input": ["alpha", "beta"], "dimensions": 16},
    }
    batch = await client.create(await client.upload([line]), endpoint=EMBEDDINGS)
    await client.advance(31)
    done = await client.get(batch["id"])
    [answer] = await client.content(done["output_file_id"])
    body = answer["response"]["body"]
    assert body["object"] == "list"
    assert [item["index"] for item in body["data"]] == [0, 1]
    assert all(len(item["embedding"]) == 16 for item in body["data"])
    assert body["data"][0]["embedding"] != body["data"][1]["embedding"]


@pytest.mark.parametrize(
    ("content", "code", "line"),
    [
        (
            b'{"custom_id": "1", "method": "POST", "url": "/v1/chat/completions", "body": {}}\nnot json\n',
            "invalid_json_line",
            2,
        ),
        (
            (json.dumps(chat_line("1", "a")) + "\n" + json.dumps(chat_line("1", "b")) + "\n").encode(),
            "duplicate_custom_id",
            2,
        ),
        (
            json.dumps({**chat_line("1", "a"), "url": "/v1/embeddings"}).encode() + b"\n",
            "mismatched_endpoint",
            1,
        ),
        (b'{"custom_id": "\xff"}\n', "invalid_encoding", 1),
        (
            json.dumps({"custom_id": "1", "method": "POST", "url": CHAT}).encode() + b"\n",
            "missing_required_parameter",
            1,
        ),
        (b"\n\n", "empty_file", None),
    ],
)
async def test_invalid_input_fails_the_batch_with_errors(
    client: Client, content: bytes, code: str, line: int | None
) -> None:
    batch = await client.create(await client.upload(content))
    await client.advance(5)
    failed = await client.get(batch["id"])
    assert failed["status"] == "failed"
    assert failed["failed_at"] == batch["created_at"] + 5
    assert failed["errors"]["object"] == "list"
    assert {"code": code, "line": line} == {k: failed["errors"]["data"][0][k] for k in ("code", "line")}
    assert failed["errors"]["data"][0]["message"]
    assert failed["output_file_id"] is None
    await client.advance(60)
    assert (await client.get(batch["id"]))["status"] == "failed"


async def test_too_many_lines_fails_the_batch(client: Client) -> None:
    # The limit is 50,000 lines: generate exactly one more, cheaply.
    line = (json.dumps(chat_line("{}", "x")) + "\n").replace('"{}"', '"{n}"')
    content = "".join(line.replace("{n}", str(n)) for n in range(50_001)).encode()
    batch = await client.create(await client.upload(content))
    await client.advance(5)
    failed = await client.get(batch["id"])
    assert failed["status"] == "failed"
    assert failed["errors"]["data"][0]["code"] == "too_many_requests"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input_file_id": "file-batch-missing", "endpoint": CHAT}, "input_file_id"),
        ({"endpoint": CHAT}, "input_file_id"),
        ({"endpoint": "/v1/completions"}, "endpoint"),
        ({"endpoint": CHAT, "completion_window": "23h"}, "completion_window"),
        ({"endpoint": CHAT, "completion_window": "337h"}, "completion_window"),
        ({"endpoint": CHAT, "completion_window": "15d"}, "completion_window"),
        ({"endpoint": CHAT, "metadata": {"ds_name": "x" * 101}}, "metadata"),
        ({"endpoint": CHAT, "metadata": {"ds_batch_finish_callback": "ftp://x"}}, "metadata"),
    ],
)
async def test_create_rejects_invalid_requests(client: Client, body: dict[str, Any], param: str) -> None:
    file_id = await client.upload([chat_line("1", "x")])
    request = {"input_file_id": file_id, **body}
    if param == "input_file_id" and "input_file_id" not in body:
        del request["input_file_id"]
    status, answer = await client.call("POST", "/batches", json_body=request)
    assert status == 400, answer
    assert answer["error"]["param"] == param


async def test_create_needs_a_batch_purpose_file_and_accepts_day_windows(client: Client) -> None:
    extract_id = await client.upload([chat_line("1", "x")], purpose="file-extract")
    status, answer = await client.call("POST", "/batches", json_body={"input_file_id": extract_id, "endpoint": CHAT})
    assert status == 400
    assert answer["error"]["param"] == "input_file_id"
    batch = await client.create(await client.upload([chat_line("1", "x")]), completion_window="14d")
    assert batch["expires_at"] == batch["created_at"] + 14 * 24 * 3600


async def test_cancel_goes_through_cancelling_to_cancelled(client: Client) -> None:
    batch = await client.create(await client.upload([chat_line("1", "x")]))
    status, cancelling = await client.call("POST", f"/batches/{batch['id']}/cancel")
    assert status == 200, cancelling
    assert cancelling["status"] == "cancelling"
    assert cancelling["cancelling_at"] is not None
    await client.advance(5.5)
    cancelled = await client.get(batch["id"])
    assert cancelled["status"] == "cancelled"
    assert cancelled["cancelled_at"] == cancelling["cancelling_at"] + 5
    await client.advance(60)
    assert (await client.get(batch["id"]))["status"] == "cancelled"
    status, again = await client.call("POST", f"/batches/{batch['id']}/cancel")
    assert status == 200
    assert again["status"] == "cancelled"


async def test_cancel_of_completed_or_unknown_batch_is_refused(client: Client) -> None:
    batch = await client.create(await client.upload([chat_line("1", "x")]))
    await client.advance(31)
    status, answer = await client.call("POST", f"/batches/{batch['id']}/cancel")
    assert status == 409
    assert "completed" in answer["error"]["message"]
    status, answer = await client.call("POST", "/batches/batch_nope/cancel")
    assert status == 404
    status, answer = await client.call("GET", "/batches/batch_nope")
    assert status == 404


async def test_scripted_failure(client: Client) -> None:
    await client.control("/script", {"kind": "batch", "outcome": "FAILED", "count": 1})
    file_id = await client.upload([chat_line("1", "x")])
    scripted = await client.create(file_id)
    normal = await client.create(file_id)
    await client.advance(31)
    failed = await client.get(scripted["id"])
    assert failed["status"] == "failed"
    assert failed["errors"]["data"][0]["code"] == "scripted_failure"
    assert (await client.get(normal["id"]))["status"] == "completed"


async def test_list_filters_and_paginates_newest_first(client: Client) -> None:
    file_id = await client.upload([chat_line("1", "x")])
    ids = [(await client.create(file_id))["id"]]
    await client.advance(31)  # the first ends: at most two batches run at once
    ids += [(await client.create(file_id))["id"] for _ in range(2)]
    status, page = await client.call("GET", "/batches", limit=2)
    assert status == 200
    assert page["object"] == "list"
    assert [b["id"] for b in page["data"]] == [ids[2], ids[1]]
    assert page["has_more"] is True
    assert (page["first_id"], page["last_id"]) == (ids[2], ids[1])
    _, rest = await client.call("GET", "/batches", limit=2, after=page["last_id"])
    assert [b["id"] for b in rest["data"]] == [ids[0]]
    assert rest["has_more"] is False
    await client.call("POST", f"/batches/{ids[1]}/cancel")
    _, cancelling = await client.call("GET", "/batches", status="cancelling")
    assert [b["id"] for b in cancelling["data"]] == [ids[1]]
    status, _ = await client.call("GET", "/batches", limit=101)
    assert status == 400
    async with client.session.get(f"{client.emulator.url}/_emulator/state") as response:
        state = await response.json()
    assert state["created"]["batches"] == 3
    assert state["live"]["batches"] == 3


async def test_at_most_two_batches_run_at_once(client: Client) -> None:
    file_id = await client.upload([chat_line("1", "hi")])
    first = await client.create(file_id)
    await client.create(file_id)
    status, refused = await client.call(
        "POST", "/batches", json_body={"input_file_id": file_id, "endpoint": CHAT, "completion_window": "24h"}
    )
    assert status == 429, refused
    assert refused["error"]["code"] == "LimitExceeded.BatchTasks"
    # A slot frees when a batch ends.
    await client.call("POST", f"/batches/{first['id']}/cancel")
    await client.advance(6)
    assert (await client.get(first["id"]))["status"] == "cancelled"
    await client.create(file_id)
    # The limit is the account's: /_emulator/config raises it.
    await client.control("/config", {"quotas": {"batches": 3}})
    await client.create(file_id)


async def test_a_scripted_share_of_lines_fails_deterministically(client: Client) -> None:
    lines = [chat_line(str(n), f"question {n}") for n in range(200)]
    file_id = await client.upload(lines)
    await client.control("/script", {"kind": "batch", "outcome": "PARTIAL:0.25", "count": 1})
    batch = await client.create(file_id)
    await client.advance(31)
    done = await client.get(batch["id"])
    assert done["status"] == "completed"
    failed = await client.content(done["error_file_id"])
    assert 20 < len(failed) < 80
    assert {line["error"]["code"] for line in failed} == {"internal_error"}
    answered = await client.content(done["output_file_id"])
    assert len(answered) + len(failed) == 200
    # The same input again fails the same lines (answers derive from the lines only).
    await client.control("/script", {"kind": "batch", "outcome": "PARTIAL:0.25", "count": 1})
    again = await client.create(file_id)
    await client.advance(31)
    rerun = await client.get(again["id"])
    assert [line["custom_id"] for line in await client.content(rerun["error_file_id"])] == [
        line["custom_id"] for line in failed
    ]


async def test_a_finished_batch_posts_to_its_callback(client: Client) -> None:
    from aiohttp import web

    received: list[dict[str, Any]] = []
    attempts = 0

    async def hook(request: web.Request) -> web.Response:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            return web.Response(status=503)  # the receiver hiccups once: the emulator tries again
        received.append(await request.json())
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/hook/{token}", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        file_id = await client.upload([chat_line("1", "hi")])
        url = f"http://127.0.0.1:{port}/hook/abc"
        batch = await client.create(file_id, metadata={"ds_batch_finish_callback": url})
        await client.advance(31)
        for _ in range(50):
            if received:
                break
            await asyncio.sleep(0.1)
        assert [(body["id"], body["status"]) for body in received] == [(batch["id"], "completed")]
        assert attempts == 2
    finally:
        await runner.cleanup()


async def test_a_batch_past_its_window_expires_with_what_it_answered(client: Client) -> None:
    file_id = await client.upload([chat_line(str(n), f"question {n}") for n in range(10)])
    await client.control("/script", {"kind": "batch", "outcome": "SLOW:172800", "count": 1})  # 48 h of work
    batch = await client.create(file_id)  # a 24 h window
    await client.advance(3600)
    assert (await client.get(batch["id"]))["status"] == "in_progress"

    await client.advance(24 * 3600)
    expired = await client.get(batch["id"])

    assert expired["status"] == "expired"
    assert expired["expired_at"] == batch["created_at"] + 24 * 3600
    answered = [line["custom_id"] for line in await client.content(expired["output_file_id"])]
    assert answered == ["0", "1", "2", "3"]  # half the window's worth of 48 h, rounded down
    missed = await client.content(expired["error_file_id"])
    assert [line["custom_id"] for line in missed] == [str(n) for n in range(4, 10)]
    assert {line["error"]["code"] for line in missed} == {"batch_expired"}
    assert expired["request_counts"] == {"total": 10, "completed": 4, "failed": 6}
