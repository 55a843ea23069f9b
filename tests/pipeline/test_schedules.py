"""Randomized schedules: deliveries, redeliveries, drops, ticks, cancels, retries, overwrites and faults in random
order and timing, through the real functions; then everything settles and the promises are checked. Fine-tune
datasets, import markers and batch inference inputs (several shards each, more batches than the account runs at
once) take turns. Faults include refused creates (a shard refused fails its run), refused or failing undos (an end
of life that must be tried again), lagging lists, and a function killed mid-act (its commit refused). Each schedule
ends with the timer's audit and an orphan check: no terminal run owns a live resource it does not keep on purpose,
and no resource is owned by no run.

`BAILIAN_FLOW_SCHEDULES` sets how many schedules run (a few by default, hundreds on demand) and
`BAILIAN_FLOW_SEED` the first seed; a failing schedule names its seed, and `BAILIAN_FLOW_SEED=<seed>
BAILIAN_FLOW_SCHEDULES=1` replays it.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import pytest
from harness import SFT_SAMPLE, Pipeline, http_json

from bailian_flow.pipeline.protocol import reconcile

SCHEDULES = int(os.environ.get("BAILIAN_FLOW_SCHEDULES", "30"))
FIRST_SEED = int(os.environ.get("BAILIAN_FLOW_SEED", str(random.SystemRandom().randrange(10**6))))
STEPS = 20
BATCH_KEY = "batches/schedules/c.jsonl"
IMPORT_KEY = "imports/schedules/m.import.yaml"
KEYS = ("datasets/schedules/a.jsonl", "datasets/schedules/b.jsonl", BATCH_KEY, IMPORT_KEY)
LINES = SFT_SAMPLE.splitlines(keepends=True)
REQUESTS = [
    json.dumps(
        {
            "custom_id": f"q{n}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {"model": "qwen-plus", "messages": [{"role": "user", "content": f"question {n}"}]},
        }
    ).encode()
    + b"\n"
    for n in range(12)
]
# Shards of at most this many lines: a batch input of up to 12 makes up to 3 shards, more than the 2 batches the
# account runs at once.
SHARD_LINES = "4"
CREATES = (
    "/api/v1/files",
    "/api/v1/fine-tunes",
    "/api/v1/deployments",
    "/compatible-mode/v1/files",
    "/compatible-mode/v1/batches",
    "/api/v1/custom_models/import",
)
# What an end of life calls to undo a run's resources: a refusal for now (an import still running) or a failure
# keeps the run ending until a later try lands.
UNDOES = (
    ("DELETE", "/api/v1/files/*"),
    ("POST", "/api/v1/fine-tunes/*/cancel"),
    ("DELETE", "/api/v1/deployments/*"),
    ("DELETE", "/api/v1/custom_models/import/*"),
    ("POST", "/compatible-mode/v1/batches/*/cancel"),
    ("DELETE", "/compatible-mode/v1/files/*"),
)
ENDED = ("DONE", "FAILED", "CANCELED")
# A batch that runs (or may still run) its lines; `cancelling` and `cancelled` ones were stopped.
STOPPED = ("cancelling", "cancelled")


@dataclass
class Schedule:
    pipeline: Pipeline
    monkeypatch: pytest.MonkeyPatch
    rng: random.Random
    pending: list[dict[str, Any]] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    lagging: bool = False
    # The custom ids of each version of the batch input (by ETag), for the completeness check.
    versions: dict[str, list[str]] = field(default_factory=dict)

    def quietly(self, work: Any, *args: Any) -> None:
        """Run one invocation; one that raises is what FC would retry (its event stays pending)."""
        try:
            work(*args)
        except Exception as exc:  # any escape is FC's to retry, the schedule goes on
            self.log.append(f"  raised {type(exc).__name__}")

    def collect(self) -> None:
        self.pending.extend(self.pipeline.new_records())

    def step(self) -> None:
        self.collect()
        rng, pipeline = self.rng, self.pipeline
        action = rng.choices(
            ("upload", "deliver", "drop", "tick", "burst", "cancel", "retry", "fault", "lease", "lag", "undo", "kill"),
            weights=(2, 8, 1, 3, 3, 1, 1, 2, 1, 1, 1, 1),
        )[0]
        self.log.append(action)
        if action == "upload":
            key = rng.choice(KEYS)
            # A different version each time: an overwrite of a key mid-run is one of the interleavings.
            if key == BATCH_KEY:
                self.put_requests(rng.sample(REQUESTS, rng.randint(3, len(REQUESTS))))
            elif key == IMPORT_KEY:
                self.quietly(pipeline.put, key, import_marker(rng.randint(1, 3)))
            else:
                body = b"".join(rng.sample(LINES, rng.randint(10, len(LINES))))
                self.quietly(pipeline.put, key, body)
        elif action in ("deliver", "drop") and self.pending:
            record = self.pending.pop(rng.randrange(len(self.pending)))
            if action == "deliver":
                self.quietly(pipeline.deliver, record, rng.choice((1, 1, 2, 3)))
                if rng.random() < 0.3:
                    self.pending.append(record)  # delivered again later (at least once)
        elif action == "tick":
            self.quietly(pipeline.tick)
        elif action == "burst":
            # Events and a tick at the same time, in any order the threads happen to take.
            chosen = [self.pending.pop(rng.randrange(len(self.pending))) for _ in range(min(2, len(self.pending)))]
            threads = [threading.Thread(target=self.quietly, args=(pipeline.deliver, record)) for record in chosen]
            threads.append(threading.Thread(target=self.quietly, args=(pipeline.tick,)))
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        elif action in ("cancel", "retry"):
            runs = pipeline.runs()
            wanted = [run for run in runs if (run["stage"] == "FAILED") == (action == "retry")]
            wanted = [run for run in wanted if action == "retry" or run["stage"] not in ENDED]
            if wanted:
                run_id = rng.choice(wanted)["run_id"]
                self.quietly(pipeline.api, "POST", f"/runs/{run_id}/{action}")
        elif action == "fault":
            path = rng.choice(CREATES)
            rule = rng.choice(
                (
                    {"drop": "after"},
                    {"drop": "before"},
                    {"status": 503},
                    {"latency": 0.4},
                    # A refusal that is a verdict: the run fails (a batch shard refused fails its whole run).
                    {"status": 403, "code": "AccessDenied"},
                )
            )
            pipeline.fault(method="POST", path=path, times=1, **rule)
            self.log.append(f"  {path} {rule}")
        elif action == "undo":
            method, path = rng.choice(UNDOES)
            # Refused for now (no retry, so cheap in time); the end of life must try again later.
            rule = {"status": 400, "code": "OperationDenied"}
            pipeline.fault(method=method, path=path, times=rng.randint(1, 3), **rule)
            self.log.append(f"  {method} {path} {rule}")
        elif action == "kill":
            # The function dies between two requests: its next commit never reaches the bucket (whatever it just
            # did on Bailian stays unrecorded until a re-claim, a sweep or the audit finds it).
            pipeline.fault(method="PUT", path="/flow-test/runs/r*", status=403, code="AccessDenied", times=1)
        elif action == "lease" and not self.lagging:
            # A lease that runs out at once: re-claims race live actors (the log's fence must hold).
            self.monkeypatch.setenv("BAILIAN_FLOW_LEASE_SECONDS", rng.choice(("0", "660")))
        elif action == "lag":
            # Lists lag creates from now on. The lease outlasts the lag (as in production: 660 s against seconds),
            # which is what lets a re-claim find what an ambiguous create made.
            self.lagging = True
            self.monkeypatch.setenv("BAILIAN_FLOW_LEASE_SECONDS", "660")
            http_json(f"{pipeline.url}/_emulator/config", "POST", {"list_lag_seconds": 60})

    def put_requests(self, lines: list[bytes]) -> None:
        self.pipeline.put(BATCH_KEY, b"".join(lines))
        self.versions[self.pipeline.head_etag(BATCH_KEY)] = [json.loads(line)["custom_id"] for line in lines]

    def settle(self, timeout: float = 90.0) -> list[dict[str, Any]]:
        """No more faults, every intent re-claimable, every lost event re-driven: run until nothing is open."""
        pipeline = self.pipeline
        pipeline.clear_faults()
        self.monkeypatch.setenv("BAILIAN_FLOW_LEASE_SECONDS", "0")
        self.monkeypatch.setenv("BAILIAN_FLOW_REDRIVE_AFTER", "0")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            # Past any list lag before a zero lease lets anyone re-claim.
            http_json(f"{pipeline.url}/_emulator/clock", "POST", {"advance": 120})
            self.collect()
            while self.pending:
                self.quietly(pipeline.deliver, self.pending.pop(0))
            report = pipeline.tick()
            runs = [pipeline.run(run["run_id"])["run"] for run in pipeline.runs()]
            if report["active"] == 0 and all(run["stage"] in ENDED for run in runs):
                return runs
        raise AssertionError("runs left open: " + ", ".join(f"{r['run_id']} {r['stage']}" for r in pipeline.runs()))


def import_marker(capacity: int) -> bytes:
    return (
        b"import: {object_key: models/schedules/, model_name: qwen3-8b, weight_type: lora}\n"
        + f"settings: {{on_success: {{capacity: {capacity}}}}}\n".encode()
    )


def audit_everything(schedule: Schedule) -> None:
    """The timer's backstop over every family (one slice a tick), with nothing else left to do."""
    schedule.monkeypatch.setenv("BAILIAN_FLOW_AUDIT_EVERY", "0")
    for _ in range(8):
        schedule.pipeline.tick()


