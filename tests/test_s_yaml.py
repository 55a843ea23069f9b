"""s.yaml against the code: functions, trigger filters, event lists, environment, role policy, build."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from bailian_flow.local.schedule import next_fire_delay
from bailian_flow.local.spec import AppSpec, load_spec
from bailian_flow.pipeline.protocol import layout

ROOT = Path(__file__).resolve().parents[1]
S_YAML = ROOT / "s.yaml"
FUNCTIONS = ("on_upload", "on_file_ready", "on_timer", "on_success", "webhook")

# Read by the code but deliberately absent from s.yaml, with the reason.
OPTIONAL_VARIABLES = {
    "ALIBABA_CLOUD_ACCESS_KEY_ID": "FC injects the execution role's credentials",
    "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "FC injects the execution role's credentials",
    "ALIBABA_CLOUD_SECURITY_TOKEN": "FC injects the execution role's credentials",
    "DASHSCOPE_BASE_URL": "only to point at the emulator; the cloud uses the region's endpoint",
    "BAILIAN_FLOW_LEASE_SECONDS": "tuning knob with a default longer than every function's timeout",
    "BAILIAN_FLOW_REDRIVE_AFTER": "tuning knob with a sensible default",
    "BAILIAN_FLOW_LIST_LAG_SECONDS": "tuning knob: the lease already outlasts it; lowered only in tests",
    "BAILIAN_FLOW_ACTORS_DEAD_BEFORE": "set by a runtime that knows earlier actors died (dev); never on FC",
    "BAILIAN_FLOW_BATCH_SHARD_LINES": "the service's limit by default; lowered only in tests",
    "BAILIAN_FLOW_BATCH_SHARD_BYTES": "the service's limit by default; lowered only in tests",
    **{
        f"BAILIAN_FLOW_QUOTA_{name}": "the account's quota; the default is the service's documented one"
        for name in ("FINE_TUNE_JOBS", "FILES", "FILE_BYTES", "BATCHES", "TRAINING_SLOTS")
    },
    "BAILIAN_FLOW_AUDIT_EVERY": "tuning knob: how often the timer audits a slice of Bailian's lists (default 300 s)",
    "BAILIAN_FLOW_TIMER_PAGE_SIZE": "test knob: the default is each list endpoint's largest page",
    "BAILIAN_FLOW_TIMER_VISIT_BUDGET": "test knob: the default is what the tick's time allows",
}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    loaded = yaml.safe_load(S_YAML.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def app() -> AppSpec:
    return load_spec(S_YAML, environ={})


def test_descriptor_is_serverless_devs_3_with_the_five_functions(document: dict[str, Any], app: AppSpec) -> None:
    assert document["edition"] == "3.0.0"
    assert {"region", "bucket", "account"} <= set(document["vars"])
    assert sorted(f.name for f in app.functions) == sorted(FUNCTIONS)
    for name, resource in document["resources"].items():
        assert resource["component"] == "fc3"
        assert resource["actions"]["pre-deploy"] == [{"run": f"./deploy/build.sh {name}", "path": "./"}]
        props = resource["props"]
        assert props["code"] == f"./functions/{name}"
        assert props["handler"] == "index.handler"
        assert props["runtime"] == "${vars.runtime}"
        assert props["logConfig"] == "auto"
        assert props["role"].startswith("acs:ram::") and props["role"].endswith(":role/bailian-flow-fc")


@pytest.mark.parametrize("name", FUNCTIONS)
def test_every_function_code_defines_its_handler(app: AppSpec, name: str) -> None:
    spec = app.function(name)
    assert spec.code_dir == ROOT / "functions" / name
    tree = ast.parse(spec.module_file.read_text(encoding="utf-8"))
    handlers = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == spec.handler_name]
    assert handlers and [a.arg for a in handlers[0].args.args] == ["event", "context"]


def test_oss_triggers_match_the_bucket_layout(app: AppSpec) -> None:
    seen: dict[str, list[dict[str, str]]] = {}
    for spec in app.functions:
        for trigger in spec.oss_triggers:
            assert trigger.events == layout.CREATED_EVENTS  # never oss:ObjectCreated:*
            assert trigger.bucket == "bailian-flow"
            seen.setdefault(spec.name, []).append({"prefix": trigger.prefix, "suffix": trigger.suffix})
    assert seen == layout.OSS_TRIGGERS


def _overlap(a: str, b: str) -> bool:
    return a.startswith(b) or b.startswith(a)


def test_no_trigger_can_loop_or_fire_twice(app: AppSpec) -> None:
    """State writes never reach the dataset trigger, and one state entry triggers at most one function."""
    triggers = [(spec.name, t) for spec in app.functions for t in spec.oss_triggers]
    inputs = (layout.DATASETS_PREFIX, layout.BATCHES_PREFIX, layout.IMPORTS_PREFIX, layout.DEPLOYMENTS_PREFIX)
    input_triggers = [t for _, t in triggers if t.prefix in inputs]
    state_triggers = [(name, t) for name, t in triggers if t.prefix not in inputs]
    # The datasets prefix has two (text JSONL and media zips), every other input one.
    assert sorted(t.prefix for t in input_triggers) == sorted((*inputs, layout.DATASETS_PREFIX))
    assert {(t.prefix, t.suffix) for t in input_triggers} >= {
        (layout.DATASETS_PREFIX, layout.ZIP_SUFFIX),
        (layout.DEPLOYMENTS_PREFIX, layout.DEPLOY_SUFFIX),
    }
    for state_prefix in (layout.RUNS_PREFIX, layout.ACTIVE_PREFIX, layout.RESULTS_PREFIX, layout.TTL_PREFIX):
        for input_prefix in inputs:
            assert not _overlap(state_prefix, input_prefix)
    for _, trigger in state_triggers:
        assert trigger.prefix == layout.RUNS_PREFIX
        assert trigger.suffix.endswith(".json") and not trigger.suffix.endswith(layout.DATASET_SUFFIX)
    suffixes = [t.suffix for _, t in state_triggers]
    for i, first in enumerate(suffixes):
        for second in suffixes[i + 1 :]:
            assert not first.endswith(second) and not second.endswith(first)


def test_timer_trigger_parses_and_fires_every_minute(app: AppSpec) -> None:
    (timer,) = app.function("on_timer").timer_triggers
    assert timer.enabled
    assert next_fire_delay(timer.cron_expression).total_seconds() <= 60
    assert app.function("on_timer").timeout_s == 60
    assert app.function("on_timer").max_async_retries == 0


def test_async_settings_are_sensible(app: AppSpec) -> None:
    for spec in app.functions:
        assert 0 <= spec.max_async_retries <= 8
        assert spec.max_async_event_age_s <= 86400
    assert app.function("on_upload").timeout_s == 600  # streams big datasets


def test_http_trigger_is_anonymous_with_get_and_post(app: AppSpec) -> None:
    (trigger,) = app.function("webhook").http_triggers
    assert trigger.auth_type == "anonymous"
    assert set(trigger.methods) == {"GET", "POST"}
    assert "BAILIAN_FLOW_API_TOKEN" in app.function("webhook").environment


def _variables_read_by_code() -> set[str]:
    names: set[str] = set()
    pattern = re.compile(r"""["']((?:BAILIAN_FLOW|DASHSCOPE|ALIBABA_CLOUD)_[A-Z0-9_]+)["']""")
    for path in (ROOT / "shared" / "bailian_flow").rglob("*.py"):
        if {"local", "emulator"} & set(path.relative_to(ROOT / "shared" / "bailian_flow").parts):
            continue  # the local runtime and the emulator never run in FC
        names.update(pattern.findall(path.read_text(encoding="utf-8")))
    return names


def test_every_variable_the_code_reads_is_declared(app: AppSpec, document: dict[str, Any]) -> None:
    read = _variables_read_by_code()
    assert "DASHSCOPE_API_KEY" in read and "BAILIAN_FLOW_BUCKET" in read  # the scan itself works
    for spec in app.functions:
        declared = set(spec.environment)
        missing = read - declared - set(OPTIONAL_VARIABLES)
        assert not missing, f"{spec.name} does not declare {sorted(missing)}"
        assert not {n for n in declared if n.startswith("FC_")}, "FC_* is reserved"
        assert not [v for v in spec.environment.values() if "${" in v], "unresolved Serverless Devs variable"
    raw_env = document["resources"]["on_upload"]["props"]["environmentVariables"]
    # Secrets come from the deployer's environment, never from the file.
    assert raw_env["DASHSCOPE_API_KEY"] == "${env('DASHSCOPE_API_KEY')}"
    assert raw_env["BAILIAN_FLOW_API_TOKEN"] == "${env('BAILIAN_FLOW_API_TOKEN')}"
    assert raw_env["BAILIAN_FLOW_DATASETS_PREFIX"] == layout.DATASETS_PREFIX
    assert raw_env["BAILIAN_FLOW_IMPORTS_PREFIX"] == layout.IMPORTS_PREFIX
    assert raw_env["BAILIAN_FLOW_DEPLOYMENTS_PREFIX"] == layout.DEPLOYMENTS_PREFIX
    assert raw_env["BAILIAN_FLOW_RUNS_PREFIX"] == layout.RUNS_PREFIX
    assert len(json.dumps(raw_env)) < 4096


def test_ram_policy_is_valid_and_scoped_to_the_layout() -> None:
    policy = json.loads((ROOT / "deploy" / "ram-policy.json").read_text(encoding="utf-8"))
    assert policy["Version"] == "1"
    oss_resources = [
        resource
        for statement in policy["Statement"]
        for action in statement["Action"]
        if action.startswith("oss:")
        for resource in statement["Resource"]
    ]
    allowed = {
        f"acs:oss:*:*:bailian-flow/{p}*"
        for p in (
            layout.DATASETS_PREFIX,
            layout.BATCHES_PREFIX,
            layout.RESULTS_PREFIX,
            layout.IMPORTS_PREFIX,
            layout.DEPLOYMENTS_PREFIX,
            layout.RUNS_PREFIX,
            layout.ACTIVE_PREFIX,
            layout.INDEX_PREFIX,
            layout.TTL_PREFIX,
            layout.WAITING_PREFIX,
        )
    } | {"acs:oss:*:*:bailian-flow"}
    assert set(oss_resources) <= allowed
    for statement in policy["Statement"]:
        assert "*" not in statement["Action"] and "oss:*" not in statement["Action"]
        for inputs in ("datasets", "batches", "imports", "deployments"):
            if f"acs:oss:*:*:bailian-flow/{inputs}/*" in statement["Resource"]:
                assert statement["Action"] == ["oss:GetObject"]  # the pipeline never writes its inputs


def test_ram_policy_grants_everything_the_pipeline_does() -> None:
    policy = json.loads((ROOT / "deploy" / "ram-policy.json").read_text(encoding="utf-8"))

    def granted(action: str, prefix: str) -> bool:
        for statement in policy["Statement"]:
            if action not in statement["Action"]:
                continue
            if action == "oss:ListObjects":
                if f"{prefix}*" in statement.get("Condition", {}).get("StringLike", {}).get("oss:Prefix", []):
                    return True
            elif f"acs:oss:*:*:bailian-flow/{prefix}*" in statement["Resource"]:
                return True
        return False

    # The run log writes commits, markers, active markers and the index; the timer lists datasets (adoption).
    for prefix in (layout.RUNS_PREFIX, layout.ACTIVE_PREFIX, layout.INDEX_PREFIX):
        assert granted("oss:PutObject", prefix) and granted("oss:GetObject", prefix), prefix
    for prefix in (layout.DATASETS_PREFIX, layout.RUNS_PREFIX, layout.ACTIVE_PREFIX, layout.INDEX_PREFIX):
        assert granted("oss:ListObjects", prefix), prefix
    assert granted("oss:GetObject", layout.DATASETS_PREFIX)
    # Batch runs read their input and write (then tidy) their results.
    assert granted("oss:GetObject", layout.BATCHES_PREFIX)
    for action in ("oss:GetObject", "oss:PutObject", "oss:DeleteObject", "oss:AbortMultipartUpload"):
        assert granted(action, layout.RESULTS_PREFIX), action
    assert granted("oss:GetObject", layout.IMPORTS_PREFIX)
    assert granted("oss:ListObjects", layout.IMPORTS_PREFIX)  # the timer adopts markers whose event was lost
    assert granted("oss:GetObject", layout.DEPLOYMENTS_PREFIX)
    assert granted("oss:ListObjects", layout.DEPLOYMENTS_PREFIX)
    assert granted("oss:DeleteObject", layout.ACTIVE_PREFIX)
    # The deployment-TTL index: written when a run finishes, listed and cleared by the timer.
    for action in ("oss:PutObject", "oss:ListObjects", "oss:DeleteObject"):
        assert granted(action, layout.TTL_PREFIX), action
    # The line of runs waiting for a quota: joined, listed, left.
    for action in ("oss:PutObject", "oss:GetObject", "oss:ListObjects", "oss:DeleteObject"):
        assert granted(action, layout.WAITING_PREFIX), action


def test_build_script_targets_the_declared_runtime(app: AppSpec, document: dict[str, Any]) -> None:
    script = (ROOT / "deploy" / "build.sh").read_text(encoding="utf-8")
    (default,) = re.findall(r"^DEFAULT_RUNTIME=(\S+)", script, flags=re.M)
    assert {spec.runtime for spec in app.functions} == {default}, "s.yaml and build.sh agree on the default"
    assert "BAILIAN_FLOW_RUNTIME" in script and "BAILIAN_FLOW_RUNTIME" in document["vars"]["runtime"]
    assert "--only-binary=:all:" in script and "manylinux2014_x86_64" in script
    # Bytecode compiled at build time, valid whatever the files' mtimes after unzipping.
    assert "compileall" in script and "--invalidation-mode unchecked-hash" in script
    assert all(spec.environment.get("PYTHONPATH") == "/code/python" for spec in app.functions)


def test_every_function_uses_the_one_dependencies_layer(document: dict[str, Any], app: AppSpec) -> None:
    layers = {json.dumps(resource["props"]["layers"]) for resource in document["resources"].values()}
    assert layers == {json.dumps(["${vars.layer}"])}
    assert document["vars"]["layer"].startswith("acs:fc:${vars.region}:${vars.account}:layers/")
    assert all(spec.runtime == "python3.12" for spec in app.functions)
    elsewhere = load_spec(S_YAML, environ={"BAILIAN_FLOW_RUNTIME": "python3.10"})
    assert all(spec.runtime == "python3.10" for spec in elsewhere.functions), "one variable moves every function"


def test_a_runtime_fc_does_not_offer_in_the_region_is_refused_clearly(tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"], "BAILIAN_FLOW_REGION": "ap-southeast-1", "BAILIAN_FLOW_BUILD_DIR": str(tmp_path)}
    script = str(ROOT / "deploy" / "build.sh")

    refused = subprocess.run([script], env=env, capture_output=True, text=True, check=False)

    assert refused.returncode == 2
    assert "no python3.12 in ap-southeast-1" in refused.stderr and "BAILIAN_FLOW_RUNTIME=python3.10" in refused.stderr
    other = subprocess.run(
        [script], env={**env, "BAILIAN_FLOW_RUNTIME": "python3.9"}, capture_output=True, text=True, check=False
    )
    assert other.returncode == 2 and "not one FC offers" in other.stderr
    assert not any(tmp_path.iterdir()), "nothing was built"
