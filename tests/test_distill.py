"""Distillation against the loopback model server: every page checked before it is kept."""

from __future__ import annotations

import copy
import json

import pytest
from fixtures_llm import TEST_API_KEY
from sqlalchemy import select

from tui.db.models import ChatUsageLog
from tui.materials.model import TimedSentence
from tui.services.distill import (
    DistillCache,
    Distiller,
    Transcript,
    check_profile,
    parse_json_object,
    validate_page,
)

# A drum-bus tutorial as auto-captions give it: lower case, no punctuation, timed sentences.
SAID = [
    (0.0, 6.5, "what's up everybody today we're doing parallel compression on the drum bus"),
    (6.5, 14.0, "first make a new return track and call it smash"),
    (14.0, 24.0, "put a compressor on the return with the ratio at 8 to 1"),
    (24.0, 33.0, "set the attack to 10 milliseconds so the transients still come through"),
    (33.0, 42.0, "and the release around 100 milliseconds so it pumps with the groove"),
    (42.0, 58.0, "send the kick the snare and the hats to the smash return at the same level"),
    (60.0, 72.0, "now pull the threshold down until you get like 12 db of gain reduction"),
    (72.0, 84.0, "it should sound totally crushed on its own and that's fine"),
    (84.0, 98.0, "the crushed return is what gives the drums weight when we blend it in later"),
    (98.0, 118.0, "if the cymbals get harsh here pull the hats send down a little"),
    (120.0, 134.0, "after the compressor add an eq and cut everything below 80 hertz"),
    (134.0, 148.0, "then boost around 5 khz by 3 db for some snap on the snare"),
    (148.0, 164.0, "cutting the low end keeps the crushed kick from muddying the mix"),
    (164.0, 178.0, "the boost brings the snap back that the compressor squashed"),
    (180.0, 194.0, "bring the return fader all the way down then slowly push it up"),
    (194.0, 208.0, "stop around minus ten db where the drums get thicker but still punch"),
    (208.0, 222.0, "mute and unmute the return to check that the blend really helps"),
    (222.0, 236.0, "that's parallel compression on the drum bus see you in the next one"),
]
DURATION = 240.0


def transcript(key: str = "drum-bus-smash") -> Transcript:
    return Transcript(key=key, creator_slug="kaito", creator_name="Kaito", title="SMASH your drums",
                      sentences=[TimedSentence(a, b, t) for a, b, t in SAID], duration=DURATION)


VALID = {
    "title": "Parallel compression on the drum bus",
    "summary": "A crushed return track blended under the drums: compressor at 8:1, "
               "12 dB of gain reduction, an EQ after it, then the fader pushed up slowly.",
    "tags": ["parallel compression", "drum bus", "compressor"],
    "topic_category": "Mixing",
    "sections": [
        {"heading": "Set up the smash return", "start_time": 6.5, "end_time": 58.0,
         "body": "Make a new return track called smash and put a compressor on the return "
                 "with the ratio at 8:1, the attack at 10 ms so the transients still come "
                 "through, and the release around 100 ms so it pumps with the groove. Send "
                 "the kick, the snare and the hats to the return at the same level."},
        {"heading": "Crush it", "start_time": 60.0, "end_time": 118.0,
         "body": "Pull the threshold down until you get 12 dB of gain reduction. It should "
                 "sound totally crushed on its own: the crushed return gives the drums weight. "
                 "If the cymbals get harsh, pull the hats send down."},
        {"heading": "EQ after the compressor", "start_time": 120.0, "end_time": 178.0,
         "body": "Add an EQ after the compressor, cut everything below 80 Hz and boost around "
                 "5 kHz by 3 dB for snap on the snare. Cutting the low end keeps the crushed "
                 "kick from muddying the mix."},
        {"heading": "Blend", "start_time": 180.0, "end_time": 236.0,
         "body": "Bring the return fader all the way down, then slowly push it up and stop "
                 "around -10 dB, where the drums get thicker but still punch. Mute and unmute "
                 "the return to check the blend."},
    ],
}


def page(**changes) -> dict:
    out = copy.deepcopy(VALID)
    for key, value in changes.items():
        if key.startswith("section"):
            out["sections"][int(key[-1])].update(value)
        else:
            out[key] = value
    return out


