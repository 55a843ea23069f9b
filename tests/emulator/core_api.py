"""A thin loopback HTTP helper for the emulator core tests (deliberately not the project's client)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
from emulator_support import TEST_API_KEY, Emulator, start_emulator


class Api:
    def __init__(self, session: aiohttp.ClientSession, url: str, api_key: str) -> None:
        self.session = session
        self.url = url
        self.api_key = api_key

    async def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        auth: bool = True,
    ) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.api_key}"} if auth else {}
        async with self.session.request(method, self.url + path, json=json, params=params, headers=headers) as response:
            return response.status, await response.json(content_type=None)

    async def native(self, method: str, path: str, **kwargs: Any) -> tuple[int, Any]:
        return await self.call(method, "/api/v1" + path, **kwargs)

    async def control(self, method: str, path: str, json: Any = None) -> Any:
        async with self.session.request(method, f"{self.url}/_emulator{path}", json=json) as response:
            assert response.status == 200, await response.text()
            return await response.json()

    async def advance(self, seconds: float) -> None:
        await self.control("POST", "/clock", {"advance": seconds})

    async def state(self) -> dict[str, dict[str, int]]:
        result: dict[str, dict[str, int]] = await self.control("GET", "/state")
        return result

    async def upload_file(self, content: bytes = b'{"messages": []}\n', name: str = "train.jsonl") -> str:
        form = aiohttp.FormData()
        form.add_field("files", content, filename=name, content_type="application/octet-stream")
        form.add_field("purpose", "fine-tune")
        async with self.session.post(
            f"{self.url}/api/v1/files", data=form, headers={"Authorization": f"Bearer {self.api_key}"}
        ) as response:
            body = await response.json()
            assert response.status == 200, body
            file_id: str = body["data"]["uploaded_files"][0]["file_id"]
            return file_id

    async def create_fine_tune(self, **body: Any) -> dict[str, Any]:
        if "training_file_ids" not in body and "training_datasets" not in body:
            body["training_file_ids"] = [await self.upload_file()]
        body.setdefault("model", "qwen3-14b")
        status, answer = await self.native("POST", "/fine-tunes", json=body)
        assert status == 200, answer
        output: dict[str, Any] = answer["output"]
        return output


@contextlib.contextmanager
def frozen_emulator(data_dir: Path, *extra: str) -> Iterator[Emulator]:
    """An emulator whose clock only moves when a test advances it, so lifecycle boundaries are exact."""
    process, url = start_emulator(data_dir, "--time-scale", "0.0001", *extra)
    try:
        yield Emulator(url=url, api_key=TEST_API_KEY, data_dir=data_dir)
    finally:
        process.terminate()
        process.wait(timeout=10)
