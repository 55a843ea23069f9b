"""A run's finish-callback path: `/callbacks/batch/<run_id>/<token>`, where the token is an HMAC of the run id
under `BAILIAN_FLOW_CALLBACK_SECRET`, so only a caller we gave the path to can make the webhook poll a run now."""

from __future__ import annotations

import hashlib
import hmac


def callback_token(secret: str, run_id: str) -> str:
    """The unguessable part of a run's callback path: an HMAC of the run id."""
    return hmac.new(secret.encode(), f"batch-callback:{run_id}".encode(), hashlib.sha256).hexdigest()[:40]


def callback_matches(secret: str, run_id: str, token: str) -> bool:
    return hmac.compare_digest(callback_token(secret, run_id).encode(), token.encode())