def _kept(run: dict[str, Any]) -> set[str]:
    """What a terminal run keeps on purpose ("kind:id"): a DONE run its deployment, job and imported model, a
    FAILED run its succeeded fine-tune."""
    kept = set()
    if run["stage"] == "DONE":
        kept |= {f"deployment:{run['deployed_model']}", f"job:{run['job_id']}", f"import:{run['import_job_id']}"}
    if run["stage"] == "FAILED" and run.get("finetuned_output"):
        kept.add(f"job:{run['job_id']}")
    return kept


def check_orphans(pipeline: Pipeline, runs: list[dict[str, Any]]) -> None:
    """No terminal run owns a live resource it does not keep; no resource named by the pipeline is owned by no
    run (a live fine-tune, import, file, running batch or shard file)."""
    by_id = {run["run_id"]: pipeline.run(run["run_id"])["run"] for run in runs}
    for run in by_id.values():
        assert set(run["owns"]) <= _kept(run), f"terminal run {run['run_id']} still owns {run['owns']}"
    # Each resource with the run it belongs to, found by what the service echoes (contract C2, C3, C18): a job by the
    # files it trains on (its name only where the service kept it), a file by its name (or listed description).
    live: list[tuple[str, str, str | None]] = []
    live += [
        (f"job:{job['job_id']}", str(job.get("job_name")), _job_owner(job, by_id))
        for job in pipeline.bailian("GET", "/api/v1/fine-tunes?page_size=100")["output"]["jobs"]
        if job["status"] not in ("CANCELED", "CANCELING", "FAILED")
    ]
    live += [
        (f"import:{job['job_id']}", str(job.get("display_name")), _owner(job.get("display_name"), by_id))
        for job in pipeline.bailian("GET", "/api/v1/custom_models/import?page_size=100")["output"]["list"]
    ]
    live += [
        (
            f"file:{item['file_id']}",
            str(item.get("name")),
            _owner(item.get("name"), by_id) or _owner(item.get("description"), by_id),
        )
        for item in pipeline.bailian("GET", "/api/v1/files?page_size=100")["data"]["files"]
    ]
    # A deployment by its suffix: a hash of one run and attempt.
    live += [
        (
            f"deployment:{item['deployed_model']}",
            item["deployed_model"],
            next(iter(_deployment_owners(item["deployed_model"], by_id)), None),
        )
        for item in pipeline.bailian("GET", "/api/v1/deployments?page_size=100")["output"]["deployments"]
        if item["status"] != "DELETING"
    ]
    batches = _listed(pipeline, "batches")
    tags = {batch["id"]: str((batch.get("metadata") or {}).get("ds_name", "")).split(" ")[-1] for batch in batches}
    live += [
        (f"batch:{batch['id']}", tags[batch["id"]], _owner(tags[batch["id"]], by_id))
        for batch in batches
        if batch["status"] in ("validating", "in_progress", "finalizing")
    ]
    # A batch's answer files are untagged: their batch names their run.
    answers = {
        file_id: tags[batch["id"]]
        for batch in batches
        for file_id in (batch.get("output_file_id"), batch.get("error_file_id"))
        if file_id
    }
    for item in _listed(pipeline, "files"):
        name = answers.get(item["id"], item["filename"])
        live.append((f"batch-file:{item['id']}", name, _owner(name, by_id)))
    for resource, name, owner in live:
        assert owner is not None, f"{resource} ({name}) belongs to no run"
        run = by_id[owner]
        if run["stage"] in ENDED:
            assert resource in _kept(run), f"{run['stage']} run {owner} left {resource} ({name}) live"


