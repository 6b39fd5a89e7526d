"""Raw transcript sections vs distilled pages: recall@10 and MRR@10 on a small question set.

    .venv/bin/python bench/distill_eval.py [--distractors 30] [--json]

Four tutorials written for this (speech as auto-captions give it: lower case, no
punctuation, timed), imported as yt-dlp downloads with `--distractors` generated
videos beside them (bench/ytdlp_material.py), into a fresh SQLite database. Each
question names the part of a tutorial that answers it: a search item is relevant
when it comes from that video and its time range overlaps that part. Searched once
with the transcripts as imported, then again after `chrysopedia distill --all`,
the model being the loopback fake server answering with the pages below: pages as
a model should write them (the creator's steps, numbers and order, nothing else),
written by hand, passing the same checks as any model's page. So the figures say
what faithful distillation gives search, not how well a given model distills.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

from ytdlp_material import Video, generate, write_video  # noqa: E402

TUTORIALS = {
    "drums": ("SMASH your drums", 240.0, [
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
        (222.0, 236.0, "that's it see you in the next one"),
    ]),
    "vocal": ("vocals that SIT in the mix (no more mud)", 100.0, [
        (0.0, 8.0, "today a quick one on reverb for vocals that sits behind the mix"),
        (8.0, 18.0, "put a plate on a send and set the decay to about 1.2 seconds"),
        (18.0, 30.0, "set the pre delay to 40 milliseconds so the words stay clear"),
        (30.0, 44.0, "then high pass the reverb return at 300 hertz to keep the low end clean"),
        (44.0, 58.0, "and duck the reverb with a compressor keyed from the dry vocal"),
        (58.0, 72.0, "so the tail only blooms in the gaps between phrases"),
        (72.0, 86.0, "for the throws automate a delay send on the last word of each line"),
        (86.0, 98.0, "an eighth note delay with the feedback around 30 percent"),
    ]),
    "808": ("my 808 secret", 120.0, [
        (0.0, 10.0, "let's talk about the 808 and how to get it to cut on small speakers"),
        (10.0, 22.0, "first tune the 808 sample to the key of the track by ear or with a tuner"),
        (22.0, 34.0, "then put a saturator on it and drive it until you hear the harmonics"),
        (34.0, 46.0, "the upper harmonics are what you hear on a phone where the sub disappears"),
        (46.0, 60.0, "blend the saturation in parallel with the dry mix at about 40 percent"),
        (60.0, 74.0, "next glide between notes with portamento at around 50 milliseconds"),
        (74.0, 88.0, "keep the kick and the 808 apart by cutting the kick tail with a transient shaper"),
        (88.0, 104.0, "or sidechain the 808 to the kick with a fast release"),
        (104.0, 118.0, "finally check it in mono because the low end must stay centered"),
    ]),
    "pump": ("PUMPING pads in 60 seconds", 90.0, [
        (0.0, 9.0, "here's how i get that pumping pad sound you hear in house music"),
        (9.0, 20.0, "load a volume shaper on the pad instead of a compressor"),
        (20.0, 32.0, "draw a curve that drops to zero on every kick and rises over a quarter note"),
        (32.0, 44.0, "the shape of the curve decides how hard it breathes"),
        (44.0, 58.0, "a compressor keyed from the kick works too but it depends on the kick level"),
        (58.0, 72.0, "use a ratio of 4 to 1 and a release of 150 milliseconds if you go that way"),
        (72.0, 88.0, "then widen the pad with a chorus so it fills the space between kicks"),
    ]),
}

PAGES = {
    "drums": {"title": "Parallel compression on the drum bus",
              "summary": "A crushed return track blended under the drums: compressor at 8:1, 12 dB of gain "
                         "reduction, an EQ after it, then the return pushed up slowly.",
              "tags": ["parallel compression", "drum bus", "compressor", "return track"],
              "topic_category": "Mixing", "sections": [
                  {"heading": "Set up the smash return: ratio, attack and release", "start_time": 6.5, "end_time": 58.0,
                   "body": "Make a new return track called smash and put a compressor on the return with the "
                           "ratio at 8:1, the attack at 10 ms so the transients still come through and the release "
                           "around 100 ms so it pumps with the groove. Send the kick, the snare and the hats to the "
                           "smash return at the same level."},
                  {"heading": "Crush it: threshold and gain reduction", "start_time": 60.0, "end_time": 118.0,
                   "body": "Pull the threshold down until you get 12 dB of gain reduction. It should sound totally "
                           "crushed on its own: the crushed return gives the drums weight when blended in. If the "
                           "cymbals get harsh, pull the hats send down."},
                  {"heading": "EQ after the compressor: low cut and snap", "start_time": 120.0, "end_time": 178.0,
                   "body": "Add an EQ after the compressor: cut everything below 80 Hz, so the crushed kick does not "
                           "muddy the mix, and boost around 5 kHz by 3 dB to bring back the snap on the snare that "
                           "the compressor squashed."},
                  {"heading": "Blend the return under the drums", "start_time": 180.0, "end_time": 222.0,
                   "body": "Bring the return fader all the way down, then slowly push it up and stop around -10 dB, "
                           "where the drums get thicker but still punch. Mute and unmute the return to check that "
                           "the blend really helps."}]},
    "vocal": {"title": "Vocal reverb and delay throws that sit behind the mix",
              "summary": "A plate on a send with a short decay and 40 ms pre-delay, high-passed and ducked by the "
                         "dry vocal; delay throws on the last word of a line.",
              "tags": ["reverb", "vocals", "plate", "pre-delay", "ducking", "delay throws"],
              "topic_category": "Mixing", "sections": [
                  {"heading": "Plate reverb send: decay and pre-delay", "start_time": 0.0, "end_time": 30.0,
                   "body": "Put a plate reverb on a send for the vocals and set the decay to about 1.2 seconds and "
                           "the pre delay to 40 ms, so the words stay clear and the reverb sits behind the mix."},
                  {"heading": "High-pass and duck the reverb return", "start_time": 30.0, "end_time": 72.0,
                   "body": "High pass the reverb return at 300 Hz to keep the low end clean, then duck the reverb "
                           "with a compressor keyed from the dry vocal, so the tail only blooms in the gaps "
                           "between phrases."},
                  {"heading": "Delay throws on the last word", "start_time": 72.0, "end_time": 98.0,
                   "body": "For the throws, automate a delay send on the last word of each line: an eighth note "
                           "delay with the feedback around 30%."}]},
    "808": {"title": "808s that cut through on small speakers",
            "summary": "Tune the 808 to the key, saturate it in parallel for harmonics a phone can play, glide "
                       "with portamento, keep it apart from the kick and check it in mono.",
            "tags": ["808", "saturation", "harmonics", "portamento", "sidechain", "mono"],
            "topic_category": "Sound Design", "sections": [
                {"heading": "Tune the 808 to the key", "start_time": 10.0, "end_time": 22.0,
                 "body": "Tune the 808 sample to the key of the track, by ear or with a tuner."},
                {"heading": "Saturate in parallel for harmonics on small speakers", "start_time": 22.0, "end_time": 60.0,
                 "body": "Put a saturator on the 808 and drive it until you hear the harmonics: the upper "
                         "harmonics are what you hear on a phone, where the sub disappears. Blend the saturation "
                         "in parallel with the dry mix at about 40%."},
                {"heading": "Glide between notes with portamento", "start_time": 60.0, "end_time": 74.0,
                 "body": "Glide between notes with portamento at around 50 ms."},
                {"heading": "Keep the kick and the 808 apart, check mono", "start_time": 74.0, "end_time": 118.0,
                 "body": "Keep the kick and the 808 apart: cut the kick tail with a transient shaper, or sidechain "
                         "the 808 to the kick with a fast release. Check it in mono: the low end must stay "
                         "centered."}]},
    "pump": {"title": "Pumping pads with a volume shaper or a sidechain compressor",
             "summary": "A volume shaper curve dropping to zero on every kick makes a pad pump; a compressor keyed "
                        "from the kick at 4:1 with a 150 ms release works too.",
             "tags": ["sidechain", "volume shaper", "pumping", "pads", "house"],
             "topic_category": "Mixing", "sections": [
                 {"heading": "Volume shaper curve on the pad", "start_time": 9.0, "end_time": 44.0,
                  "body": "Load a volume shaper on the pad instead of a compressor. Draw a curve that drops to zero "
                          "on every kick and rises over a quarter note: the shape of the curve decides how hard "
                          "it breathes."},
                 {"heading": "Or a compressor keyed from the kick", "start_time": 44.0, "end_time": 72.0,
                  "body": "A compressor keyed from the kick works too, but it depends on the kick level: use a "
                          "ratio of 4:1 and a release of 150 ms."},
                 {"heading": "Widen the pad with chorus", "start_time": 72.0, "end_time": 88.0,
                  "body": "Widen the pad with a chorus so it fills the space between kicks."}]},
}

# (question, tutorial, start, end): the part of the tutorial that answers it. A search item
# is relevant two ways: "overlaps" (from that video, its time range overlapping the part:
# lenient, a section spanning the whole video always counts) and "lands" (its citation
# opens the video inside the part or at most 15 s before it: what the user gets).
QUESTIONS = [
    ("what compressor ratio and attack for parallel drum compression", "drums", 14.0, 42.0),
    ("how much gain reduction should the parallel drum bus have", "drums", 60.0, 72.0),
    ("eq on the parallel compression return", "drums", 120.0, 178.0),
    ("how loud should I blend the parallel compressed drums", "drums", 180.0, 222.0),
    ("harsh cymbals on the crushed drum bus", "drums", 98.0, 118.0),
    ("pre-delay setting for vocal reverb", "vocal", 18.0, 30.0),
    ("stop the vocal reverb from getting muddy", "vocal", 30.0, 44.0),
    ("duck reverb with sidechain from the vocal", "vocal", 44.0, 72.0),
    ("delay throws feedback amount", "vocal", 72.0, 98.0),
    ("make the 808 audible on phone speakers", "808", 22.0, 60.0),
    ("808 glide portamento time", "808", 60.0, 74.0),
    ("kick and 808 clashing", "808", 74.0, 104.0),
    ("tune 808 to the song key", "808", 10.0, 22.0),
    ("pumping pad volume shaper curve", "pump", 9.0, 44.0),
    ("sidechain compressor release for pumping pads", "pump", 44.0, 72.0),
    ("make a pad wider", "pump", 72.0, 88.0),
]


def _video(key: str, index: int) -> Video:
    title, duration, said = TUTORIALS[key]
    sentences, times = [], []
    for start, end, text in said:
        words = text.split()
        step = (end - start - 0.6) / len(words)
        sentences.append(words)
        times.append([round(start + i * step, 3) for i in range(len(words))])
    return Video(f"evaltut{index:04d}", title, "Eval Channel", "UCevalchannel0000000000", "Mixing",
                 sentences, times, duration, None, [])


def _cli(*argv: str) -> tuple[int, str]:
    from tui.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = main(list(argv))
    return code, out.getvalue()


LANDS_BEFORE_S = 15.0


def _overlaps(item: dict, start: float, end: float) -> bool:
    return item["start_time"] < end and (item.get("end_time") or 0) > start


def _lands(item: dict, start: float, end: float) -> bool:
    """The citation opens the video at the answer, or at most LANDS_BEFORE_S before it."""
    return start - LANDS_BEFORE_S <= item["start_time"] <= end


def _scores(url: str, videos: dict[str, str]) -> dict:
    n = len(QUESTIONS)
    out_scores: dict[str, dict] = {}
    results = []
    for question, _key, _start, _end in QUESTIONS:
        code, out = _cli("--db", url, "search", question, "--limit", "10", "--json")
        results.append(json.loads(out)["items"] if code == 0 else [])
    for name, hit in (("overlaps", _overlaps), ("lands", _lands)):
        recall = mrr = 0.0
        ranks = []
        for (_question, key, start, end), items in zip(QUESTIONS, results, strict=True):
            rank = None
            for i, item in enumerate(items[:10], start=1):
                if item.get("source_video_id") == videos[key] and item.get("start_time") is not None:
                    if hit(item, start, end):
                        rank = i
                        break
            ranks.append(rank)
            recall += rank is not None
            mrr += 1.0 / rank if rank else 0.0
        out_scores[name] = {"recall_at_10": round(recall / n, 3), "mrr_at_10": round(mrr / n, 3),
                            "ranks": ranks}
    return out_scores


def evaluate(distractors: int = 30) -> dict:
    from fake_openai import FakeOpenAI

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "yt"
        folder.mkdir()
        videos = {}
        for index, key in enumerate(TUTORIALS):
            video = _video(key, index)
            write_video(folder, video)
            videos[key] = video.id
        if distractors:
            generate(folder / "more", distractors, seed=3, words=700, minutes=5)
        url = f"sqlite+aiosqlite:///{tmp}/eval.db"
        os.environ["CHRYSOPEDIA_DATA_DIR"] = str(Path(tmp) / "data")
        assert _cli("--db", url, "import", str(folder))[0] == 0
        raw = _scores(url, videos)
        routes = [[f"Video: {TUTORIALS[k][0]}\n", json.dumps(PAGES[k])] for k in TUTORIALS]
        with FakeOpenAI(routes=routes) as srv:
            os.environ.update(CHRYSOPEDIA_LLM_API_URL=srv.url, CHRYSOPEDIA_LLM_MODEL="fake-model")
            try:
                # Only the four tutorials have pages; the distractors stay transcripts.
                for key in TUTORIALS:
                    code, out = _cli("--db", url, "distill", "--page", _raw_slug(url, videos[key]), "--json")
                    report = json.loads(out)
                    if len(report["distilled"]) != 1:
                        raise SystemExit(f"{key}: not distilled: {report}")
            finally:
                for var in ("CHRYSOPEDIA_LLM_API_URL", "CHRYSOPEDIA_LLM_MODEL"):
                    os.environ.pop(var, None)
        distilled = _scores(url, videos)
        os.environ.pop("CHRYSOPEDIA_DATA_DIR", None)
    return {"questions": len(QUESTIONS), "distractor_videos": distractors,
            "raw": raw, "distilled": distilled}


def _raw_slug(url: str, video_id: str) -> str:
    code, out = _cli("--db", url, "kb", "list", "--json")
    listing = json.loads(out)
    for page in listing.get("pages", []):
        if video_id in str(page.get("material_key", "")) or video_id in json.dumps(page):
            return page["slug"]
    raise SystemExit(f"no page for video {video_id}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--distractors", type=int, default=30)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = evaluate(args.distractors)
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
