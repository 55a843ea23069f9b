"""The `context` argument FC passes to a handler, for local invocations, built from the s.yaml entry.

python3.12 contexts carry no credentials (the handler reads `ALIBABA_CLOUD_*` from the environment, which the
local stack sets); python3.10 contexts carry them in `context.credentials`, taken from the same variables.
"""

from __future__ import annotations

import os

from bailian_flow.fc import Credentials, FCContext, make_context
from bailian_flow.fc._context import Runtime
from bailian_flow.local.spec import LOCAL_ACCOUNT_ID, FunctionSpec


def make_local_context(spec: FunctionSpec, region: str, request_id: str | None = None) -> FCContext:
    runtime: Runtime = "python3.10" if spec.runtime == "python3.10" else "python3.12"
    credentials = None
    if runtime == "python3.10":
        credentials = Credentials(
            access_key_id=os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_ID", ""),
            access_key_secret=os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_SECRET", ""),
            security_token=os.environ.get("ALIBABA_CLOUD_SECURITY_TOKEN") or None,
        )
    return make_context(
        spec.name,
        runtime,
        request_id=request_id,
        credentials=credentials,
        timeout=int(spec.timeout_s),
        memory=spec.memory_mb,
        handler=spec.handler,
        region=region,
        account_id=os.environ.get("FC_ACCOUNT_ID", LOCAL_ACCOUNT_ID),
    )