def _owner(name: str | None, runs: dict[str, dict[str, Any]]) -> str | None:
    for run_id in runs:
        if name and (name.startswith(f"bf-{run_id}-") or f"run={run_id} " in name):
            return run_id
    return None


def _deployment_owners(name: str, runs: dict[str, dict[str, Any]]) -> list[str]:
    """The runs whose suffix (one per attempt) the deployed model ends with: one, or the promise is broken."""
    return [
        run_id
        for run_id, run in runs.items()
        if any(name.endswith(f"-{reconcile.deploy_suffix(run_id, n)}") for n in range(1, run["attempt"] + 1))
    ]


def _job_owner(job: dict[str, Any], runs: dict[str, dict[str, Any]]) -> str | None:
    """The run a fine-tune trains for: by the files it trains on (each attempt uploads its own), or by the name the
    service kept (contract C2, C3)."""
    for run_id, run in runs.items():
        files = {run.get("file_id"), *run.get("earlier_file_ids", [])} - {None}
        if set(job.get("training_file_ids") or []) & files:
            return run_id
    return _owner(job.get("job_name"), runs)


def check_promises(pipeline: Pipeline, runs: list[dict[str, Any]]) -> None:
    """Per run (one object version): every live resource of it is the one it records, so at most one of each."""
    by_id = {run["run_id"]: run for run in runs}
    files = pipeline.bailian("GET", "/api/v1/files?page_size=100")["data"]["files"]
    jobs = pipeline.bailian("GET", "/api/v1/fine-tunes?page_size=100")["output"]["jobs"]
    deployments = pipeline.bailian("GET", "/api/v1/deployments?page_size=200")["output"]["deployments"]
    for item in files:
        # By the name the run uploaded it under; the description only when the list echoes it (contract C18).
        owner = _owner(item.get("name"), by_id) or _owner(item.get("description"), by_id)
        assert owner is not None, f"file {item['file_id']} belongs to no run"
        assert item["file_id"] in (by_id[owner]["file_id"], by_id[owner]["validation_file_id"]), (item, by_id[owner])
    for job in jobs:
        owner = _job_owner(job, by_id)
        assert owner is not None, f"job {job['job_id']} belongs to no run"
        if job["status"] not in ("CANCELED", "CANCELING", "FAILED"):
            assert job["job_id"] == by_id[owner]["job_id"], f"a second live fine-tune {job} for {by_id[owner]}"
            assert by_id[owner]["stage"] != "CANCELED", f"a canceled run left {job}"
    for deployment in deployments:
        name = deployment["deployed_model"]
        owners = _deployment_owners(name, by_id)
        assert len(owners) == 1, f"deployment {name} belongs to {owners}"
        run = by_id[owners[0]]
        assert name == run["deployed_model"] and run["stage"] != "CANCELED", (deployment, run)
    for run in runs:
        if run["stage"] == "DONE" and run["kind"] == "fine-tune":
            assert run["deployed_model"] in {item["deployed_model"] for item in deployments}, run


