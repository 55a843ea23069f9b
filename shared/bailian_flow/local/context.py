"""The `context` argument FC passes to a handler, for local invocations.

python3.12 carries no credentials (the handler reads `ALIBABA_CLOUD_*` from the environment); python3.10
carries them in `context.credentials`. Both shapes are built from the function's s.yaml entry.
"""

from __future__ import annotations

import logging
import os
import uuid
from types import SimpleNamespace
from typing import Any

from bailian_flow.local.spec import LOCAL_ACCOUNT_ID, FunctionSpec


def make_local_context(spec: FunctionSpec, region: str, request_id: str | None = None) -> Any:
    request_id = request_id or str(uuid.uuid4())
    account_id = os.environ.get("FC_ACCOUNT_ID", LOCAL_ACCOUNT_ID)
    function = SimpleNamespace(
        name=spec.name,
        handler=spec.handler,
        memory=spec.memory_mb,
        timeout=int(spec.timeout_s),
        version_id="",
        qualifier="LATEST",
    )
    context = SimpleNamespace(
        request_id=request_id,
        function=function,
        region=region,
        account_id=account_id,
        log_project="",
        log_store="",
        logger=logging.getLogger(f"fc.{spec.name}"),
    )
    if spec.runtime == "python3.10":
        context.credentials = SimpleNamespace(
            access_key_id=os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_ID", ""),
            access_key_secret=os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_SECRET", ""),
            security_token=os.environ.get("ALIBABA_CLOUD_SECURITY_TOKEN", ""),
        )
        context.service = SimpleNamespace(name="", log_project="", log_store="", qualifier="LATEST", version_id="")
    return context