def text(value: dict) -> str:
    return json.dumps(value)


@pytest.fixture
def solo_settings(settings, fake_llm):
    """The primary model alone (no fallback): 429s reach the distiller's back-off."""
    return settings.with_overrides(llm_api_url=fake_llm.url, llm_api_key=TEST_API_KEY,
                                   llm_model="primary-model", llm_read_timeout=10.0)


@pytest.fixture
async def distiller(solo_settings, tmp_path):
    d = Distiller(solo_settings, cache=DistillCache(tmp_path / "cache"), backoff_base=0.01)
    yield d
    await d.aclose()


def user_text(body) -> str:
    return "\n".join(m["content"] for m in body["messages"])


# -- the checks, one by one ------------------------------------------------------


def test_a_faithful_page_passes_every_check():
    result, reasons = validate_page(page(), transcript())
    assert reasons == []
    assert [s.start_time for s in result.sections] == [6.5, 60.0, 120.0, 180.0]


@pytest.mark.parametrize(("bad", "expected"), [
    (page(topic_category="Vibes"), "schema: topic_category: 'Vibes' is not one of"),
    (page(summary="x" * 301), "schema: summary:"),
    ({k: v for k, v in VALID.items() if k != "sections"}, "'sections' is a required property"),
    (page(section0={"start_time": "6.5"}), "schema: sections/0/start_time: '6.5' is not of type 'number'"),
    (page(section3={"end_time": 300.0}), "section 4 ('Blend', 3:00-5:00): ends after the video (4:00)"),
    (page(section1={"start_time": 90.0, "end_time": 80.0}), "section 2 ('Crush it', 1:30-1:20): ends before it starts"),
    (page(section2={"body": "Use a plate reverb with a long pre-delay and shimmer on the "
                            "vocal, automate the wet signal and widen the stereo image."}),
     "section 3 ('EQ after the compressor', 2:00-2:58): not supported by its range"),
    # True words, but from another part of the video: support is checked in the range.
    (page(section0={"body": VALID["sections"][3]["body"]}), "section 1 ('Set up the smash return', 0:06-0:58): not supported"),
    (page(section1={"body": VALID["sections"][1]["body"].replace("12 dB", "18 dB")}),
     "section 2 ('Crush it', 1:00-1:58): the number '18 dB' is not said in its range"),
    (page(section0={"body": VALID["sections"][0]["body"].replace("8:1", "6:1")}),
     "the number '6:1' is not said in its range"),
])
def test_each_bad_page_is_refused_with_its_reason(bad, expected):
    result, reasons = validate_page(bad, transcript())
    assert result is None
    assert any(expected in r for r in reasons), reasons


def test_numbers_said_in_words_or_other_units_back_a_section():
    from tui.services.claims import quantities

    said = quantities("minus ten db cut below eighty hertz then 5 khz, two hundred and fifty "
                      "milliseconds, one point two seconds and eight to one")
    assert [(q.dim, q.value) for q in said] == [
        ("ratio", 8.0), ("db", 10.0), ("hz", 80.0), ("hz", 5000.0), ("s", 0.25), ("s", 1.2)]
    # "-10 dB" in the page is "minus ten db" in the transcript (section 4 of VALID); 5 kHz may
    # be 5000 Hz; "eighty hertz" backs 80 Hz.
    spoken = transcript()
    spoken.sentences[10] = TimedSentence(120.0, 134.0, "after the compressor add an eq and cut "
                                                       "everything below eighty hertz")
    ok, reasons = validate_page(page(section2={"body": VALID["sections"][2]["body"].replace(
        "5 kHz", "5000 Hz")}), spoken)
    assert reasons == []


def test_ratios_are_checked_and_clock_times_are_not_ratios():
    from tui.services.claims import quantities

    assert [q.ratio for q in quantities("a 4:1 ratio, then 1.5 : 1, 10:1")] == [
        (4.0, 1.0), (1.5, 1.0), (10.0, 1.0)]
    result, reasons = validate_page(page(section0={"body": VALID["sections"][0]["body"].replace(
        "8:1", "8 to 1")}), transcript())
    assert reasons == []
    # A clock time in a body is no ratio a range must say.
    result, reasons = validate_page(page(section1={"body": VALID["sections"][1]["body"] + (
        " At 1:05 it already sounds totally crushed.")}), transcript())
    assert reasons == []


