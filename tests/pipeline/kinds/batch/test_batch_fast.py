"""The batch hot paths' fast readings agree with `json` (or step aside for it), and a shard's collect reads the ids
its submit recorded instead of the input, falling back to the input when they are missing or not whole."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from harness import Pipeline, http_json

from bailian_flow.pipeline.kinds.batch.batch_fast import answer_fields, decode_sent, encode_sent, valid_line
from bailian_flow.pipeline.kinds.batch.batch_lines import read_ahead
from bailian_flow.pipeline.kinds.batch.batch_results import _answer_fields
from bailian_flow.validate import DatasetError, check_batch_line

CHAT = "/v1/chat/completions"
GOOD = b'{"custom_id":"a-1","method":"POST","url":"/v1/chat/completions","body":{"model":"qwen-plus","messages":[]}}'


def line(**fields: Any) -> bytes:
    request: dict[str, Any] = {"custom_id": "a-1", "method": "POST", "url": CHAT, "body": {"model": "qwen-plus"}}
    request.update(fields)
    return json.dumps(request, ensure_ascii=False).encode() + b"\n"


LINES = [
    GOOD,
    GOOD + b"\n",
    GOOD + b"\r\n",
    line(body={"model": "qwen-plus", "enable_thinking": True}),
    line(body={"model": "qwen-plus", "enable_thinking": False, "messages": [{"content": "中文 \u2028"}]}),
    line(custom_id="x" * 512),
    # Each of these breaks a rule, or is a line only json can judge: the fast reading must not accept it.
    line(custom_id="x" * 513),
    line(custom_id=""),
    line(custom_id=7),
    line(method="GET"),
    line(url="/v1/embeddings"),
    line(body=[1]),
    line(body=None),
    line(body={"model": ""}),
    line(body={"messages": []}),
    line(body={"model": "qwen-plus", "enable_thinking": None}),
    line(body={"model": "qwen-plus", "enable_thinking": 1}),
    GOOD[:-1] + b',"note":"\xff"}',  # not UTF-8 where msgspec does not look
    GOOD[:-1] + b',"n":NaN}',  # json takes NaN
    GOOD[:-1] + b',"n":' + b"7" * 5000 + b"}",  # json refuses over 4,300 digits
    GOOD[:-1] + b',"s":"\\ud800"}',  # a lone surrogate: json takes it
    b"\xef\xbb\xbf" + GOOD,
    GOOD[:-1] + b',"custom_id":"a-2"}',  # a repeated key: the last one counts in both
    b"[1]",
    b"{",
    GOOD + b"\x00",
]


@pytest.mark.parametrize("raw", LINES)
@pytest.mark.parametrize("override", [None, "qwen-max"])
def test_a_valid_line_is_read_as_the_full_check_reads_it_and_any_other_is_left_to_it(
    raw: bytes, override: str | None
) -> None:
    fast = valid_line(raw, endpoint=CHAT, model_override=override)
    try:
        full = check_batch_line(raw, object_name="in.jsonl", line=1, endpoint=CHAT, model_override=override)
    except DatasetError:
        assert fast is None
        return
    if fast is not None:
        assert (fast.custom_id, fast.model) == (full.custom_id, full.model)
        flag = full.request["body"].get("enable_thinking")
        assert fast.request == {"body": {} if flag is None else {"enable_thinking": flag}}


def test_the_common_line_takes_the_fast_reading() -> None:
    # Otherwise the corpus above would pass with a fast path that always steps aside.
    assert valid_line(GOOD, endpoint=CHAT, model_override=None) is not None
    assert valid_line(LINES[4], endpoint=CHAT, model_override="qwen-max") is not None


ANSWERS = [
    {"id": "x", "custom_id": "a-1", "response": {"status_code": 200, "body": {"usage": {"prompt_tokens": 5}}}},
    {"custom_id": "a-2", "response": {"body": {"usage": {"input_tokens": 3, "output_tokens": 4}}}, "error": None},
    {"custom_id": "a-3", "response": {"body": {"usage": {"prompt_tokens": 0, "input_tokens": 9}}}},
    {"custom_id": "a-4", "response": None, "error": {"code": "batch_expired", "message": "m"}},
    {"custom_id": "a-5", "error": "a string, not an object"},
    {"custom_id": "a-6", "response": {"body": None}},
    {"custom_id": "a-7", "response": {}},
    {"custom_id": 8},
    {"response": {"body": {"usage": {}}}},
]


@pytest.mark.parametrize("answer", ANSWERS)
def test_an_answer_is_read_as_json_reads_it(answer: dict[str, Any]) -> None:
    raw = json.dumps(answer).encode() + b"\n"
    assert (answer_fields(raw) or _answer_fields(json.loads(raw))) == _answer_fields(answer)


def test_sent_ids_are_taken_only_whole_and_of_the_same_version() -> None:
    sent = [(1, "a"), (3, "b\nwith a newline"), (4, "中")]
    data = encode_sent('"etag-1"', sent)

    assert decode_sent(data, etag='"etag-1"', lines=3) == {"a": 1, "b\nwith a newline": 3, "中": 4}
    assert decode_sent(data, etag='"etag-2"', lines=3) is None
    assert decode_sent(data, etag='"etag-1"', lines=4) is None
    assert decode_sent(encode_sent(None, [(1, "a"), (2, "a")]), etag=None, lines=2) is None
    assert decode_sent(b"{not json", etag=None, lines=0) is None


class Source:
    """An async chunk source that records how far it was read and whether it was closed."""

    def __init__(self, count: int, fail_at: int | None = None) -> None:
        self.count, self.fail_at = count, fail_at
        self.produced = 0
        self.closed = False

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            for number in range(self.count):
                await asyncio.sleep(0)
                if number == self.fail_at:
                    raise OSError(f"chunk {number} failed")
                self.produced += 1
                yield b"%d;" % number
        finally:
            self.closed = True


def test_reading_ahead_yields_every_chunk_in_order() -> None:
    async def main() -> list[bytes]:
        return [chunk async for chunk in read_ahead(Source(50).chunks())]

    assert asyncio.run(main()) == [b"%d;" % n for n in range(50)]


def test_leaving_a_read_ahead_early_stops_the_fetch_and_closes_the_source() -> None:
    source = Source(50)

    async def main() -> None:
        chunks = read_ahead(source.chunks())
        assert await anext(chunks) == b"0;"
        await chunks.aclose()

    asyncio.run(main())
    assert source.closed and source.produced <= 2


def test_a_failed_fetch_reaches_the_reader_in_its_place() -> None:
    async def main() -> list[bytes]:
        got = []
        with pytest.raises(OSError, match="chunk 3 failed"):
            async for chunk in read_ahead(Source(10, fail_at=3).chunks()):
                got.append(chunk)
        return got

    assert asyncio.run(main()) == [b"0;", b"1;", b"2;"]


KEY = "batches/team/questions.jsonl"


def held_run(pipeline: Pipeline, lines: int) -> tuple[str, str]:
    """A run whose one batch is submitted and held (an emulated hour); its sent-ids key."""
    pipeline.script("batch", "SLOW:3600", count=1)
    data = b"".join(
        json.dumps(
            {
                "custom_id": f"q-{n}",
                "method": "POST",
                "url": CHAT,
                "body": {"model": "qwen-plus", "messages": [{"role": "user", "content": f"question {n}"}]},
            }
        ).encode()
        + b"\n"
        for n in range(1, lines + 1)
    )
    run_id = pipeline.upload(KEY, data)
    state = pipeline.run(run_id)["run"]
    assert state["batch"]["shards"][0]["batch_id"], state
    return run_id, f"results/team/questions/{run_id}/_ids/bf-{run_id}-a{state['attempt']}-s0-g1.json"


def test_a_shard_s_collect_reads_the_ids_its_submit_recorded_and_the_merge_deletes_them(pipeline: Pipeline) -> None:
    run_id, ids_key = held_run(pipeline, 7)
    recorded = pipeline.get(ids_key)
    assert recorded is not None and [pair[1] for pair in json.loads(recorded)["lines"]] == [
        f"q-{n}" for n in range(1, 8)
    ]
    http_json(f"{pipeline.url}/_emulator/clock", "POST", {"advance": 7200})

    run = pipeline.pump(run_id)

    assert run["stage"] == "DONE", run
    got = pipeline.get(f"results/team/questions/{run_id}/output.jsonl") or b""
    assert [json.loads(answer)["custom_id"] for answer in got.splitlines()] == [f"q-{n}" for n in range(1, 8)]
    assert pipeline.object_count(f"results/team/questions/{run_id}/_ids/") == 0


def test_ids_that_are_not_whole_send_the_collect_back_to_the_input(pipeline: Pipeline) -> None:
    run_id, ids_key = held_run(pipeline, 7)
    recorded = json.loads(pipeline.get(ids_key) or b"{}")
    recorded["lines"] = recorded["lines"][:3]  # as if cut short: the index would miss four answers
    pipeline.put(ids_key, json.dumps(recorded).encode())
    http_json(f"{pipeline.url}/_emulator/clock", "POST", {"advance": 7200})

    run = pipeline.pump(run_id)

    assert run["stage"] == "DONE", run
    got = pipeline.get(f"results/team/questions/{run_id}/output.jsonl") or b""
    assert [json.loads(answer)["custom_id"] for answer in got.splitlines()] == [f"q-{n}" for n in range(1, 8)]
    summary = json.loads(pipeline.get(f"results/team/questions/{run_id}/summary.json") or b"{}")
    assert (summary["completed"], summary["failed"]) == (7, 0)
