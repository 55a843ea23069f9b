"""Our V4 signature against the real peer: `alibabacloud_oss_v2.signer.SignerV4` signs the same request at the
same instant, and every header it adds must be the one we add (the URL too: the SDK's own composition)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

import pytest
from alibabacloud_oss_v2.credentials import Credentials
from alibabacloud_oss_v2.signer import SignerV4
from alibabacloud_oss_v2.types import HttpRequest, SigningContext

from bailian_flow.store import OssCredentials
from bailian_flow.store._oss_auth import encode_query, sign_v4
from bailian_flow.store._oss_http import OssHttp

NOW = dt.datetime(2026, 12, 1, 1, 2, 3, tzinfo=dt.timezone.utc)
PLAIN = OssCredentials("LTAI5tExampleId", "example-secret/with+chars=")
STS = OssCredentials("STS.NUexample", "sts-secret", "CAIS-token/with+slash==")


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    key: str | None
    params: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    credentials: OssCredentials = PLAIN
    region: str = "cn-hangzhou"
    path_style: bool = False


CASES = [
    Case("plain get", "GET", "runs/r1/00000000.json"),
    Case("space", "GET", "datasets/with space/train set.jsonl"),
    Case("unicode", "PUT", "datasets/数据/训练 集.jsonl", headers={"Content-Type": "application/jsonl"}),
    Case("plus tilde percent", "HEAD", "datasets/a+b~c%20d%.jsonl"),
    Case("reserved characters", "GET", "k/?#[]@!$&'()*,;=:"),
    Case("control characters", "GET", "k/\x01tab\there\x7f"),
    Case(
        "create-only put with metadata",
        "PUT",
        "runs/r1/00000001-received.json",
        headers={
            "Content-Type": "application/json",
            "Content-MD5": "1B2M2Y8AsgTpgAmY7PhCfg==",
            "x-oss-forbid-overwrite": "true",
            "x-oss-meta-flow-model": "qwen3-8b",
            "x-oss-meta-flow-note": "a b+c",
            "Accept-Encoding": "identity",
        },
    ),
    Case(
        "ranged read pinned",
        "GET",
        "datasets/big.bin",
        headers={"Range": "bytes=0-1023", "If-Match": '"ABC"', "x-oss-range-behavior": "standard"},
    ),
    Case(
        "list v2",
        "GET",
        None,
        params={
            "list-type": "2",
            "max-keys": "1000",
            "encoding-type": "url",
            "prefix": "datasets/数据 a+b/",
            "start-after": "runs/r1/~",
            "continuation-token": "Y29udGludWU6cnVucy9yMQ==",
        },
    ),
    Case("list with empty prefix value", "GET", None, params={"list-type": "2", "prefix": ""}),
    Case("start multipart", "POST", "datasets/out.jsonl", params={"uploads": ""}),
    Case(
        "upload part",
        "PUT",
        "datasets/out.jsonl",
        params={"partNumber": "2", "uploadId": "0004B9894A22E5B1888A1E29F823/+="},
    ),
    Case("sts token", "GET", "runs/r1/00000000.json", credentials=STS),
    Case("sts token, other region", "DELETE", "active/r1", credentials=STS, region="ap-southeast-1"),
    Case("path style", "GET", "datasets/with space.jsonl", path_style=True),
    Case("path style list", "GET", None, params={"list-type": "2", "prefix": "a b"}, path_style=True),
]


def sdk_url(case: Case, bucket: str, host: str) -> str:
    """The URL as `alibabacloud_oss_v2._client` composes it: `_build_url`, then `urlencode(quote_via=quote)`."""
    paths = [bucket] if case.path_style else []
    if case.key is None and case.path_style:
        paths.append("")
    if case.key is not None:
        paths.append(quote(case.key))
    netloc = host if case.path_style else f"{bucket}.{host}"
    url = f"https://{netloc}/{'/'.join(paths)}"
    query = urlencode(case.params, quote_via=quote)
    return f"{url}?{query}" if query else url


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_authorization_matches_the_sdk_signer(case: Case) -> None:
    bucket, host = "flow-bucket", f"oss-{case.region}.aliyuncs.com"
    http = OssHttp(bucket, f"https://{host}", path_style=case.path_style, region=case.region, credentials=lambda: None)
    query = encode_query(case.params)
    ours = dict(case.headers)
    sign_v4(case.method, bucket, case.key, query, ours, case.credentials, case.region, NOW)

    url = sdk_url(case, bucket, host)
    assert http.url(case.key, query) == url
    request = HttpRequest(case.method, url, headers=dict(case.headers))
    creds = case.credentials
    context = SigningContext(
        product="oss",
        region=case.region,
        bucket=bucket,
        key=case.key,
        request=request,
        credentials=Credentials(creds.access_key_id, creds.access_key_secret, creds.security_token),
        signing_time=NOW,
    )
    SignerV4().sign(context)

    assert ours["Authorization"] == request.headers["Authorization"]
    for name in ("x-oss-date", "x-oss-content-sha256", "x-oss-security-token", "Date"):
        assert ours.get(name) == request.headers.get(name), name
    assert ours["Authorization"].startswith(
        f"OSS4-HMAC-SHA256 Credential={creds.access_key_id}/20261201/{case.region}/oss/aliyun_v4_request,Signature="
    )


def test_signature_changes_with_whatever_is_signed() -> None:
    """A signer that ignored a signed part would still agree with itself: each part must move the signature."""

    def signature(**change: object) -> str:
        args: dict[str, object] = {
            "method": "PUT",
            "bucket": "b",
            "key": "k",
            "query": "",
            "headers": {"x-oss-meta-a": "1", "Content-Type": "text/plain"},
            "credentials": PLAIN,
            "region": "cn-hangzhou",
            "now": NOW,
        }
        args.update(change)
        headers = dict(args.pop("headers"))  # type: ignore[call-overload]
        sign_v4(headers=headers, **args)  # type: ignore[arg-type]
        return headers["Authorization"]

    base = signature()
    variants = [
        signature(method="GET"),
        signature(bucket="c"),
        signature(key="k2"),
        signature(query="uploads="),
        signature(headers={"x-oss-meta-a": "2", "Content-Type": "text/plain"}),
        signature(headers={"x-oss-meta-a": "1", "Content-Type": "text/csv"}),
        signature(credentials=OssCredentials(PLAIN.access_key_id, "other-secret")),
        signature(region="cn-beijing"),
        signature(now=NOW + dt.timedelta(seconds=1)),
    ]
    assert len({base, *variants}) == len(variants) + 1
    # Headers outside the signed set (not x-oss-*, Content-Type, Content-MD5) do not count, as in the SDK.
    assert signature(headers={"x-oss-meta-a": "1", "Content-Type": "text/plain", "Range": "bytes=0-1"}) == base
