"""s.yaml (Serverless Devs 3, fc3 component) read into what the local runtime needs.

Only the subset this project uses is understood: `vars`, and per resource the fc3 props `functionName`,
`region`, `runtime`, `code`, `handler`, `memorySize`, `timeout`, `environmentVariables`, `asyncInvokeConfig`
and the OSS, timer and HTTP `triggers`. Serverless Devs variables are resolved the way `s deploy` would, with
local stand-ins for what only the cloud knows (`${config('AccountID')}`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

LOCAL_ACCOUNT_ID = "1234567890123456"

# `${...}`; quoted arguments may contain braces (`${env('X', '{}')}`).
_EXPRESSION = re.compile(r"""\$\{((?:[^{}'"]|'[^']*'|"[^"]*")+)\}""")
_ENV_CALL = re.compile(r"""^env\(\s*(['"])([^'"]+)\1\s*(?:,\s*(['"])(.*?)\3\s*)?\)$""")
_CONFIG_CALL = re.compile(r"""^config\(\s*(['"])([^'"]+)\1\s*\)$""")


class SpecError(ValueError):
    """s.yaml is malformed or uses something the local runtime does not understand."""


@dataclass(frozen=True)
class OssTrigger:
    name: str
    bucket: str
    events: tuple[str, ...]
    prefix: str
    suffix: str


@dataclass(frozen=True)
class TimerTrigger:
    name: str
    cron_expression: str
    payload: str
    enabled: bool


@dataclass(frozen=True)
class HttpTrigger:
    name: str
    auth_type: str
    methods: tuple[str, ...]


@dataclass(frozen=True)
class FunctionSpec:
    resource: str
    name: str
    runtime: str
    code_dir: Path
    handler: str
    memory_mb: int
    timeout_s: float
    environment: Mapping[str, str]
    region: str = "cn-hangzhou"
    max_async_retries: int = 3
    max_async_event_age_s: float = 86400.0
    oss_triggers: tuple[OssTrigger, ...] = ()
    timer_triggers: tuple[TimerTrigger, ...] = ()
    http_triggers: tuple[HttpTrigger, ...] = ()

    @property
    def module_file(self) -> Path:
        return self.code_dir / (self.handler.rsplit(".", 1)[0].replace(".", "/") + ".py")

    @property
    def handler_name(self) -> str:
        return self.handler.rsplit(".", 1)[1]


@dataclass(frozen=True)
class AppSpec:
    path: Path
    name: str
    variables: Mapping[str, Any]
    functions: tuple[FunctionSpec, ...] = field(default_factory=tuple)

    def function(self, name: str) -> FunctionSpec:
        for spec in self.functions:
            if name in (spec.name, spec.resource):
                return spec
        raise KeyError(name)


def resolve(value: Any, scope: Mapping[str, Any], environ: Mapping[str, str]) -> Any:
    """Resolve `${...}` expressions recursively; a value that is one whole expression keeps its type."""
    if isinstance(value, dict):
        return {k: resolve(v, scope, environ) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, scope, environ) for v in value]
    if not isinstance(value, str) or "${" not in value:
        return value
    whole = _EXPRESSION.fullmatch(value)
    if whole:
        return _evaluate(whole.group(1).strip(), scope, environ)
    return _EXPRESSION.sub(lambda m: str(_evaluate(m.group(1).strip(), scope, environ)), value)


def _evaluate(expression: str, scope: Mapping[str, Any], environ: Mapping[str, str]) -> Any:
    env_call = _ENV_CALL.match(expression)
    if env_call:
        name, default = env_call.group(2), env_call.group(4)
        # `s deploy` refuses an unset variable without a default; locally the value is replaced anyway.
        return environ.get(name, default if default is not None else "")
    if expression.startswith("env."):
        return environ.get(expression[4:], "")
    config_call = _CONFIG_CALL.match(expression)
    if config_call:
        if config_call.group(2) == "AccountID":
            return environ.get("FC_ACCOUNT_ID", LOCAL_ACCOUNT_ID)
        raise SpecError(f"unsupported config key in ${{{expression}}}")
    current: Any = scope
    for part in expression.split("."):
        if not isinstance(current, Mapping) or part not in current:
            raise SpecError(f"cannot resolve ${{{expression}}}")
        current = current[part]
    return resolve(current, scope, environ)


def bucket_from_arn(arn: str) -> str:
    """`acs:oss:<region>:<account>:<bucket>` → bucket."""
    parts = arn.split(":")
    if len(parts) != 5 or parts[:2] != ["acs", "oss"] or not parts[4]:
        raise SpecError(f"not an OSS bucket ARN: {arn!r}")
    return parts[4]


def load_spec(path: str | os.PathLike[str], environ: Mapping[str, str] | None = None) -> AppSpec:
    path = Path(path).resolve()
    env = os.environ if environ is None else environ
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise SpecError(f"cannot read {path}: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("resources"), dict):
        raise SpecError(f"{path}: no resources")
    raw_vars = document.get("vars") or {}
    scope: dict[str, Any] = {"vars": raw_vars}
    variables = resolve(raw_vars, scope, env)
    scope["vars"] = variables
    functions = []
    for resource, body in document["resources"].items():
        if not isinstance(body, dict) or "fc3" not in str(body.get("component", "")):
            continue
        resource_scope = {**scope, "this": {"name": resource, "props": body.get("props") or {}}}
        props = resolve(body.get("props") or {}, resource_scope, env)
        functions.append(_function(path.parent, resource, props))
    return AppSpec(path=path, name=str(document.get("name", "")), variables=variables, functions=tuple(functions))


def _function(root: Path, resource: str, props: Mapping[str, Any]) -> FunctionSpec:
    name = str(props.get("functionName") or resource)
    try:
        code, handler = str(props["code"]), str(props["handler"])
    except KeyError as exc:
        raise SpecError(f"function {name}: missing {exc.args[0]}") from None
    if "." not in handler:
        raise SpecError(f"function {name}: handler {handler!r} is not module.function")
    async_config = props.get("asyncInvokeConfig") or {}
    oss, timers, http = [], [], []
    for trigger in props.get("triggers") or []:
        kind, trigger_name = trigger.get("triggerType"), str(trigger.get("triggerName", ""))
        config = trigger.get("triggerConfig") or {}
        if kind == "oss":
            key_filter = (config.get("filter") or {}).get("key") or {}
            oss.append(
                OssTrigger(
                    name=trigger_name,
                    bucket=bucket_from_arn(str(trigger.get("sourceArn", ""))),
                    events=tuple(str(e) for e in config.get("events") or ()),
                    prefix=str(key_filter.get("prefix") or ""),
                    suffix=str(key_filter.get("suffix") or ""),
                )
            )
        elif kind == "timer":
            timers.append(
                TimerTrigger(
                    name=trigger_name,
                    cron_expression=str(config.get("cronExpression", "")),
                    payload=str(config.get("payload") or ""),
                    enabled=bool(config.get("enable", True)),
                )
            )
        elif kind == "http":
            http.append(
                HttpTrigger(
                    name=trigger_name,
                    auth_type=str(config.get("authType", "anonymous")),
                    methods=tuple(str(m).upper() for m in config.get("methods") or ()),
                )
            )
        else:
            raise SpecError(f"function {name}: trigger type {kind!r} is not emulated locally")
    return FunctionSpec(
        resource=resource,
        name=name,
        runtime=str(props.get("runtime", "python3.12")),
        code_dir=(root / code).resolve(),
        handler=handler,
        memory_mb=int(props.get("memorySize", 512)),
        timeout_s=float(props.get("timeout", 60)),
        environment={str(k): "" if v is None else str(v) for k, v in (props.get("environmentVariables") or {}).items()},
        region=str(props.get("region") or "cn-hangzhou"),
        max_async_retries=int(async_config.get("maxAsyncRetryAttempts", 3)),
        max_async_event_age_s=float(async_config.get("maxAsyncEventAgeInSeconds", 86400)),
        oss_triggers=tuple(oss),
        timer_triggers=tuple(timers),
        http_triggers=tuple(http),
    )