def test_json_is_found_in_fences_and_prose():
    obj = {"a": 1}
    assert parse_json_object(json.dumps(obj)) == (obj, None)
    assert parse_json_object(f"Here is the page:\n```json\n{json.dumps(obj)}\n```\nEnjoy!") == (obj, None)
    assert parse_json_object(f"Sure! {json.dumps(obj)} Hope it helps.") == (obj, None)
    assert parse_json_object("[1, 2]")[1] == "the answer is JSON but not an object (list)"
    assert parse_json_object('{"title": "cut off')[1] == "the answer is not JSON (no parsable object found)"


# -- through the model server ----------------------------------------------------


async def test_a_valid_page_is_accepted_in_one_call_with_structured_output(distiller, fake_llm):
    fake_llm.set_mode("normal", replies=[text(VALID)])
    out = await distiller.distill_one(transcript())
    assert out.status == "distilled" and out.attempts == 1 and out.reasons == []
    assert out.page.sections[2].heading == "EQ after the compressor"
    (req,) = fake_llm.chat_requests
    assert req.body["response_format"]["type"] == "json_schema"
    assert req.body["response_format"]["json_schema"]["schema"]["properties"]["topic_category"]["enum"][0] == "Synthesis"
    assert "[120.0-134.0] after the compressor add an eq" in user_text(req.body)
    assert out.tokens > 0


async def test_a_rejected_page_is_retried_once_with_its_reasons(distiller, fake_llm):
    bad = page(section1={"body": VALID["sections"][1]["body"].replace("12 dB", "18 dB")})
    fake_llm.set_mode("normal", replies=[text(bad), text(VALID)])
    out = await distiller.distill_one(transcript())
    assert out.status == "distilled" and out.attempts == 2
    first, second = fake_llm.chat_requests
    assert "18 dB" not in user_text(first.body)
    assert "the number '18 dB' is not said in its range" in user_text(second.body)
    assert second.body["messages"][-2]["role"] == "assistant"


@pytest.mark.parametrize(("answer", "reason"), [
    ("I'm sorry, I can't help with that.", "the answer is not JSON"),
    (text(page(topic_category="Vibes")), "schema: topic_category"),
    (text(page(section3={"end_time": 300.0})), "ends after the video"),
    (text(page(section2={"body": "Use a plate reverb with a long pre-delay and shimmer on "
                                 "the vocal, automate the wet signal and widen the image."})),
     "not supported by its range"),
    (text(page(section1={"body": VALID["sections"][1]["body"].replace("12 dB", "18 dB")})),
     "the number '18 dB'"),
])
async def test_twice_wrong_is_kept_raw_and_reported(distiller, fake_llm, answer, reason):
    fake_llm.set_mode("normal", replies=[answer, answer])
    out = await distiller.distill_one(transcript())
    assert out.status == "rejected" and out.page is None and out.attempts == 2
    assert any(reason in r for r in out.reasons), out.reasons
    assert len(fake_llm.chat_requests) == 2
    assert out.raw == answer


async def test_a_rerun_is_answered_from_the_cache_without_a_request(solo_settings, fake_llm, tmp_path):
    cache = DistillCache(tmp_path / "cache")
    # By video, not by arrival: the two pages' requests go out together.
    fake_llm.set_mode("normal", routes=[["Video: Another video\n", "not json"],
                                        ["Video: SMASH your drums\n", text(VALID)]])
    first = Distiller(solo_settings, cache=cache)
    other = transcript("other")
    other.title = "Another video"
    try:
        outcomes = await first.distill_pages([transcript(), other])
    finally:
        await first.aclose()
    assert [o.status for o in outcomes] == ["distilled", "rejected"]
    assert len(fake_llm.chat_requests) == 3
    again = Distiller(solo_settings, cache=cache)
    try:
        outcomes = await again.distill_pages([transcript(), other])
    finally:
        await again.aclose()
    assert len(fake_llm.chat_requests) == 3  # nothing asked
    assert [(o.status, o.cached) for o in outcomes] == [("distilled", True), ("rejected", True)]
    assert outcomes[0].page == (await Distiller(solo_settings, cache=cache).distill_one(transcript())).page
    # Another model, or a changed transcript, is asked again.
    changed = transcript()
    changed.sentences = changed.sentences[:-1]
    assert DistillCache.key(changed.text_hash, "primary-model") != DistillCache.key(
        transcript().text_hash, "primary-model")
    assert DistillCache.key(transcript().text_hash, "other-model") != DistillCache.key(
        transcript().text_hash, "primary-model")


