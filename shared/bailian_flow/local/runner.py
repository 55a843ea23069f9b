"""Run FC handlers in-process: load each function's module, invoke it, and deliver async events like FC does.

FC's async invocation (OSS and timer triggers, `x-fc-invocation-type: Async`) delivers at least once: a
handler that raises is retried `maxAsyncRetryAttempts` times with backoff, events older than
`maxAsyncEventAgeInSeconds` are dropped, and several deliveries run at once. Handlers are synchronous and may
call `asyncio.run` themselves, so every invocation runs on a worker thread, never on the event loop.

Given a journal (async_queue.py), the queue is durable as FC's: a delivery is journaled when accepted, ended only
when its invocation finished (returned, or dropped after its retries or its age), and whatever a killed process
left unended is delivered again when the dispatcher starts on the same journal.
"""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import logging
import re
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from bailian_flow.local.async_queue import Accepted, AsyncJournal
from bailian_flow.local.context import make_local_context
from bailian_flow.local.spec import FunctionSpec

log = logging.getLogger("bailian_flow.local")

Handler = Callable[[bytes, Any], Any]
_module_counter = itertools.count()


class HandlerError(Exception):
    """A handler raised; carries FC's error shape (errorMessage, errorType, stackTrace)."""

    def __init__(self, function: str, error: BaseException) -> None:
        super().__init__(f"{function}: {type(error).__name__}: {error}")
        self.function = function
        self.error_type = type(error).__name__
        self.error_message = str(error)
        self.stack_trace = traceback.format_exception(type(error), error, error.__traceback__)

    def body(self) -> dict[str, Any]:
        return {
            "errorMessage": self.error_message,
            "errorType": self.error_type,
            "stackTrace": self.stack_trace,
        }


@dataclass
class LocalFunction:
    spec: FunctionSpec
    region: str
    handler: Handler

    @classmethod
    def load(cls, spec: FunctionSpec, region: str) -> LocalFunction:
        """Import the handler module by path under a unique name: every FC function has its own `index.py`."""
        path = spec.module_file
        safe = re.sub(r"\W", "_", spec.name)
        module_name = f"_bailian_flow_fc_{safe}_{next(_module_counter)}"
        module_spec = importlib.util.spec_from_file_location(module_name, path)
        if module_spec is None or module_spec.loader is None:
            raise ImportError(f"cannot load {path}")
        module = importlib.util.module_from_spec(module_spec)
        module_spec.loader.exec_module(module)
        handler = getattr(module, spec.handler_name, None)
        if not callable(handler):
            raise ImportError(f"{path} defines no callable {spec.handler_name!r}")
        return cls(spec=spec, region=region, handler=handler)

    def invoke(self, payload: bytes, request_id: str | None = None) -> Any:
        """Call the handler on the current thread; raises HandlerError when it raises."""
        context = make_local_context(self.spec, self.region, request_id)
        try:
            return self.handler(payload, context)
        except Exception as exc:
            raise HandlerError(self.spec.name, exc) from exc


@dataclass
class Delivery:
    function: str
    payload: bytes
    source: str
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    enqueued_at: float = field(default_factory=time.monotonic)
    attempt: int = 0
    journaled: bool = False

    def accepted(self) -> Accepted:
        age = time.monotonic() - self.enqueued_at
        return Accepted(self.request_id, self.function, self.source, self.payload, time.time() - age, self.attempt)


@dataclass(frozen=True)
class DeliveryRecord:
    """One attempt of one async delivery, kept for `bailian-flow dev` output and for tests."""

    function: str
    source: str
    request_id: str
    attempt: int
    ok: bool
    error: str | None
    seconds: float


