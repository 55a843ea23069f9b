"""`LocalStack`: the functions of s.yaml under their triggers, on loopback, against the emulator.

    async with LocalStack("s.yaml", time_scale=100, timer_interval=1) as stack:
        stack.emulator_url, stack.invoke_url, stack.http_url, stack.api_token
        await stack.wait_idle()

Functions run in this process, each loaded from its own `index.py`. Their environment is s.yaml's
`environmentVariables` with local overrides (emulator endpoints, fake keys, a generated API token), applied to
the whole process: locally all functions share one environment, which is acceptable because ours declare the
same variables. The previous environment is restored on exit.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import os
import secrets
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from bailian_flow.local.emulator_process import EmulatorProcess
from bailian_flow.local.http_trigger import FcHttpTarget, HttpTriggerServer
from bailian_flow.local.invoke_api import build_invoke_app
from bailian_flow.local.oss_events import OssEventPoller
from bailian_flow.local.runner import DeliveryRecord, Dispatcher, LocalFunction
from bailian_flow.local.schedule import make_trigger
from bailian_flow.local.spec import LOCAL_ACCOUNT_ID, AppSpec, FunctionSpec, TimerTrigger, load_spec

log = logging.getLogger("bailian_flow.local")

# Meaningful only inside FC's sandbox (/code paths); applied here they would break local subprocesses.
CLOUD_ONLY_VARIABLES = frozenset({"PYTHONPATH", "LD_LIBRARY_PATH", "PATH"})


def _is_loopback(url: str) -> bool:
    return urlsplit(url).hostname in {"127.0.0.1", "localhost", "::1"}


class LocalStack:
    def __init__(
        self,
        config: str | os.PathLike[str] = "s.yaml",
        *,
        emulator_url: str | None = None,
        data_dir: str | os.PathLike[str] | None = None,
        time_scale: float = 1.0,
        emulator_port: int = 0,
        timer_interval: float | None = None,
        host: str = "127.0.0.1",
        invoke_port: int = 0,
        http_port: int = 0,
        workers: int = 4,
        retry_base_delay: float = 1.0,
        api_token: str | None = None,
        env: Mapping[str, str] | None = None,
        functions: Sequence[str] | None = None,
        emulator_profile: str | None = None,
    ) -> None:
        self.config_path = Path(config)
        # The emulator's reading of what Bailian leaves undocumented (emulator/behaviour.py): default or strict.
        self._emulator_profile = emulator_profile
        self._given_emulator_url = emulator_url
        self._data_dir = Path(data_dir) if data_dir is not None else None
        self._time_scale = time_scale
        self._emulator_port = emulator_port
        self._timer_interval = timer_interval
        self._host = host
        self._invoke_port = invoke_port
        self._http_port = http_port
        self._workers = workers
        self._retry_base_delay = retry_base_delay
        self.api_token = api_token or secrets.token_urlsafe(24)
        self._extra_env = dict(env or {})
        self._only = set(functions) if functions is not None else None

        self.spec: AppSpec | None = None
        self.functions: dict[str, LocalFunction] = {}
        self.emulator_url = ""
        self.invoke_url = ""
        self.http_urls: dict[str, str] = {}
        self.environment: dict[str, str] = {}
        self._emulator: EmulatorProcess | None = None
        self._saved_env: dict[str, str | None] = {}
        self._executor: ThreadPoolExecutor | None = None
        self._dispatcher: Dispatcher | None = None
        self._session: aiohttp.ClientSession | None = None
        self._poller: OssEventPoller | None = None
        self._poller_task: asyncio.Task[None] | None = None
        self._invoke_runner: web.AppRunner | None = None
        self._http_servers: list[HttpTriggerServer] = []
        self._scheduler: Any = None

    # -- what a caller needs ---------------------------------------------------------------------------------
    @property
    def oss_endpoint(self) -> str:
        return self.emulator_url

    @property
    def http_url(self) -> str:
        """The HTTP trigger's URL (the first one when several functions have one)."""
        return next(iter(self.http_urls.values()), "")

    @property
    def timer_interval(self) -> float | None:
        """Seconds between timer deliveries when they replace s.yaml's cron expressions (None: they do not)."""
        return self._timer_interval

    @property
    def bucket(self) -> str:
        for function in self.functions.values():
            for trigger in function.spec.oss_triggers:
                return trigger.bucket
        return self.environment.get("BAILIAN_FLOW_BUCKET", "bailian-flow")

    @property
    def dispatcher(self) -> Dispatcher:
        if self._dispatcher is None:
            raise RuntimeError("the stack is not running")
        return self._dispatcher

    @property
    def records(self) -> list[DeliveryRecord]:
        """Every async delivery attempt so far, oldest first."""
        return self.dispatcher.records

    def invoke_endpoint(self, function: str) -> str:
        return f"{self.invoke_url}/2023-03-30/functions/{function}/invocations"

    # -- lifecycle -------------------------------------------------------------------------------------------
    async def __aenter__(self) -> LocalStack:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        self.spec = load_spec(self.config_path)
        selected = [f for f in self.spec.functions if self._only is None or f.name in self._only]
        if self._only is not None and len(selected) != len(self._only):
            missing = self._only - {f.name for f in selected}
            raise KeyError(f"not in {self.config_path}: {sorted(missing)}")

        if self._given_emulator_url:
            self.emulator_url = self._given_emulator_url.rstrip("/")
        else:
            self._emulator = EmulatorProcess(
                host=self._host,
                port=self._emulator_port,
                data_dir=self._data_dir,
                time_scale=self._time_scale,
                profile=self._emulator_profile,
            )
            self.emulator_url = await self._emulator.start()

        self._apply_environment(selected)
        self.functions = {spec.name: LocalFunction.load(spec, spec.region) for spec in selected}

        self._executor = ThreadPoolExecutor(max_workers=self._workers * 2, thread_name_prefix="fc-invoke")
        self._dispatcher = Dispatcher(
            self.functions, self._executor, workers=self._workers, retry_base_delay=self._retry_base_delay
        )
        self._dispatcher.start()

        self._invoke_runner = web.AppRunner(build_invoke_app(self.functions, self._dispatcher, self._executor))
        await self._invoke_runner.setup()
        site = web.TCPSite(self._invoke_runner, self._host, self._invoke_port)
        await site.start()
        port = self._invoke_runner.addresses[0][1]
        self.invoke_url = f"http://{self._host}:{port}"

        self._start_http_triggers()
        self._configure_batch_callbacks()
        self._start_oss_triggers()
        self._start_timers()

    async def stop(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
            await asyncio.sleep(0)  # AsyncIOScheduler shuts down on its next loop turn
        if self._poller_task is not None:
            self._poller_task.cancel()
            await asyncio.gather(self._poller_task, return_exceptions=True)
            self._poller_task = None
        for server in self._http_servers:
            await asyncio.to_thread(server.stop)
        self._http_servers = []
        if self._invoke_runner is not None:
            await self._invoke_runner.cleanup()
            self._invoke_runner = None
        if self._dispatcher is not None:
            await self._dispatcher.stop()
        if self._executor is not None:
            # A handler still running cannot be interrupted; do not wait for it.
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self._emulator is not None:
            await self._emulator.stop()
            self._emulator = None
        self._restore_environment()

    # -- pieces ----------------------------------------------------------------------------------------------
    def _apply_environment(self, functions: Sequence[FunctionSpec]) -> None:
        merged: dict[str, str] = {}
        for spec in functions:
            for name, value in spec.environment.items():
                if name in CLOUD_ONLY_VARIABLES:
                    continue
                if name in merged and merged[name] != value:
                    log.warning("%s differs between functions; locally they share one environment", name)
                merged[name] = value
        region = functions[0].region if functions else "cn-hangzhou"
        webhook = merged.get("BAILIAN_FLOW_WEBHOOK_URL", "")
        local = {
            "DASHSCOPE_BASE_URL": self.emulator_url,
            # Never hand a real key to local code, even though everything it talks to is loopback.
            "DASHSCOPE_API_KEY": "sk-local-" + secrets.token_hex(8),
            "BAILIAN_FLOW_OSS_ENDPOINT": self.emulator_url,
            "BAILIAN_FLOW_STORE": "oss",
            "ALIBABA_CLOUD_ACCESS_KEY_ID": "local-access-key-id",
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "local-access-key-secret",
            "ALIBABA_CLOUD_SECURITY_TOKEN": "",
            "BAILIAN_FLOW_API_TOKEN": self.api_token,
            "BAILIAN_FLOW_WEBHOOK_URL": webhook if webhook and _is_loopback(webhook) else "",
            "FC_REGION": region,
            "FC_ACCOUNT_ID": LOCAL_ACCOUNT_ID,
        }
        self.environment = {**merged, **local, **self._extra_env}
        self._export(self.environment)

    def _export(self, values: Mapping[str, str]) -> None:
        for name, value in values.items():
            self._saved_env.setdefault(name, os.environ.get(name))
            if value:
                os.environ[name] = value
            else:
                os.environ.pop(name, None)

    def _configure_batch_callbacks(self) -> None:
        """Bailian's batch finish callbacks go to this stack's own webhook, unless the user chose a URL.

        The secret, unless given, derives from the API token, which dev keeps in its data directory: a batch
        submitted before a restart still carries a valid callback path afterwards.
        """
        chosen = self.environment.get("BAILIAN_FLOW_CALLBACK_URL", "")
        if chosen and _is_loopback(chosen):
            return
        if chosen:
            log.warning("BAILIAN_FLOW_CALLBACK_URL %s is not loopback; locally callbacks go to the stack's own", chosen)
        if not self.http_url:
            self._export({"BAILIAN_FLOW_CALLBACK_URL": ""})
            return
        secret = (
            self.environment.get("BAILIAN_FLOW_CALLBACK_SECRET")
            or hmac.new(self.api_token.encode(), b"bailian-flow batch finish callbacks", hashlib.sha256).hexdigest()
        )
        callbacks = {"BAILIAN_FLOW_CALLBACK_URL": self.http_url, "BAILIAN_FLOW_CALLBACK_SECRET": secret}
        self.environment.update(callbacks)
        self._export(callbacks)

    def _restore_environment(self) -> None:
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env = {}

    def _start_http_triggers(self) -> None:
        port = self._http_port
        for function in self.functions.values():
            for trigger in function.spec.http_triggers:
                server = HttpTriggerServer(FcHttpTarget(function, trigger, LOCAL_ACCOUNT_ID), self._host, port)
                server.start()
                self._http_servers.append(server)
                self.http_urls[function.spec.name] = server.url
                port = 0  # a second HTTP function gets a free port

    def _start_oss_triggers(self) -> None:
        routes = [(f.spec.name, t) for f in self.functions.values() for t in f.spec.oss_triggers]
        self._session = aiohttp.ClientSession()
        self._poller = OssEventPoller(self._session, self.emulator_url, routes, self.dispatcher.submit)
        if routes:
            self._poller_task = asyncio.create_task(self._poller.run(), name="oss-events")

    def _start_timers(self) -> None:
        timers = [(f.spec.name, t) for f in self.functions.values() for t in f.spec.timer_triggers if t.enabled]
        if not timers:
            return
        from apscheduler.schedulers.asyncio import AsyncIOScheduler

        self._scheduler = AsyncIOScheduler(timezone=timezone.utc)
        for function, trigger in timers:
            self._scheduler.add_job(
                self._fire_timer,
                make_trigger(trigger.cron_expression, interval_override=self._timer_interval),
                args=(function, trigger),
                id=f"{function}:{trigger.name}",
                coalesce=True,
                max_instances=1,
            )
        self._scheduler.start()

    async def _fire_timer(self, function: str, trigger: TimerTrigger) -> None:
        event = {
            "triggerTime": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "triggerName": trigger.name,
            "payload": trigger.payload,
        }
        self.dispatcher.submit(function, json.dumps(event).encode("utf-8"), f"timer:{trigger.name}")

    async def wait_idle(self, timeout: float = 30.0) -> None:
        """Wait until every OSS event so far has been routed and no delivery is queued, running or retrying.

        Timer deliveries count too, so with a fast timer this can stay busy; give it a timeout.
        """
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"the local stack is still busy ({self.dispatcher.pending} pending)")
            try:
                await asyncio.wait_for(self.dispatcher.wait_drained(), remaining)
            except asyncio.TimeoutError:
                continue
            routed = self._poller is None or not self._poller_task or await self._poller.caught_up()
            if routed and self.dispatcher.pending == 0:
                return
            await asyncio.sleep(0.05)