async def test_a_server_without_structured_output_gets_plain_json_parsed_tolerantly(distiller, fake_llm):
    fake_llm.set_mode("normal", reject_response_format=True,
                      replies=[f"Here you go!\n```json\n{text(VALID)}\n```"])
    out = await distiller.distill_one(transcript())
    assert out.status == "distilled"
    refused, asked = fake_llm.chat_requests
    assert "response_format" in refused.body and "response_format" not in asked.body
    assert "JSON object only" in user_text(asked.body)


async def test_rate_limited_calls_back_off_and_go_on(distiller, fake_llm):
    fake_llm.set_mode("normal", replies=[{"status": 429}, {"status": 429}, text(VALID)])
    out = await distiller.distill_one(transcript())
    assert out.status == "distilled" and len(fake_llm.chat_requests) == 3


async def test_no_model_answering_is_a_failure_and_not_cached(distiller, fake_llm):
    fake_llm.set_mode("error500")
    out = await distiller.distill_one(transcript())
    assert out.status == "failed" and "server error (HTTP 500)" in out.reasons[0]
    fake_llm.set_mode("normal", replies=[text(VALID)])
    assert (await distiller.distill_one(transcript())).status == "distilled"


async def test_every_call_is_a_usage_row_with_purpose_distill(solo_settings, fake_llm, tmp_path, db):
    fake_llm.set_mode("normal", replies=[{"status": 429}, "not json", text(VALID)])
    d = Distiller(solo_settings, cache=DistillCache(tmp_path / "cache"), db=db, backoff_base=0.01)
    try:
        out = await d.distill_one(transcript())
    finally:
        await d.aclose()
    assert out.status == "distilled"
    async with db.session() as session:
        rows = list((await session.execute(select(ChatUsageLog).order_by(ChatUsageLog.id))).scalars())
    assert [(r.purpose, r.status) for r in rows] == [
        ("distill", "failed"), ("distill", "answered"), ("distill", "answered")]
    assert all(r.creator_slug == "kaito" and r.model == "primary-model" for r in rows)
    assert rows[-1].total_tokens > 0 and not rows[-1].usage_estimated
    assert rows[-1].query == "distill drum-bus-smash"


async def test_pages_run_concurrently_each_once(solo_settings, fake_llm, tmp_path):
    pages = []
    routes = []
    for i in range(8):
        t = transcript(f"page-{i}")
        t.title = f"Drum bus part {i}"
        pages.append(t)
        routes.append([f"Video: Drum bus part {i}\n", text(VALID)])
    fake_llm.set_mode("normal", routes=routes, delay=0.3)
    d = Distiller(solo_settings, cache=DistillCache(tmp_path / "cache"), concurrency=4)
    done = []
    try:
        outcomes = await d.distill_pages(pages, on_done=lambda o, p: done.append((o.key, p.done)))
    finally:
        await d.aclose()
    assert sorted(k for k, _ in done) == sorted(t.key for t in pages)
    assert [n for _, n in done] == list(range(1, 9))
    assert all(o.status == "distilled" for o in outcomes)
    assert len(fake_llm.chat_requests) == 8


