"""Outgoing notifications signed per Standard Webhooks (https://www.standardwebhooks.com).

`await Notifier.from_settings(settings).send("run.done", state, msg_id=f"{run_id}-{seq}")` never raises for a
delivery problem: it logs (without the secret) and returns False.
"""

from __future__ import annotations

from ._notifier import Notifier, redact_url
from ._signing import SECRET_PREFIX, secret_key, sign

__all__ = ["SECRET_PREFIX", "Notifier", "redact_url", "secret_key", "sign"]