def _listed(pipeline: Pipeline, path: str) -> list[dict[str, Any]]:
    """Every item of a compatible-mode list, page after page."""
    items: list[dict[str, Any]] = []
    after = ""
    while True:
        page = pipeline.bailian("GET", f"/compatible-mode/v1/{path}?limit=100{after}")
        items += page["data"]
        if not page["has_more"]:
            return items
        after = f"&after={page['last_id']}"


def check_batch_promises(pipeline: Pipeline, runs: list[dict[str, Any]], versions: dict[str, list[str]]) -> None:
    """Per shard of each attempt one batch ran, the one its run records; a DONE run answered every line of its
    version once and left no input file on the service; a canceled run left no batch running and no file."""
    by_id = {run["run_id"]: run for run in runs}
    running: dict[str, list[dict[str, Any]]] = {}
    for batch in _listed(pipeline, "batches"):
        tag = str((batch.get("metadata") or {}).get("ds_name", "")).split(" ")[-1]
        owner = _owner(tag, by_id)
        assert owner is not None, f"batch {batch['id']} belongs to no run"
        if batch["status"] not in STOPPED:
            running.setdefault(tag, []).append(batch)
    for tag, batches in running.items():
        assert len(batches) == 1, f"shard {tag} ran {len(batches)} batches: {batches}"
    inputs = {item["filename"]: item["id"] for item in _listed(pipeline, "files") if item["purpose"] == "batch"}
    for run in runs:
        if run["kind"] != "batch":
            continue
        run_id, attempt = run["run_id"], run["attempt"]
        shards = (run.get("batch") or {}).get("shards") or []
        own = {name: file_id for name, file_id in inputs.items() if name.startswith(f"bf-{run_id}-a{attempt}-")}
        if run["stage"] == "CANCELED":
            left = [batch for tag, batches in running.items() if tag.startswith(f"bf-{run_id}-") for batch in batches]
            assert all(batch["status"] in ("completed", "failed", "expired") for batch in left), left
            assert not own, f"canceled run {run_id} left files {own}"
        if run["stage"] != "DONE":
            continue
        assert not own, f"done run {run_id} left files {own}"
        for shard in shards:
            tag = f"bf-{run_id}-a{attempt}-s{shard['root']}-g{shard['generation']}"
            assert [batch["id"] for batch in running.get(tag, [])] == [shard["batch_id"]], (tag, shard)
        answered = [
            json.loads(line)["custom_id"]
            for name in ("output.jsonl", "errors.jsonl")
            for line in (pipeline.get(f"results/schedules/c/{run_id}/{name}") or b"").splitlines()
        ]
        assert sorted(answered) == sorted(versions[run["source"]["etag"]]), (run_id, answered)


@pytest.mark.parametrize("index", range(SCHEDULES))
def test_random_schedules_keep_every_promise(
    index: int, emulator_reset: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seed = FIRST_SEED + index
    pipeline = Pipeline(emulator_reset.url, monkeypatch, BAILIAN_FLOW_BATCH_SHARD_LINES=SHARD_LINES)
    schedule = Schedule(pipeline, monkeypatch, random.Random(seed))
    try:
        pipeline.put(KEYS[0], SFT_SAMPLE)
        schedule.put_requests(REQUESTS)
        for _ in range(STEPS):
            schedule.step()
        runs = schedule.settle()
        check_promises(pipeline, runs)
        check_batch_promises(pipeline, runs, schedule.versions)
        audit_everything(schedule)
        check_orphans(pipeline, runs)
    except BaseException:
        print(f"schedule seed {seed} (replay: BAILIAN_FLOW_SEED={seed} BAILIAN_FLOW_SCHEDULES=1): {schedule.log}")
        for run in pipeline.runs():
            print(f"run {run['run_id']} {run['source'].get('key')}:")
            for entry in pipeline.history(run["run_id"]):
                print(f"  #{entry['seq']} {entry['stage']}: {entry['changed']}")
        raise
