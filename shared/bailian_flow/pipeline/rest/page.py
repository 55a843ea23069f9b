"""The status page: one self-contained HTML file (no CDN: functions often run without internet), served by the
webhook function at `GET /`. It holds no data and needs no token to load; it asks for the token, keeps it in
sessionStorage (this tab only) and calls the REST API next to it."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

# Everything the page needs is inline; it talks only to its own origin.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; "
    "img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


@lru_cache(maxsize=1)
def _html() -> str:
    from importlib import resources  # only for the page itself, not for every API call

    return resources.files(__package__).joinpath("page.html").read_text(encoding="utf-8")


def page_response() -> dict[str, Any]:
    return {
        "statusCode": 200,
        "headers": {
            "Content-Type": "text/html; charset=utf-8",
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-cache",
        },
        "isBase64Encoded": False,
        "body": _html(),
    }


def wanted(event: Any) -> bool:
    """A browser asking for the root gets the page; probes and curl (no text/html in Accept) get the health JSON."""
    path = event.path or "/"
    accept = event.header("accept") or ""
    return bool(event.method.upper() == "GET" and path in ("/", "/index.html") and "text/html" in accept)
