"""The official openai SDK, unmodified, parses the emulator's stored-responses API."""

from __future__ import annotations

import openai
import pytest
from emulator_support import Emulator


@pytest.fixture
def client(emulator_reset: Emulator) -> openai.OpenAI:
    # max_retries=0: a failing answer must fail the test, not be retried into a pass.
    return openai.OpenAI(
        base_url=emulator_reset.url + "/compatible-mode/v1", api_key=emulator_reset.api_key, max_retries=0
    )


def test_create_retrieve_delete(client: openai.OpenAI, emulator_reset: Emulator) -> None:
    created = client.responses.create(model="qwen-plus", input="hello emulator", store=True)
    assert created.id.startswith("resp_")
    assert created.status == "completed"
    assert "hello emulator" in created.output_text
    assert created.usage is not None and created.usage.total_tokens > 0

    fetched = client.responses.retrieve(created.id)
    assert fetched.id == created.id
    assert fetched.output_text == created.output_text
    assert fetched.model == "qwen-plus"

    client.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.retrieve(created.id)
    assert f"Response with id '{created.id}' not found." in str(caught.value)


def test_unstored_responses_are_not_retrievable(client: openai.OpenAI) -> None:
    created = client.responses.create(model="qwen-plus", input="ephemeral", store=False)
    assert created.output_text
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)


def test_input_items_paginate_in_both_orders(client: openai.OpenAI) -> None:
    messages = [{"role": "user", "content": f"message {index}"} for index in range(5)]
    created = client.responses.create(model="qwen-plus", input=messages, store=True)  # type: ignore[arg-type]

    def texts(items: list[object]) -> list[str]:
        return [item.content[0].text for item in items]  # type: ignore[attr-defined]

    ascending = list(client.responses.input_items.list(created.id, order="asc", limit=2))
    assert texts(ascending) == [f"message {index}" for index in range(5)]  # the SDK followed 3 pages
    descending = client.responses.input_items.list(created.id, limit=2)
    assert texts(descending.data) == ["message 4", "message 3"]
    assert descending.has_more
    assert all(item.type == "message" and item.role == "user" for item in descending.data)


def test_invalid_request_is_a_bad_request(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError):
        client.responses.create(model="qwen-plus", input=[], store=True)
