"""A throwaway FC app (s.yaml + tiny functions) for driving LocalStack in tests."""

from __future__ import annotations

import textwrap
from pathlib import Path

BUCKET = "local-test-bucket"

OSS_FUNCTION = """
import json, os, pathlib

def handler(event, context):
    out = pathlib.Path(os.environ["LOCAL_TEST_OUT"])
    assert isinstance(event, bytes)
    with open(out / "oss.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps({"event": json.loads(event), "request_id": context.request_id}) + "\\n")
    marker = out / "oss-failed-once"
    if not marker.exists():
        marker.touch()
        raise RuntimeError("first delivery fails on purpose")
    return {"ok": True}
"""

TIMER_FUNCTION = """
import json, os, pathlib

def handler(event, context):
    out = pathlib.Path(os.environ["LOCAL_TEST_OUT"])
    with open(out / "timer.jsonl", "a", encoding="utf-8") as f:
        f.write(event.decode("utf-8") + "\\n")
    return None
"""

HTTP_FUNCTION = """
import base64, json

def handler(event, context):
    request = json.loads(event)
    path = request["requestContext"]["http"]["path"]
    if path == "/boom":
        raise ValueError("boom")
    if path == "/binary":
        return {"statusCode": 201, "headers": {"Content-Type": "application/octet-stream"},
                "isBase64Encoded": True, "body": base64.b64encode(b"\\x00\\x01\\xff").decode()}
    return {"statusCode": 200, "headers": {"Content-Type": "application/json", "X-Echo": "yes"},
            "isBase64Encoded": False, "body": json.dumps({"event": request, "function": context.function.name})}
"""

ECHO_FUNCTION = """
import json, os, pathlib

def handler(event, context):
    body = json.loads(event)
    out = pathlib.Path(os.environ["LOCAL_TEST_OUT"])
    with open(out / "echo.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(body) + "\\n")
    if body.get("raise"):
        raise KeyError("asked to fail")
    return {"echo": body, "region": context.region, "token_set": bool(os.environ.get("BAILIAN_FLOW_API_TOKEN"))}
"""


def write_app(root: Path, out: Path, *, timer: str = "@every 1s") -> Path:
    for name, source in {
        "fn_oss": OSS_FUNCTION,
        "fn_timer": TIMER_FUNCTION,
        "fn_http": HTTP_FUNCTION,
        "fn_echo": ECHO_FUNCTION,
    }.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        (root / name / "index.py").write_text(textwrap.dedent(source), encoding="utf-8")
    s_yaml = f"""
edition: 3.0.0
name: local-test
vars:
  region: cn-shanghai
  bucket: ${{env('LOCAL_TEST_UNSET_BUCKET', '{BUCKET}')}}
  common:
    LOCAL_TEST_OUT: {out}
    BAILIAN_FLOW_BUCKET: ${{vars.bucket}}
    PYTHONPATH: /code/python
resources:
  oss_fn:
    component: fc3
    props:
      region: ${{vars.region}}
      functionName: fn_oss
      runtime: python3.12
      code: ./fn_oss
      handler: index.handler
      timeout: 60
      environmentVariables: ${{vars.common}}
      asyncInvokeConfig:
        maxAsyncRetryAttempts: 2
      triggers:
        - triggerName: datasets
          triggerType: oss
          sourceArn: acs:oss:${{vars.region}}:${{config('AccountID')}}:${{vars.bucket}}
          invocationRole: acs:ram::${{config('AccountID')}}:role/aliyunosseventnotificationrole
          triggerConfig:
            events: [oss:ObjectCreated:PutObject, oss:ObjectCreated:PostObject,
                     oss:ObjectCreated:CompleteMultipartUpload]
            filter: {{key: {{prefix: datasets/, suffix: .jsonl}}}}
  timer_fn:
    component: fc3
    props:
      region: ${{vars.region}}
      functionName: fn_timer
      runtime: python3.12
      code: ./fn_timer
      handler: index.handler
      environmentVariables: ${{vars.common}}
      triggers:
        - triggerName: tick
          triggerType: timer
          triggerConfig: {{cronExpression: '{timer}', enable: true, payload: 'poll'}}
  http_fn:
    component: fc3
    props:
      region: ${{vars.region}}
      functionName: fn_http
      runtime: python3.10
      code: ./fn_http
      handler: index.handler
      environmentVariables: ${{vars.common}}
      triggers:
        - triggerName: api
          triggerType: http
          triggerConfig: {{authType: anonymous, methods: [GET, POST]}}
  echo_fn:
    component: fc3
    props:
      region: ${{vars.region}}
      functionName: fn_echo
      runtime: python3.12
      code: ./fn_echo
      handler: index.handler
      environmentVariables: ${{vars.common}}
      asyncInvokeConfig:
        maxAsyncRetryAttempts: 1
"""
    path = root / "s.yaml"
    path.write_text(s_yaml, encoding="utf-8")
    return path
