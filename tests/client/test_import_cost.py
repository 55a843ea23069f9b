"""`import bailian_flow.client` stays light: names and resource families load on first use."""

from __future__ import annotations

import subprocess
import sys


def _modules_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_package_import_loads_no_model_nor_resource() -> None:
    loaded = _modules_after("import bailian_flow.client")
    assert not {m for m in loaded if m.startswith("bailian_flow.client.")}
    assert "pydantic.main" not in loaded


def test_client_class_loads_no_resource_until_used() -> None:
    loaded = _modules_after("from bailian_flow.client import BailianClient")
    assert "bailian_flow.client._base" in loaded
    assert not {m for m in loaded if m.startswith(("bailian_flow.client.resources.", "bailian_flow.client.models."))}
    used = _modules_after("from bailian_flow.client import BailianClient\nBailianClient(api_key='k').fine_tunes")
    assert "bailian_flow.client.resources.fine_tunes" in used
    assert "bailian_flow.client.resources.deployments" not in used


def test_every_exported_name_resolves() -> None:
    import bailian_flow.client as package

    for name in package.__all__:
        assert getattr(package, name) is not None