async def test_the_next_request_goes_out_while_a_page_is_checked(solo_settings, fake_llm, tmp_path,
                                                               monkeypatch):
    """The check (CPU, tens of ms a page) runs outside the model's request slots: with one
    slot, page 2's request reaches the server while page 1 is still being checked, and no
    more than `concurrency` requests are ever in flight."""
    import tui.services.distill as distill

    pages, routes = [], []
    for i in range(3):
        t = transcript(f"page-{i}")
        t.title = f"Drum bus part {i}"
        pages.append(t)
        routes.append([f"Video: Drum bus part {i}\n", text(VALID)])
    fake_llm.set_mode("normal", routes=routes, delay=0.2)
    real_check = distill.check_page
    seen_during_check: list[int] = []

    def slow_check(data, t):
        if t.key == "page-0":  # wait (up to 10 s) for the next page's request to arrive
            fake_llm.wait_for(lambda: len(fake_llm.chat_requests) >= 2, timeout=10)
            seen_during_check.append(len(fake_llm.chat_requests))
        return real_check(data, t)

    monkeypatch.setattr(distill, "check_page", slow_check)
    d = Distiller(solo_settings, cache=DistillCache(tmp_path / "cache"), concurrency=1)
    try:
        outcomes = await d.distill_pages(pages)
    finally:
        await d.aclose()
    assert [o.status for o in outcomes] == ["distilled"] * 3
    assert seen_during_check and seen_during_check[0] >= 2
    # One slot: each request was received only after the one before it was answered.
    got = sorted(r.received_at for r in fake_llm.chat_requests)
    assert len(got) == 3 and all(b - a >= 0.15 for a, b in zip(got, got[1:], strict=False))


# -- the profile -----------------------------------------------------------------


PROFILE = {
    "summary": "Kaito teaches mixing moves fast and hands-on.",
    "tone": {"teaching_style": "step by step on a real session", "energy": "high",
             "formality": "casual", "descriptors": ["upbeat", "practical"]},
    "vocabulary": {"signature_phrases": ["What's up everybody!", "See you in the next one.",
                                         "Let's get weird with it"],
                   "distinctive_terms": ["smash"], "sound_descriptions": ["crushed"]},
    "style_markers": {"explanation_approach": "does it, then says why", "uses_analogies": False,
                      "audience_engagement": "talks to the viewer", "pacing": "quick"},
}


def test_an_invented_signature_phrase_is_dropped_and_reported():
    checked, reasons = check_profile(PROFILE, [transcript().sentences])
    assert checked["vocabulary"]["signature_phrases"] == ["What's up everybody!", "See you in the next one."]
    assert reasons == ["signature phrase \"Let's get weird with it\" is not said in the transcripts: dropped"]


async def test_a_model_profile_replaces_the_measured_fields_it_fills(distiller, fake_llm):
    measured = {"tone": {"energy": "moderate"},
                "vocabulary": {"signature_phrases": ["drum bus"], "distinctive_terms": ["smash"]},
                "_source": {"energy": "measured", "signature_phrases": "measured",
                            "distinctive_terms": "measured"}}
    fake_llm.set_mode("normal", replies=[text(PROFILE)])
    profile, reasons = await distiller.distill_profile(
        "kaito", "Kaito", [transcript().sentences], measured)
    assert reasons == ["signature phrase \"Let's get weird with it\" is not said in the transcripts: dropped"]
    assert profile["tone"]["energy"] == "high" and profile["_source"]["energy"] == "model"
    assert profile["vocabulary"]["signature_phrases"] == ["What's up everybody!", "See you in the next one."]
    assert profile["_source"]["summary"] == "model"
    assert profile["_model"]["model"] == "primary-model"
    (req,) = fake_llm.chat_requests
    assert req.body["response_format"]["json_schema"]["name"] == "creator_profile"
    # Cached: asked once.
    again, _ = await distiller.distill_profile("kaito", "Kaito", [transcript().sentences], measured)
    assert again == profile and len(fake_llm.chat_requests) == 1


async def test_a_cached_verdict_of_another_check_is_asked_for_again(distiller, fake_llm):
    """A page cached before distill's check became the claim check (no `check` in the
    entry) is not trusted: the model is asked again and its page checked now."""
    from tui.services.distill import CHECK_VERSION

    key = DistillCache.key(transcript().text_hash, distiller.model)
    distiller.cache.put(key, {"status": "distilled", "reasons": [], "model": "primary-model",
                              "page": page(section1={"body": VALID["sections"][1]["body"].replace(
                                  "12 dB", "18 dB")}), "prompt_version": "distill-page-1"})
    fake_llm.set_mode("normal", replies=[text(VALID)])
    out = await distiller.distill_one(transcript())
    assert out.status == "distilled" and not out.cached and len(fake_llm.chat_requests) == 1
    assert out.page.sections[1].body == VALID["sections"][1]["body"]
    assert distiller.cache.get(key)["check"] == CHECK_VERSION
    assert (await distiller.distill_one(transcript())).cached  # now a hit