class Dispatcher:
    """A queue of async deliveries served by a small worker pool, with FC's retry and event-age rules."""

    def __init__(
        self,
        functions: Mapping[str, LocalFunction],
        executor: ThreadPoolExecutor,
        *,
        workers: int = 4,
        retry_base_delay: float = 1.0,
        retry_max_delay: float = 30.0,
        journal: AsyncJournal | None = None,
    ) -> None:
        self._functions = functions
        self._executor = executor
        self._workers = workers
        self._retry_base_delay = retry_base_delay
        self._retry_max_delay = retry_max_delay
        self._journal = journal
        self._queue: asyncio.Queue[Delivery] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._timers: set[asyncio.TimerHandle] = set()
        self._pending = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self.records: list[DeliveryRecord] = []
        self.dropped: list[Delivery] = []

    @property
    def pending(self) -> int:
        """Deliveries not finished yet: queued, running, or waiting for a retry."""
        return self._pending

    def start(self) -> None:
        if self._journal is not None:
            self._redeliver(list(self._journal.pending.values()))
        self._tasks = [asyncio.create_task(self._work(), name=f"fc-async-{i}") for i in range(self._workers)]

    async def stop(self) -> None:
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    def _redeliver(self, unfinished: list[Accepted]) -> None:
        now = time.time()
        for accepted in sorted(unfinished, key=lambda item: item.accepted_at):
            if accepted.function not in self._functions:
                log.warning("[%s] %s not delivered again: no such function now", accepted.function, accepted.source)
                assert self._journal is not None
                self._journal.end(accepted.request_id)
                continue
            delivery = Delivery(
                function=accepted.function,
                payload=accepted.payload,
                source=accepted.source,
                request_id=accepted.request_id,
                enqueued_at=time.monotonic() - max(0.0, now - accepted.accepted_at),
                attempt=accepted.failed_attempts,
                journaled=True,
            )
            self._enqueue(delivery)

    def submit(self, function: str, payload: bytes, source: str, *, durable: bool = True) -> Delivery:
        """Accept one async delivery; `durable` ones are journaled first (timer ticks are not: see async_queue)."""
        [delivery] = self.submit_many([(function, payload, source)], durable=durable)
        return delivery

    def submit_many(
        self, items: list[tuple[str, bytes, str]], *, durable: bool = True, oss_seq: int | None = None
    ) -> list[Delivery]:
        """Accept deliveries together: journaled in one line with the OSS cursor they advance it to, if any."""
        for function, _, _ in items:
            if function not in self._functions:
                raise KeyError(function)
        deliveries = [
            Delivery(function=function, payload=payload, source=source) for function, payload, source in items
        ]
        if durable and self._journal is not None:
            self._journal.accept([delivery.accepted() for delivery in deliveries], oss_seq=oss_seq)
            for delivery in deliveries:
                delivery.journaled = True
        for delivery in deliveries:
            self._enqueue(delivery)
        return deliveries

    def _enqueue(self, delivery: Delivery) -> None:
        self._pending += 1
        self._idle.clear()
        self._queue.put_nowait(delivery)

    async def wait_drained(self) -> None:
        await self._idle.wait()

    def _finish(self, delivery: Delivery, *, ended: bool = True) -> None:
        """Count it done here; `ended` also acknowledges it in the journal (never to be delivered again)."""
        if ended and delivery.journaled and self._journal is not None:
            self._journal.end(delivery.request_id)
        self._pending -= 1
        if self._pending == 0:
            self._idle.set()

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            delivery = await self._queue.get()
            function = self._functions[delivery.function]
            if time.monotonic() - delivery.enqueued_at > function.spec.max_async_event_age_s:
                log.error(
                    "[%s] %s dropped: older than maxAsyncEventAgeInSeconds",
                    delivery.function,
                    delivery.source,
                )
                self.dropped.append(delivery)
                self._finish(delivery)
                continue
            delivery.attempt += 1
            started = time.monotonic()
            try:
                await loop.run_in_executor(self._executor, function.invoke, delivery.payload, delivery.request_id)
            except HandlerError as exc:
                self._record(delivery, started, str(exc))
                self._after_failure(delivery, function, exc)
            except Exception as exc:  # the executor itself failed (shutting down): do not lose count
                self._record(delivery, started, repr(exc))
                self._finish(delivery, ended=False)  # not run: the journal delivers it on the next start
            else:
                self._record(delivery, started, None)
                log.info(
                    "[%s] %s ok (attempt %d, %.2f s)",
                    delivery.function,
                    delivery.source,
                    delivery.attempt,
                    time.monotonic() - started,
                )
                self._finish(delivery)

    def _record(self, delivery: Delivery, started: float, error: str | None) -> None:
        self.records.append(
            DeliveryRecord(
                function=delivery.function,
                source=delivery.source,
                request_id=delivery.request_id,
                attempt=delivery.attempt,
                ok=error is None,
                error=error,
                seconds=time.monotonic() - started,
            )
        )

    def _after_failure(self, delivery: Delivery, function: LocalFunction, exc: HandlerError) -> None:
        retries_left = function.spec.max_async_retries - (delivery.attempt - 1)
        if retries_left <= 0:
            log.error(
                "[%s] %s failed after %d attempts, dropped: %s\n%s",
                delivery.function,
                delivery.source,
                delivery.attempt,
                exc,
                "".join(exc.stack_trace),
            )
            self.dropped.append(delivery)
            self._finish(delivery)
            return
        if delivery.journaled and self._journal is not None:
            self._journal.attempt_failed(delivery.request_id, delivery.attempt)
        delay = min(self._retry_max_delay, self._retry_base_delay * 2 ** (delivery.attempt - 1))
        log.warning(
            "[%s] %s failed (attempt %d), retrying in %.1f s: %s",
            delivery.function,
            delivery.source,
            delivery.attempt,
            delay,
            exc,
        )
        loop = asyncio.get_running_loop()
        timer: asyncio.TimerHandle

        def requeue() -> None:
            self._timers.discard(timer)
            self._queue.put_nowait(delivery)

        timer = loop.call_later(delay, requeue)
        self._timers.add(timer)
