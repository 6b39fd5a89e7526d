"""The model router against a real HTTP server on 127.0.0.1 speaking the OpenAI streaming protocol."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from fixtures_llm import TEST_API_KEY

from tui.services.events import Reset, Token
from tui.services.llm import (
    MAX_ANSWER_CHARS,
    OFFLINE_MODEL,
    Completion,
    LLMError,
    ModelRouter,
    clean_text,
    digest_tokens,
    offline_digest,
)

MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "what is parallel compression?"}]
SCRIPT = ["Hello", " world", " [1]", "\n\n- ", "done."]
FALLBACK_SCRIPT = ["Fallback", " answer", " [2]."]


async def collect(router: ModelRouter, **kw):
    run = Completion()
    events = []
    async with contextlib.aclosing(
        router.stream(MESSAGES, temperature=kw.pop("temperature", 0.4), completion=run, **kw)
    ) as stream:
        async for event in stream:
            events.append(event)
    return events, run


def text_of(events) -> str:
    return "".join(e.text for e in events if isinstance(e, Token))


def after_reset(events) -> list:
    idx = max((i for i, e in enumerate(events) if isinstance(e, Reset)), default=-1)
    return events[idx + 1 :]


async def test_normal_stream_and_request_body(llm_settings, fake_llm, fake_llm_fallback):
    fake_llm.set_mode("normal", tokens=SCRIPT)
    router = ModelRouter(llm_settings)
    events, run = await collect(router, temperature=0.42, max_tokens=2048)
    assert text_of(events) == "".join(SCRIPT) == run.text
    assert all(isinstance(e, Token) for e in events)
    assert run.model == "primary-model" and not run.fallback_used and run.reached_model
    assert run.usage == {"prompt_tokens": 7 + 6, "completion_tokens": 5, "total_tokens": 18}
    body = fake_llm.last_body
    assert body["model"] == "primary-model"
    assert body["messages"] == MESSAGES
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["temperature"] == 0.42
    assert body["max_tokens"] == 2048
    assert fake_llm.chat_requests[-1].headers["authorization"] == f"Bearer {TEST_API_KEY}"
    assert fake_llm_fallback.chat_requests == []
    await router.aclose()


async def test_clients_use_no_retries_and_the_configured_timeouts(llm_settings):
    router = ModelRouter(llm_settings.with_overrides(llm_connect_timeout=0.4, llm_read_timeout=7.0))
    for ep in router.endpoints:
        assert ep.client.max_retries == 0
        assert ep.client.timeout.connect == 0.4
        assert ep.client.timeout.read == 7.0
    assert [ep.model for ep in router.endpoints] == ["primary-model", "fallback-model"]
    await router.aclose()


async def test_no_usage_chunk_leaves_usage_unknown(llm_settings, fake_llm):
    fake_llm.set_mode("no_usage", tokens=SCRIPT)
    router = ModelRouter(llm_settings)
    events, run = await collect(router)
    assert run.text == "".join(SCRIPT) and run.usage is None
    await router.aclose()


BEFORE_TOKENS = [
    ("error500", {}),
    ("error429", {}),
    ("refused", {}),
    ("stall", {}),
    ("cut", {"after": 0}),
    ("drop", {"after": 0}),
    ("malformed", {"after": 0}),
]


@pytest.mark.parametrize(("mode", "options"), BEFORE_TOKENS, ids=[m for m, _ in BEFORE_TOKENS])
async def test_primary_failing_before_any_token_falls_back_silently(
    llm_settings, fake_llm, fake_llm_fallback, mode, options
):
    fake_llm.set_mode(mode, tokens=SCRIPT, **options)
    fake_llm_fallback.set_mode("normal", tokens=FALLBACK_SCRIPT)
    router = ModelRouter(llm_settings.with_overrides(llm_first_token_timeout=1.0))
    events, run = await collect(router)
    assert not any(isinstance(e, Reset) for e in events)
    assert text_of(events) == "".join(FALLBACK_SCRIPT) == run.text
    assert run.fallback_used and run.model == "fallback-model"
    assert fake_llm_fallback.last_body["messages"] == MESSAGES
    assert len(run.failures) == 1 and run.failures[0].startswith("primary model 'primary-model'")
    await router.aclose()
    fake_llm.set_mode("normal")


AFTER_TOKENS = [
    ("stall_after", {"after": 2}),
    ("cut", {"after": 2}),
    ("drop", {"after": 2}),
    ("malformed", {"after": 2}),
]


@pytest.mark.parametrize(("mode", "options"), AFTER_TOKENS, ids=[m for m, _ in AFTER_TOKENS])
async def test_primary_failing_after_tokens_resets_then_streams_the_whole_fallback_answer(
    llm_settings, fake_llm, fake_llm_fallback, mode, options
):
    fake_llm.set_mode(mode, tokens=SCRIPT, **options)
    fake_llm_fallback.set_mode("normal", tokens=FALLBACK_SCRIPT)
    router = ModelRouter(llm_settings.with_overrides(llm_read_timeout=1.0))
    events, run = await collect(router)
    resets = [e for e in events if isinstance(e, Reset)]
    assert len(resets) == 1 and resets[0].model == "fallback-model"
    assert "primary" in resets[0].reason
    before = events[: events.index(resets[0])]
    assert text_of(before) == "".join(SCRIPT[:2])
    # The fallback's whole answer, once: nothing of the primary's partial text is repeated.
    assert text_of(after_reset(events)) == "".join(FALLBACK_SCRIPT) == run.text
    assert run.fallback_used and run.model == "fallback-model"
    await router.aclose()


@pytest.mark.parametrize("mode", ["error500", "error429", "stall", "cut", "drop", "malformed", "refused"])
async def test_both_failing_is_one_clear_error_without_key_or_trace(
    llm_settings, fake_llm, fake_llm_fallback, mode
):
    fake_llm.set_mode(mode, after=1)
    fake_llm_fallback.set_mode("error500")
    router = ModelRouter(llm_settings.with_overrides(llm_first_token_timeout=1.0, llm_read_timeout=1.0))
    run = Completion()
    with pytest.raises(LLMError) as info:
        async for _ in router.stream(MESSAGES, temperature=0.3, completion=run):
            pass
    message = str(info.value)
    assert "primary model 'primary-model'" in message
    assert "fallback model 'fallback-model'" in message and "HTTP 500" in message
    assert TEST_API_KEY not in message and "Traceback" not in message and "\n" not in message
    await router.aclose()


async def test_failure_messages_name_what_failed(llm_settings, fake_llm, fake_llm_fallback, refused_url):
    cases = {
        "error500": "server error (HTTP 500)",
        "error429": "rate limited (HTTP 429)",
        "stall": "no token within 1 s (first-token timeout)",
        "cut": "the stream ended before [DONE]",
        "drop": "the connection dropped mid-answer",
        "malformed": "malformed chunk (not JSON)",
        "refused": "could not connect",
    }
    fake_llm_fallback.set_mode("error429")
    for mode, words in cases.items():
        fake_llm.set_mode(mode, after=0)
        router = ModelRouter(llm_settings.with_overrides(llm_first_token_timeout=1.0))
        with pytest.raises(LLMError, match="rate limited") as info:
            await collect(router)
        assert words in str(info.value), mode
        await router.aclose()


async def test_no_fallback_configured(settings, fake_llm):
    fake_llm.set_mode("error500")
    router = ModelRouter(settings.with_overrides(llm_api_url=fake_llm.url, llm_model="m"))
    assert router.fallback_model is None
    with pytest.raises(LLMError, match="no fallback model is configured"):
        await collect(router)
    await router.aclose()


async def test_fallback_model_alone_uses_the_primary_url(settings, fake_llm):
    router = ModelRouter(settings.with_overrides(llm_api_url=fake_llm.url, llm_fallback_model="small"))
    assert [(e.role, e.model) for e in router.endpoints] == [("primary", "gpt-4o-mini"), ("fallback", "small")]
    fake_llm.set_mode("error429")
    with pytest.raises(LLMError):
        await collect(router)
    assert [r.body["model"] for r in fake_llm.chat_requests] == ["gpt-4o-mini", "small"]
    await router.aclose()


async def test_unreachable_primary_falls_back(settings, refused_url, fake_llm_fallback):
    fake_llm_fallback.set_mode("normal", tokens=FALLBACK_SCRIPT)
    router = ModelRouter(settings.with_overrides(
        llm_api_url=refused_url, llm_fallback_url=fake_llm_fallback.url, llm_fallback_model="fb"))
    events, run = await collect(router)
    assert run.text == "".join(FALLBACK_SCRIPT) and run.fallback_used and run.model == "fb"
    assert "could not connect" in run.failures[0]
    await router.aclose()


async def test_a_refused_request_is_not_retried_on_the_fallback_and_the_key_is_scrubbed(
    llm_settings, fake_llm, fake_llm_fallback
):
    fake_llm.set_mode("error401")
    router = ModelRouter(llm_settings)
    with pytest.raises(LLMError) as info:
        await collect(router)
    message = str(info.value)
    assert "HTTP 401" in message and "Incorrect API key provided" in message
    assert TEST_API_KEY not in message and "0123456789abcdef" not in message
    assert fake_llm_fallback.chat_requests == []
    await router.aclose()


async def test_control_characters_are_stripped_from_tokens(llm_settings, fake_llm):
    fake_llm.set_mode("normal", tokens=["\x1b[31mred\x1b[0m", " bell\x07", "\r\nline", "\ttab\n",
                                        "\x9b2J", "nul\x00", "\x7fdel"])
    router = ModelRouter(llm_settings)
    events, run = await collect(router)
    assert run.text == "[31mred[0m bell\nline\ttab\n2Jnuldel"
    assert all("\x1b" not in e.text for e in events)
    await router.aclose()


def test_clean_text_keeps_newlines_and_tabs():
    assert clean_text("a\nb\tc\x1b\x85\u200bd") == "a\nb\tc\u200bd"


async def test_an_enormous_answer_is_capped_and_the_stream_closed(llm_settings, fake_llm):
    fake_llm.set_mode("normal", tokens=["word "], count=200_000)
    router = ModelRouter(llm_settings)
    events, run = await collect(router)
    assert run.truncated and len(run.text) == MAX_ANSWER_CHARS
    assert sum(len(e.text) for e in events) == MAX_ANSWER_CHARS
    assert await fake_llm.await_for(lambda: fake_llm.chat_requests[-1].client_closed)
    assert fake_llm.chat_requests[-1].tokens_sent < 200_000
    await router.aclose()


async def test_closing_the_consumer_closes_the_http_stream(llm_settings, fake_llm):
    fake_llm.set_mode("slow", tokens=["tick "], count=10_000, rate=200)
    router = ModelRouter(llm_settings)
    run = Completion()
    stream = router.stream(MESSAGES, temperature=0.3, completion=run)
    seen = 0
    async for _ in stream:
        seen += 1
        if seen == 3:
            break
    await stream.aclose()
    assert await fake_llm.await_for(lambda: fake_llm.chat_requests[-1].client_closed)
    assert not fake_llm.chat_requests[-1].completed
    await router.aclose()


async def test_cancelling_the_consuming_task_closes_the_http_stream(llm_settings, fake_llm):
    fake_llm.set_mode("slow", tokens=["tick "], count=10_000, rate=200)
    router = ModelRouter(llm_settings)
    run = Completion()
    got_tokens = asyncio.Event()

    async def consume():
        async for _ in router.stream(MESSAGES, temperature=0.3, completion=run):
            got_tokens.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(got_tokens.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await fake_llm.await_for(lambda: fake_llm.chat_requests[-1].client_closed)
    assert run.text.startswith("tick") and run.reached_model
    await router.aclose()


def test_no_model_configured_means_no_endpoints(settings):
    router = ModelRouter(settings)
    assert not router.configured and router.primary_model == OFFLINE_MODEL


def test_offline_digest_cites_each_sentence():
    items = [
        {"title": "Parallel Compression", "summary": "Blend a crushed copy under the dry signal.",
         "section_body": "Send the drums to an aux. Crush the aux with a fast compressor at 10:1. "
                         "Then blend the parallel compression return under the dry bus."},
        {"title": "Sidechain", "summary": "Duck the pad under the kick.",
         "section_body": "- Key the compressor from the kick.\n- Use a fast release."},
        {"title": "Empty", "summary": "", "section_body": ""},
    ]
    text = offline_digest("how do I blend parallel compression", items)
    lines = text.splitlines()
    assert lines[0].startswith("*No model is configured")
    bullets = [line for line in lines if line.startswith("- ")]
    assert bullets[0] == (
        "- **Parallel Compression**: Then blend the parallel compression return under the dry bus. [1]"
    )
    assert bullets[1].endswith("[2]") and len(bullets) == 2
    assert "".join(digest_tokens(text)) == text


def test_offline_digest_without_sources():
    assert "nothing on this question" in offline_digest("anything", [])


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        ("[1, 2]", "not an object"),
        ('{"choices": "nope"}', "choices is not a list"),
        ('{"choices": ["x"]}', "a choice is not an object"),
        ('{"choices": [{"delta": "text"}]}', "delta is not an object"),
        ('{"choices": [{"delta": {"content": 5}}]}', "content is not text"),
        ('{"error": {"message": "overloaded"}}', "the server reported an error mid-stream: overloaded"),
        ("not json at all", "not JSON"),
    ],
)
async def test_malformed_chunks_are_a_failure_of_that_model(llm_settings, fake_llm, fake_llm_fallback, bad, words):
    fake_llm.set_mode("malformed", tokens=SCRIPT, after=1, bad=bad)
    fake_llm_fallback.set_mode("normal", tokens=FALLBACK_SCRIPT)
    router = ModelRouter(llm_settings)
    events, run = await collect(router)
    assert words in run.failures[0]
    assert sum(isinstance(e, Reset) for e in events) == 1
    assert run.text == "".join(FALLBACK_SCRIPT)
    await router.aclose()


async def test_harmless_chunk_shapes_are_accepted(llm_settings, fake_llm):
    # A chunk without choices, a choice without delta, null content: nothing to show, no failure.
    fake_llm.set_mode("malformed", tokens=SCRIPT, after=1, bad='{"choices": [{"delta": {"content": null}}]}')
    router = ModelRouter(llm_settings)
    events, run = await collect(router)
    assert run.text == "".join(SCRIPT) and not run.fallback_used
    await router.aclose()


async def test_an_empty_answer_falls_back(llm_settings, fake_llm, fake_llm_fallback):
    fake_llm.set_mode("normal", tokens=[""])
    fake_llm_fallback.set_mode("normal", tokens=FALLBACK_SCRIPT)
    router = ModelRouter(llm_settings)
    events, run = await collect(router)
    assert run.fallback_used and "empty answer" in run.failures[0]
    assert not any(isinstance(e, Reset) for e in events)
    await router.aclose()


async def test_cancelling_while_waiting_for_the_first_token_closes_the_connection(llm_settings, fake_llm):
    fake_llm.set_mode("stall")
    router = ModelRouter(llm_settings.with_overrides(llm_first_token_timeout=30.0))

    async def consume():
        async for _ in router.stream(MESSAGES, temperature=0.3, completion=Completion()):
            pass

    task = asyncio.create_task(consume())
    assert await fake_llm.await_for(lambda: bool(fake_llm.chat_requests))
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await fake_llm.await_for(lambda: fake_llm.chat_requests[-1].client_closed)
    await router.aclose()


def test_offline_digest_prefers_statements_on_the_rarer_terms():
    items = [
        {"title": "Club Mastering", "section_heading": "Top end",
         "section_body": "Do vocals or leads vanish on harsh systems? "
                         "Tame harsh hats with a dynamic EQ band around 6–9 kHz."},
        {"title": "De-essing", "section_heading": "Locating sibilance",
         "section_body": "Vocals sit in the middle of the mix. "
                         "Sibilance on vocals lives between 5 and 10 kHz; a de-esser tames it."},
    ]
    text = offline_digest("how do I tame harsh sibilance on vocals", items)
    assert "vanish" not in text  # a question is not an answer
    assert "- **De-essing — Locating sibilance**: Sibilance on vocals lives between 5 and 10 kHz" in text
    assert "- **Club Mastering — Top end**: Tame harsh hats" in text


def test_offline_digest_never_quotes_a_sentence_twice():
    item = {"title": "T", "section_heading": "H", "section_body": "Compress the drum bus at 4:1 gently."}
    text = offline_digest("compress drums", [item, dict(item)])
    assert text.count("Compress the drum bus") == 1
