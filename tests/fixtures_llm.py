"""Fixtures for the fake OpenAI-compatible model server (imported by conftest.py).

`fake_llm` and `fake_llm_fallback` are two independent servers on 127.0.0.1
(each in its own thread); `llm_settings` points the primary at the first and the
fallback at the second, with a test API key and short timeouts.
"""

from __future__ import annotations

import pytest
from fake_openai import FakeOpenAI, unused_port

TEST_API_KEY = "sk-test-0123456789abcdefSECRET"


@pytest.fixture
def fake_llm():
    with FakeOpenAI(model="primary-model") as server:
        yield server


@pytest.fixture
def fake_llm_fallback():
    with FakeOpenAI(model="fallback-model") as server:
        yield server


@pytest.fixture
def refused_url() -> str:
    """A base URL where nothing listens (connection refused)."""
    return f"http://127.0.0.1:{unused_port()}/v1"


@pytest.fixture
def llm_settings(settings, fake_llm, fake_llm_fallback):
    return settings.with_overrides(
        llm_api_url=fake_llm.url,
        llm_api_key=TEST_API_KEY,
        llm_model="primary-model",
        llm_fallback_url=fake_llm_fallback.url,
        llm_fallback_model="fallback-model",
        llm_first_token_timeout=5.0,
        llm_read_timeout=5.0,
    )
