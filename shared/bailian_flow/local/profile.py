"""Where the CLI finds the stack it talks to: a profile file that `bailian-flow dev` writes, or the environment.

The profile is JSON, mode 0600 (it holds the REST API's token): `api_url`, `api_token`, `oss_endpoint`, `bucket`,
`oss_region`, `access_key_id`, `access_key_secret`, `path_style`, `dashscope_base_url`. Its path is
`$BAILIAN_FLOW_PROFILE`, else `$XDG_CONFIG_HOME/bailian-flow/profile.json` (`~/.config/...` by default).
Environment variables override the profile field by field, so a cloud deployment needs no file at all.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

# profile field -> environment variable that overrides it
ENVIRONMENT = {
    "api_url": "BAILIAN_FLOW_API_URL",
    "api_token": "BAILIAN_FLOW_API_TOKEN",
    "oss_endpoint": "BAILIAN_FLOW_OSS_ENDPOINT",
    "bucket": "BAILIAN_FLOW_BUCKET",
    "oss_region": "BAILIAN_FLOW_OSS_REGION",
    "access_key_id": "ALIBABA_CLOUD_ACCESS_KEY_ID",
    "access_key_secret": "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
    "dashscope_base_url": "DASHSCOPE_BASE_URL",
}


@dataclass(frozen=True)
class Profile:
    api_url: str = ""
    api_token: str = ""
    oss_endpoint: str = ""
    bucket: str = "bailian-flow"
    oss_region: str = "cn-hangzhou"
    access_key_id: str = ""
    access_key_secret: str = ""
    path_style: bool = False
    dashscope_base_url: str = ""

    def __repr__(self) -> str:  # the token and the secret never show
        return f"Profile(api_url={self.api_url!r}, oss_endpoint={self.oss_endpoint!r}, bucket={self.bucket!r})"


def profile_path(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    if env.get("BAILIAN_FLOW_PROFILE"):
        return Path(env["BAILIAN_FLOW_PROFILE"])
    base = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else Path.home() / ".config"
    return base / "bailian-flow" / "profile.json"


def write_profile(profile: Profile, path: Path | None = None) -> Path:
    """Atomically, created 0600 so the token is never readable by others, even for an instant."""
    target = path or profile_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(asdict(profile), handle, indent=2)
    os.replace(temporary, target)
    return target


def remove_profile(expected_api_url: str, path: Path | None = None) -> None:
    """Remove the profile only if it still names this stack (another `dev` may have replaced it meanwhile)."""
    target = path or profile_path()
    try:
        if json.loads(target.read_text(encoding="utf-8")).get("api_url") == expected_api_url:
            target.unlink()
    except (OSError, ValueError, AttributeError):
        pass


def load_profile(environ: Mapping[str, str] | None = None) -> tuple[Profile, Path | None]:
    """The profile file (if readable) overlaid with the environment; also the file it came from, if any."""
    env = os.environ if environ is None else environ
    path = profile_path(env)
    values: dict[str, Any] = {}
    source: Path | None = None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raw = None
    if isinstance(raw, dict):
        known = {f.name for f in fields(Profile)}
        values.update({k: v for k, v in raw.items() if k in known and isinstance(v, (str, bool))})
        source = path
    values.update({name: env[variable] for name, variable in ENVIRONMENT.items() if env.get(variable)})
    return Profile(**values), source
