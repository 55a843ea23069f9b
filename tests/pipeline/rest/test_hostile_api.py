"""Hostile requests at the REST API, sent as FC's HTTP trigger sends them, against a bucket with a DONE run.

Every request is checked for its status, a JSON error body with a code (or the existing run, for an alias), no
token in the answer, no traceback, and nothing created: the emulator's `created` counts, the run list and the
objects under the run, index and active prefixes are what they were before.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from harness import API_TOKEN, SFT_SAMPLE, Pipeline

KEY = "datasets/api/train.jsonl"
WRONG_TOKEN = "wrong-token-7b1e"
DONE = "{done}"  # replaced by the DONE run's id
ABSENT = "r0000000000000000"
MB = 1024 * 1024


@dataclass(frozen=True)
class Hostile:
    method: str
    path: str
    status: int
    code: str | None  # None: a 200 answer naming the DONE run (an alias of its object)
    body: str | dict[str, Any] | None = None
    token: str | None = API_TOKEN
    authorization: str | None = None  # the raw header, instead of `Bearer <token>`
    base64: bool = False
    query: dict[str, str] = field(default_factory=dict)


def _auth() -> list[Hostile]:
    start = {"oss_key": KEY}
    cases = [
        Hostile("GET", "/runs", 401, "Unauthorized", token=None),
        Hostile("GET", "/runs", 401, "Unauthorized", token=WRONG_TOKEN),
        Hostile("GET", "/runs", 401, "Unauthorized", token=""),
        Hostile("GET", "/runs", 401, "Unauthorized", token=API_TOKEN + "x"),
        Hostile("GET", "/runs", 401, "Unauthorized", token=API_TOKEN[:-1]),
        Hostile("GET", "/runs", 401, "Unauthorized", authorization=f"bearer {API_TOKEN}x"),
        Hostile("GET", "/runs", 401, "Unauthorized", authorization=f"Basic {API_TOKEN}"),
        Hostile("GET", "/runs", 401, "Unauthorized", authorization=API_TOKEN),
        Hostile("GET", "/runs", 401, "Unauthorized", authorization="Bearer " + "t" * 100_000),
        Hostile("GET", "/runs", 401, "Unauthorized", authorization="Bearer tökén-ünïcode"),
        Hostile("POST", "/runs", 401, "Unauthorized", body=start, token=None),
        Hostile("POST", "/runs", 401, "Unauthorized", body=start, token=WRONG_TOKEN),
        Hostile("GET", f"/runs/{DONE}", 401, "Unauthorized", token=WRONG_TOKEN),
        Hostile("POST", f"/runs/{DONE}/cancel", 401, "Unauthorized", token=None),
        Hostile("POST", f"/runs/{DONE}/retry", 401, "Unauthorized", token=WRONG_TOKEN),
        Hostile("POST", "/callbacks/fine-tune", 401, "Unauthorized", body={"run_id": DONE}, token=None),
    ]
    return cases


def _json() -> list[Hostile]:
    invalid = [
        "not json",
        "[1, 2]",
        '"a string"',
        "null",
        '{"oss_key": ',
        "[" * 60_000,
        '{"a":' * 10_000 + "1" + "}" * 10_000,
        '{"oss_key": "' + KEY + '", "settings": ' + "[" * 40 + "]" * 40 + "}",
        "\ufeff{",
        '{"oss_key": ' + "9" * 5000 + "}",
    ]
    cases = [Hostile("POST", "/runs", 400, "InvalidJSON", body=text) for text in invalid]
    cases += [
        Hostile("POST", "/runs", 400, "InvalidJSON", body=base64.b64encode(b"\xff\xfe{}").decode(), base64=True),
        Hostile("POST", "/runs", 400, "InvalidEvent", body="%%% not base64 %%%", base64=True),
        Hostile("POST", "/runs", 400, "InvalidParameter", body='{"oss_key": NaN}'),
        Hostile("POST", "/runs", 400, "InvalidParameter", body={"oss_key": KEY, "sneaky": 1}),
        Hostile("POST", "/runs", 400, "InvalidParameter", body={"oss_key": KEY, "file_id": "file-x"}),
        Hostile("POST", "/runs", 400, "InvalidParameter", body={"oss_key": KEY, "settings": "fast"}),
        Hostile("POST", "/runs", 400, "InvalidSettings", body={"oss_key": KEY, "settings": {"modle": "x"}}),
        Hostile("POST", f"/runs/{DONE}/retry", 400, "InvalidParameter", body={"settings": ["x"]}),
        Hostile("POST", f"/runs/{DONE}/cancel", 400, "InvalidJSON", body="[" * 50_000),
        Hostile("POST", "/callbacks/fine-tune", 400, "InvalidJSON", body="[]"),
    ]
    return cases


def _ids() -> list[Hostile]:
    bad_ids = ["r" * 65, "_scan-cursor", "-r0123", "a.b", "中文", "a%00b", "%2e%2e", "r 1"]
    cases = [Hostile("GET", f"/runs/{run_id}", 400, "InvalidRunId") for run_id in bad_ids]
    cases += [
        Hostile("POST", "/runs/_scan-cursor/cancel", 400, "InvalidRunId"),
        Hostile("POST", f"/runs/{'x' * 65}/retry", 400, "InvalidRunId"),
        Hostile("GET", f"/runs/{'r' * 5000}", 414, "URITooLong"),
        Hostile("GET", f"/runs/{ABSENT}", 404, "NotFound"),
        Hostile("POST", f"/runs/{ABSENT}/cancel", 404, "NotFound"),
        Hostile("POST", f"/runs/{ABSENT}/retry", 404, "NotFound"),
        Hostile("POST", f"/runs/{ABSENT}/teardown", 404, "NotFound"),
        Hostile("POST", "/runs/../teardown", 400, "InvalidRunId"),
        Hostile("GET", "/runs/../active", 404, "NotFound"),
        Hostile("GET", "/runs//", 400, "InvalidRunId"),
    ]
    for run_id in ["../active", "", "r" * 65, "_scan-cursor", "r" * 5000, 5, None, ["r1"]]:
        cases.append(Hostile("POST", "/callbacks/fine-tune", 400, "InvalidRunId", body={"run_id": run_id}))
    cases += [
        Hostile("POST", "/callbacks/fine-tune", 404, "NotFound", body={"run_id": ABSENT}),
        Hostile("POST", "/callbacks/fine-tune", 400, "InvalidParameter", body={}),
        Hostile("POST", "/callbacks/fine tune", 400, "InvalidParameter", body={"run_id": DONE}),
        Hostile("POST", f"/callbacks/{'k' * 200}", 400, "InvalidParameter", body={"run_id": DONE}),
        Hostile("POST", "/callbacks/..", 400, "InvalidParameter", body={"run_id": DONE}),
        Hostile("POST", "/runs", 400, "InvalidParameter", body={"file_id": "../file"}),
        Hostile("POST", "/runs", 404, "NotFound", body={"file_id": "file-ft-absent"}),
        Hostile("POST", "/runs", 400, "InvalidSettings", body={"import": "weights/"}),
        Hostile("POST", "/runs", 400, "InvalidSettings", body={"import": {}}),
        Hostile("POST", "/runs", 400, "InvalidSettings", body={"import": {"object_key": "w" * 2000 + "/"}}),
        Hostile("POST", "/runs", 400, "InvalidParameter", body={"import": {"object_key": "w/"}, "settings": [1]}),
        Hostile("POST", "/runs", 400, "InvalidParameter", body={"import": {"object_key": "w/"}, "oss_key": KEY}),
    ]
    return cases


def _keys() -> list[Hostile]:
    aliases = ["datasets/api/../api/train.jsonl", "datasets/./api/train.jsonl", "datasets//api/train.jsonl", "/" + KEY]
    cases = [Hostile("POST", "/runs", 200, None, body={"oss_key": alias}) for alias in aliases]
    outside = [
        "runs/_scan-cursor.json",
        f"runs/{DONE}/00000000.json",
        "index/0000000000000-r0",
        f"active/{DONE}",
        f"datasets/../runs/{DONE}/00000000.json",
        "datasets/../../etc/passwd",
        "../datasets/api/train.jsonl",
        "datasets/",
        "datasets",
        "DATASETS/api/train.jsonl",
        "datasets\\..\\runs\\x.json",
        "datasets/api/tr\x00ain.jsonl",
        "datasets/api/\ntrain.jsonl",
        "datasets/" + "a" * 1020,
        "datasets/" + "数" * 340,
        "",
    ]
    cases += [Hostile("POST", "/runs", 400, "InvalidParameter", body={"oss_key": key}) for key in outside]
    cases += [Hostile("POST", "/runs", 400, "InvalidParameter", body={"oss_key": key}) for key in (5, None, [KEY])]
    cases += [
        Hostile("POST", "/runs", 404, "NotFound", body={"oss_key": "datasets/api/absent.jsonl"}),
        Hostile(
            "POST",
            "/runs",
            400,
            "InvalidParameter",
            body={"oss_key": KEY, "settings": {"validation_key": "datasets/a/../../runs/x"}},
        ),
        Hostile(
            "POST", "/runs", 400, "InvalidParameter", body={"oss_key": KEY, "settings": {"validation_key": "runs/x"}}
        ),
    ]
    return cases


def _sizes() -> list[Hostile]:
    huge_settings = {"oss_key": KEY, "settings": {"hyper_parameters": {"n": "x" * (10 * MB)}}}
    return [
        Hostile("POST", "/runs", 413, "PayloadTooLarge", body={"oss_key": "datasets/" + "k" * (10 * MB)}),
        Hostile("POST", "/runs", 413, "PayloadTooLarge", body=huge_settings),
        Hostile("POST", "/runs", 413, "PayloadTooLarge", body={"oss_key": KEY, "pad": "p" * 70_000}),
        Hostile("POST", "/runs", 413, "PayloadTooLarge", body="[" * 100_000),
        Hostile("POST", "/runs", 413, "PayloadTooLarge", body=base64.b64encode(b" " * 80_000).decode(), base64=True),
        Hostile(
            "POST",
            "/runs",
            400,
            "InvalidSettings",
            body={"oss_key": KEY, "settings": {"hyper_parameters": {"n": "x" * 5000}}},
        ),
        Hostile("POST", "/runs", 400, "InvalidSettings", body={"oss_key": KEY, "settings": {"model": "m" * 200}}),
        Hostile(
            "POST",
            "/runs",
            400,
            "InvalidSettings",
            body={"oss_key": KEY, "settings": {"on_success": {"deploy_spec": "s" * 1000}}},
        ),
        Hostile("GET", "/runs", 400, "InvalidParameter", query={"limit": "9" * 5000}),
        Hostile("GET", "/runs", 400, "InvalidParameter", query={"limit": "-1"}),
        Hostile("GET", "/runs", 400, "InvalidParameter", query={"after": "a" * 300}),
        Hostile("GET", "/runs", 400, "InvalidParameter", query={"stage": "s" * 300}),
        Hostile("GET", "/runs", 400, "InvalidParameter", query={"kind": "k" * 300}),
        Hostile("GET", "/" + "p" * 3000, 414, "URITooLong"),
        Hostile("GET", "/account", 401, "Unauthorized", token=None),
        Hostile("GET", "/account", 401, "Unauthorized", token=WRONG_TOKEN),
    ]


def _methods() -> list[Hostile]:
    return [
        Hostile("DELETE", "/runs", 405, "MethodNotAllowed"),
        Hostile("PUT", "/runs", 405, "MethodNotAllowed", body={"oss_key": KEY}),
        Hostile("PATCH", f"/runs/{DONE}", 405, "MethodNotAllowed"),
        Hostile("DELETE", f"/runs/{DONE}", 405, "MethodNotAllowed"),
        Hostile("POST", f"/runs/{DONE}", 405, "MethodNotAllowed", body={}),
        Hostile("GET", f"/runs/{DONE}/cancel", 405, "MethodNotAllowed"),
        Hostile("GET", f"/runs/{DONE}/retry", 405, "MethodNotAllowed"),
        Hostile("GET", f"/runs/{DONE}/teardown", 405, "MethodNotAllowed"),
        Hostile("GET", "/callbacks/fine-tune", 405, "MethodNotAllowed"),
        Hostile("POST", "/health", 405, "MethodNotAllowed", token=None),
        Hostile("OPTIONS", "/runs", 405, "MethodNotAllowed"),
        Hostile("FOO", "/runs", 405, "MethodNotAllowed"),
        Hostile("GET", "/nowhere", 404, "NotFound"),
        Hostile("POST", f"/runs/{DONE}/teardown-everything", 404, "NotFound"),
        Hostile("GET", "runs", 404, "NotFound"),
        Hostile("POST", "/account", 405, "MethodNotAllowed", body={}),
        Hostile("DELETE", "/account", 405, "MethodNotAllowed"),
        Hostile("GET", "/account/x", 404, "NotFound"),
    ]


CATEGORIES = {
    "auth": _auth(),
    "json": _json(),
    "ids": _ids(),
    "keys": _keys(),
    "sizes": _sizes(),
    "methods": _methods(),
}


def test_the_suite_sends_at_least_seventy_requests() -> None:
    assert sum(len(cases) for cases in CATEGORIES.values()) >= 70


def _fill(value: Any, done_id: str) -> Any:
    if isinstance(value, str):
        return value.replace(DONE, done_id)
    if isinstance(value, dict):
        return {key: _fill(item, done_id) for key, item in value.items()}
    return value


def _send(pipeline: Pipeline, case: Hostile, done_id: str) -> tuple[int, dict[str, str], str]:
    body = _fill(case.body, done_id)
    text = "" if body is None else body if isinstance(body, str) else json.dumps(body)
    headers = {"content-type": "application/json"}
    if case.authorization is not None:
        headers["authorization"] = case.authorization
    elif case.token is not None:
        headers["authorization"] = f"Bearer {case.token}"
    path = _fill(case.path, done_id)
    event = {
        "version": "v1",
        "rawPath": path,
        "body": text,
        "isBase64Encoded": case.base64,
        "headers": headers,
        "queryParameters": case.query,
        "requestContext": {"http": {"method": case.method, "path": path}, "requestId": uuid.uuid4().hex},
    }
    response = pipeline.invoke("webhook", event)
    return int(response["statusCode"]), dict(response["headers"]), str(response["body"])


def _world(pipeline: Pipeline) -> dict[str, Any]:
    return {
        "created": pipeline.created(),
        "runs": [(run["run_id"], run["stage"], run["seq"]) for run in pipeline.runs()],
        **{prefix: pipeline.object_count(prefix) for prefix in ("runs/", "index/", "active/", "datasets/")},
    }


@pytest.fixture
def done_run(pipeline: Pipeline) -> str:
    run_id = pipeline.upload(KEY, SFT_SAMPLE)
    assert pipeline.pump(run_id)["stage"] == "DONE"
    pipeline.put("runs/_scan-cursor.json", b"{}")
    return run_id


@pytest.mark.parametrize("category", sorted(CATEGORIES))
def test_hostile_requests_get_a_json_error_and_change_nothing(pipeline: Pipeline, done_run: str, category: str) -> None:
    before = _world(pipeline)
    failures = []
    for case in CATEGORIES[category]:
        status, headers, text = _send(pipeline, case, done_run)
        body = json.loads(text)
        where = f"{case.method} {case.path[:60]} {str(case.body)[:60]!r}"
        if status != case.status:
            failures.append(f"{where}: {status} (expected {case.status}) {text[:200]}")
            continue
        assert headers["Content-Type"] == "application/json", where
        if case.code is None:
            assert (body["run"]["run_id"], body["created"]) == (done_run, False), where
        else:
            assert body["error"]["code"] == case.code, f"{where}: {body}"
            assert body["error"]["message"], where
        assert API_TOKEN not in text and WRONG_TOKEN not in text, where
        assert "Traceback" not in text and len(text) < 2000, where
        if status == 405:
            assert headers["Allow"], where
    assert not failures, "\n".join(failures)
    assert _world(pipeline) == before, "a hostile request created or changed something"


@pytest.mark.parametrize(
    "hint",
    [b"not json", b"[1, 2]", b'{"quotas": {"files": {"used": "many"}}, "runs": {"../x": {"kind": "batch"}}}', b"{}"],
)
def test_a_damaged_timer_hint_shows_no_quota_use_never_an_error(pipeline: Pipeline, hint: bytes) -> None:
    pipeline.put("runs/_timer-state.json", hint)
    status, body = pipeline.api("GET", "/account")
    assert status == 200, body
    assert body["quotas"]["files"]["used"] is None and body["quotas"]["files"]["limit"] == 100
    assert body["line"] == [] and body["pending_requests"] == {}


# --- settings for a run that exists, and keys the function may not read -------------------------------------


def test_settings_for_an_existing_run_are_a_409_that_says_how_to_retry(pipeline: Pipeline) -> None:
    pipeline.put(KEY, SFT_SAMPLE)
    settings = {"on_success": {"capacity": 2}}
    status, body = pipeline.api("POST", "/runs", {"oss_key": KEY, "settings": settings})
    assert status == 202, body
    run_id = body["run"]["run_id"]

    # The same request again is the same request: no conflict.
    assert pipeline.api("POST", "/runs", {"oss_key": KEY, "settings": settings})[0] == 200
    assert pipeline.api("POST", "/runs", {"oss_key": KEY})[0] == 200
    before = _world(pipeline)

    status, body = pipeline.api("POST", "/runs", {"oss_key": KEY, "settings": {"on_success": {"capacity": 3}}})

    assert status == 409, body
    assert body["error"]["code"] == "RunExists"
    assert f"POST /runs/{run_id}/retry" in body["error"]["message"]
    assert _world(pipeline) == before
    assert pipeline.run(run_id)["run"]["settings"]["on_success"]["capacity"] == 2


def _deny(pipeline: Pipeline, prefix: str, method: str = "*") -> None:
    pipeline.fault(method=method, path=f"/flow-test/{prefix}*", status=403, code="AccessDenied", message="denied")


def test_a_started_key_the_role_may_not_read_fails_its_run_naming_the_field(pipeline: Pipeline) -> None:
    pipeline.put("datasets/locked/train.jsonl", SFT_SAMPLE)
    _deny(pipeline, "datasets/locked/")

    status, body = pipeline.api("POST", "/runs", {"oss_key": "datasets/locked/train.jsonl"})

    assert status == 202, body
    run = body["run"]
    assert run["stage"] == "FAILED"
    assert (run["error"]["code"], run["error"]["field"]) == ("AccessDenied", "oss_key")
    assert run["error"]["object"] == "datasets/locked/train.jsonl"
    again = pipeline.api("POST", "/runs", {"oss_key": "datasets/locked/train.jsonl"})
    assert (again[0], again[1]["run"]["run_id"]) == (200, run["run_id"]), "one run, however often it is asked"
    assert pipeline.created()["files"] == 0


def test_an_uploaded_key_the_role_may_not_read_fails_its_run_instead_of_raising(pipeline: Pipeline) -> None:
    pipeline.put("datasets/locked/train.jsonl", SFT_SAMPLE)
    [record] = pipeline.new_records()
    _deny(pipeline, "datasets/locked/", method="HEAD")

    [result] = pipeline.deliver(record)

    [run] = result["runs"]
    assert run["stage"] == "FAILED"
    assert (run["error"]["code"], run["error"]["field"]) == ("AccessDenied", "key")


def test_a_validation_file_the_role_may_not_read_fails_the_run_naming_the_setting(pipeline: Pipeline) -> None:
    pipeline.put("datasets/locked/valid.jsonl", SFT_SAMPLE)
    pipeline.put(KEY + ".flow.yaml", b"validation_key: datasets/locked/valid.jsonl\n")
    _deny(pipeline, "datasets/locked/")

    run_id = pipeline.upload(KEY, SFT_SAMPLE)
    run = pipeline.pump(run_id)

    assert run["stage"] == "FAILED", run
    assert (run["error"]["code"], run["error"]["field"]) == ("AccessDenied", "validation_key")
    assert run["error"]["object"] == "datasets/locked/valid.jsonl"
    assert pipeline.created()["fine_tunes"] == 0


def test_a_validation_key_outside_the_datasets_fails_the_run_naming_it(pipeline: Pipeline) -> None:
    pipeline.put("runs/_scan-cursor.json", b"{}")
    pipeline.put(KEY + ".flow.yaml", b"validation_key: datasets/../runs/_scan-cursor.json\n")

    run_id = pipeline.upload(KEY, SFT_SAMPLE)
    run = pipeline.run(run_id)["run"]

    assert run["stage"] == "FAILED", run
    assert (run["error"]["code"], run["error"]["field"]) == ("InvalidSettings", "validation_key")
    assert run["error"]["object"] == KEY + ".flow.yaml"
    assert pipeline.created()["files"] == 0


def test_sidecar_aliases_and_oversize_sidecars_fail_the_run_naming_the_file(pipeline: Pipeline) -> None:
    bomb = b"a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nhyper_parameters: {c: *b}\n"
    pipeline.put(KEY + ".flow.yaml", bomb)

    run = pipeline.run(pipeline.upload(KEY, SFT_SAMPLE))["run"]

    assert run["stage"] == "FAILED"
    assert "aliases" in run["error"]["reason"] and run["error"]["object"] == KEY + ".flow.yaml"

    other = "datasets/api/other.jsonl"
    pipeline.put(other + ".flow.yaml", b"model: qwen3-8b\n" + b"# padding\n" * 10_000)
    run = pipeline.run(pipeline.upload(other, SFT_SAMPLE))["run"]
    assert run["stage"] == "FAILED" and "larger than" in run["error"]["reason"]


@pytest.mark.parametrize("key", ["datasets/a/../runs.jsonl", "datasets/./a.jsonl", "datasets//a.jsonl"])
def test_an_uploaded_key_with_dot_or_empty_segments_fails_naming_it(pipeline: Pipeline, key: str) -> None:
    pipeline.put(key, SFT_SAMPLE)
    [record] = pipeline.new_records()
    record["oss"]["object"]["key"] = key  # as OSS names it, whatever the HTTP path resolved to

    [result] = pipeline.deliver(record)

    [run] = result["runs"]
    assert run["stage"] == "FAILED" and run["error"]["code"] == "InvalidEvent"
    assert key in run["error"]["reason"]
    assert pipeline.created()["files"] == 0
