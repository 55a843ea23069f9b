"""FC's invoke API, locally: `POST /2023-03-30/functions/{name}/invocations` with the raw event as body.

`x-fc-invocation-type: Async` answers 202 and hands the event to the async dispatcher (retries included);
`Sync` (the default) runs the handler and answers with its result, or 500 with FC's error body and
`x-fc-error-type: UnhandledInvocationError` when it raises.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aiohttp import web

from bailian_flow.local.runner import Dispatcher, HandlerError, LocalFunction

INVOKE_PATH = "/2023-03-30/functions/{name}/invocations"


def build_invoke_app(
    functions: Mapping[str, LocalFunction], dispatcher: Dispatcher, executor: ThreadPoolExecutor
) -> web.Application:
    async def invoke(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        function = functions.get(name)
        if function is None:
            return web.json_response(
                {"Code": "FunctionNotFound", "Message": f"function {name!r} does not exist"}, status=404
            )
        payload = await request.read()
        mode = request.headers.get("x-fc-invocation-type", "Sync").lower()
        if mode == "async":
            delivery = dispatcher.submit(name, payload, "invoke")
            return web.Response(status=202, headers={"x-fc-request-id": delivery.request_id})
        if mode != "sync":
            return web.json_response(
                {"Code": "InvalidArgument", "Message": f"x-fc-invocation-type {mode!r}"}, status=400
            )
        request_id = str(uuid.uuid4())
        headers = {"x-fc-request-id": request_id}
        loop = asyncio.get_running_loop()
        try:
            result = await loop.run_in_executor(executor, function.invoke, payload, request_id)
        except HandlerError as exc:
            return web.json_response(
                exc.body(), status=500, headers={**headers, "x-fc-error-type": "UnhandledInvocationError"}
            )
        return _result_response(result, headers)

    app = web.Application(client_max_size=32 * 1024 * 1024)  # FC's sync payload limit
    app.router.add_post(INVOKE_PATH, invoke)
    return app


def _result_response(result: Any, headers: dict[str, str]) -> web.Response:
    if result is None:
        return web.Response(status=200, headers=headers)
    if isinstance(result, bytes):
        return web.Response(body=result, status=200, headers=headers)
    if isinstance(result, str):
        return web.Response(text=result, status=200, headers=headers)
    return web.Response(text=json.dumps(result), content_type="application/json", headers=headers)
