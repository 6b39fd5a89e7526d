"""Realistic yt-dlp downloads for benchmarks and tests: what `yt-dlp --skip-download
--write-auto-subs --write-subs --sub-langs en --sub-format vtt --write-info-json URL` leaves.

    .venv/bin/python bench/ytdlp_material.py FOLDER [--n 1000] [--seed 0] [--words 3500] [--minutes 20]

Each video is `Title [ID].info.json` (one line of JSON, as yt-dlp writes it, with the
formats, thumbnails and caption-track lists that make real ones large) beside
`Title [ID].en.vtt` in YouTube's rolling auto-caption format: header lines `WEBVTT`,
`Kind: captions`, `Language: en`; every cue `align:start position:0%`; each cue shows the
previous line again above a new line whose words carry inline timings
(`word<00:00:01.234><c> next</c>`); a 10 ms cue repeats each finished line alone; `[Music]`
lines at the start and between parts; no punctuation, no capitals. The speech is a
producer talking through synthesis, mixing, sampling ... in sentences separated by pauses.
Every second video has chapters.

`build_video(seed, index, ...)` returns the spoken sentences, so a test can compare a
reader's text with what was "said". No dependency beyond the standard library.
"""

from __future__ import annotations

import argparse
import json
import random
import string
import sys
from dataclasses import dataclass, field
from pathlib import Path

TOPICS = {
    "Synthesis": {
        "nouns": ["oscillator", "wavetable", "filter", "envelope", "lfo", "unison", "detune",
                  "saw wave", "square wave", "sub oscillator", "cutoff", "resonance", "patch",
                  "serum", "vital", "fm operator", "supersaw", "pluck", "pad", "mod matrix"],
        "titles": ["How I Design Supersaw Leads in Serum", "Wavetable Synthesis From Scratch",
                   "FM Bass Sound Design Explained", "Making Evolving Pads With Two Oscillators",
                   "Filter Envelopes That Actually Move"],
        "chapters": ["Intro", "Oscillator setup", "Filter and envelope", "Modulation",
                     "Unison and width", "Effects chain", "Final patch"],
    },
    "Mixing": {
        "nouns": ["vocal bus", "kick", "snare", "low end", "compressor", "eq", "high pass",
                  "sidechain", "parallel compression", "reverb send", "delay throw", "panning",
                  "headroom", "gain staging", "mix bus", "transient", "de-esser", "stereo image",
                  "mud", "low mids"],
        "titles": ["Mixing Vocals That Sit in the Beat", "Gain Staging Your Mix Properly",
                   "How I Mix 808s and Kicks Together", "Parallel Compression on Drums",
                   "Cleaning Up the Low Mids"],
        "chapters": ["Intro", "Gain staging", "EQ moves", "Compression", "Reverb and delay",
                     "Bus processing", "Before and after"],
    },
    "Sampling": {
        "nouns": ["sample", "chop", "vinyl", "loop", "slice", "time stretch", "pitch shift",
                  "sampler", "one shot", "break", "swing", "transient", "crate", "mpc",
                  "record", "drum break", "resample", "start point", "root note", "warp marker"],
        "titles": ["Chopping Soul Samples the Old Way", "Flipping a Drum Break in Ableton",
                   "Resampling Tricks for Unique Textures", "Sampling Vinyl Into the MPC",
                   "Time Stretching Without Artifacts"],
        "chapters": ["Intro", "Finding the sample", "Chopping", "Pitch and time",
                     "Drums", "Resampling", "Arranging the flip"],
    },
    "Mastering": {
        "nouns": ["limiter", "loudness", "lufs", "true peak", "master bus", "multiband",
                  "stereo width", "reference track", "ceiling", "dynamic range", "clipper",
                  "dither", "mid side", "low end", "glue compressor", "headroom", "meter",
                  "streaming", "tonal balance", "saturation"],
        "titles": ["Mastering for Streaming Loudness", "Clipping Versus Limiting on the Master",
                   "Mid Side EQ on the Master Bus", "Using Reference Tracks While Mastering",
                   "Mastering Chain in Five Plugins"],
        "chapters": ["Intro", "Reference tracks", "EQ", "Compression", "Clipping",
                     "Limiting", "Loudness check"],
    },
    "Arrangement": {
        "nouns": ["intro", "drop", "breakdown", "build up", "verse", "chorus", "transition",
                  "riser", "arrangement", "energy", "automation", "bar", "section", "hook",
                  "variation", "fill", "outro", "tension", "release", "groove"],
        "titles": ["Arranging a Track From an 8 Bar Loop", "Transitions That Keep Energy Up",
                   "Building Tension Before the Drop", "Song Structure for Producers",
                   "Turning a Loop Into a Full Song"],
        "chapters": ["Intro", "The loop", "Mapping sections", "Transitions", "The drop",
                     "Variation", "Outro"],
    },
    "Sound Design": {
        "nouns": ["foley", "texture", "granular", "noise", "impact", "whoosh", "layer",
                  "distortion", "resampling", "field recording", "reverse reverb", "drone",
                  "formant", "bitcrusher", "ambience", "riser", "sweep", "sub drop", "grain",
                  "spectral"],
        "titles": ["Designing Impacts From Field Recordings", "Granular Textures in Ableton",
                   "Cinematic Risers From Noise", "Layering Foley for Drums",
                   "Turning Noise Into Atmosphere"],
        "chapters": ["Intro", "Recording", "Layering", "Processing", "Granular tricks",
                     "Movement", "Result"],
    },
}
FILLERS = ["so", "now", "okay so", "and then", "basically", "and", "alright", "you know",
           "what i like to do is", "the thing is", "honestly"]
VERBS = ["push", "pull", "boost", "cut", "automate", "route", "bounce", "layer", "tweak",
         "drag", "set", "turn up", "bring down", "duplicate", "group", "solo", "mute", "sweep"]
UNITS = ["milliseconds", "db", "hertz", "percent", "bars", "semitones", "cents"]
TEMPLATES = [
    "i'm going to {verb} the {noun} to around {num} {unit}",
    "if you {verb} the {noun} too much the {noun2} starts to sound harsh",
    "the {noun} is really doing most of the work here",
    "let's {verb} the {noun} and listen to what happens to the {noun2}",
    "you can hear the {noun} a lot clearer now",
    "a lot of people forget about the {noun} but it matters",
    "i usually {verb} the {noun} before i touch the {noun2}",
    "we don't want the {noun} fighting with the {noun2}",
    "this is where the {noun} comes in",
    "try to {verb} the {noun} by {num} {unit} and compare",
    "i'll {verb} the {noun} so it sits behind the {noun2}",
    "the trick is to keep the {noun} moving over time",
    "that gives the {noun} a bit more character",
    "listen to how the {noun} changes when i {verb} the {noun2}",
    "we're going to {verb} the {noun} on every fourth bar",
    "it's not about the plugin it's about the {noun}",
    "the {noun} should support the {noun2} not bury it",
    "i'm {verb_ing} the {noun} a little so it breathes",
]
ING = {"set": "setting", "cut": "cutting", "drag": "dragging", "mute": "muting",
       "turn up": "turning up", "bring down": "bringing down"}
CAPTION_LANGUAGES = [(code, code.upper()) for code in (
    "af ak sq am ar hy as ay az bn eu be bho bs bg my ca ceb zh-Hans zh-Hant co hr cs da dv nl "
    "en eo et ee fil fi fr gl lg ka de el gn gu ht ha haw iw hi hmn hu is ig id ga it ja jv kn "
    "kk km rw ko kri ku ky lo la lv ln lt lb mk mg ms ml mt mi mr mn ne nso no ny or om ps fa pl "
    "pt pa qu ro ru sm sa gd sr sn sd si sk sl so st es su sw sv tg ta tt te th ti ts tr tk uk "
    "ur ug uz vi cy fy xh yi yo zu").split()]
ID_CHARS = string.ascii_letters + string.digits + "-_"


@dataclass
class Video:
    id: str
    title: str
    channel: str
    channel_id: str
    topic: str
    sentences: list[list[str]]  # the spoken words, sentence by sentence
    times: list[list[float]]  # each word's start time
    duration: float
    chapters: list[dict] | None
    music: list[tuple[float, float]] = field(default_factory=list)  # [Music] spans

    @property
    def words(self) -> list[str]:
        return [w for s in self.sentences for w in s]

    @property
    def stem(self) -> str:
        safe = self.title.replace("/", "_").replace(":", " -")
        return f"{safe} [{self.id}]"


def _sentence(rng: random.Random, nouns: list[str]) -> list[str]:
    template = rng.choice(TEMPLATES)
    verb = rng.choice(VERBS)
    first = verb.split()[0]
    verb_ing = ING.get(verb) or (first[:-1] + "ing" if first.endswith("e") else first + "ing")
    if verb not in ING and " " in verb:
        verb_ing = verb_ing + " " + verb.split(" ", 1)[1]
    noun, noun2 = rng.sample(nouns, 2)
    text = template.format(verb=verb, verb_ing=verb_ing, noun=noun, noun2=noun2,
                           num=rng.choice([2, 3, 4, 6, 8, 10, 12, 20, 30, 50, 100, 200, 808]),
                           unit=rng.choice(UNITS))
    words = text.split()
    if rng.random() < 0.45:
        words = rng.choice(FILLERS).split() + words
    if rng.random() < 0.35:  # longer sentences: a second clause
        clause = rng.choice(TEMPLATES).format(
            verb=verb, verb_ing=verb_ing, noun=noun2, noun2=noun,
            num=rng.choice([2, 4, 10, 50]), unit=rng.choice(UNITS)).split()
        if len(words) + len(clause) < 28:
            words += ["and"] + clause
    return words


def build_video(seed: int, index: int, *, words: int = 3500, minutes: float = 20) -> Video:
    """One video's metadata and speech, the same for the same (seed, index)."""
    rng = random.Random(seed * 1_000_003 + index)
    topic = sorted(TOPICS)[index % len(TOPICS)]
    bank = TOPICS[topic]
    sentences: list[list[str]] = []
    count = 0
    while count < words:
        s = _sentence(rng, bank["nouns"])
        sentences.append(s)
        count += len(s)
    # Timings: word gaps 0.18-0.45 s, pauses between sentences 0.8-1.6 s, [Music] at the start
    # and once in a while; then scaled to the wanted duration.
    music: list[tuple[float, float]] = []
    times: list[list[float]] = []
    t = 4.0
    music.append((0.0, t))
    for i, s in enumerate(sentences):
        if i and i % 60 == 0:
            music.append((t, t + 5.0))
            t += 6.0
        row = []
        for _ in s:
            row.append(t)
            t += rng.uniform(0.18, 0.45)
        times.append(row)
        t += rng.uniform(0.8, 1.6)
    total = minutes * 60.0
    scale = min(1.0, (total - 2.0) / t)
    times = [[round(x * scale, 3) for x in row] for row in times]
    music = [(round(a * scale, 3), round(b * scale, 3)) for a, b in music]
    duration = float(int(total))
    chapters = None
    if index % 2 == 0:
        titles = bank["chapters"]
        n = len(titles)
        bounds = [0] + [round(len(sentences) * k / n) for k in range(1, n)]
        starts = [0.0] + [max(0.0, round(times[b][0] - 0.4, 3)) for b in bounds[1:]]
        chapters = [{"start_time": starts[k], "title": titles[k],
                     "end_time": starts[k + 1] if k + 1 < n else duration} for k in range(n)]
    vid = "".join(rng.choice(ID_CHARS) for _ in range(11))
    channel = rng.choice(["Loop Lab", "Bass Theory", "The Mix Desk", "Analog Hours",
                          "Crate Diggers Club", "Studio Notes", "Patch Notes Audio"])
    channel_id = "UC" + "".join(rng.choice(ID_CHARS) for _ in range(22))
    title = rng.choice(bank["titles"]) + ("" if index < len(TOPICS) * 5 else f" (Part {index})")
    return Video(vid, title, channel, channel_id, topic, sentences, times, duration, chapters, music)


def _ts(t: float) -> str:
    ms = int(round(t * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def _lines(video: Video, rng: random.Random) -> list[list[tuple[float, str]]]:
    """Caption lines as YouTube cuts them (about 30-42 characters, regardless of sentences),
    with [Music] lines of their own."""
    flat = [(t, w) for row, s in zip(video.times, video.sentences, strict=False) for t, w in zip(row, s, strict=False)]
    events: list[tuple[float, str]] = [(a, "[Music]") for a, _ in video.music]
    events += flat
    events.sort(key=lambda e: e[0])
    lines: list[list[tuple[float, str]]] = []
    current: list[tuple[float, str]] = []
    length = 0
    width = rng.randint(30, 42)
    for t, w in events:
        if w == "[Music]":
            if current:
                lines.append(current)
                current, length = [], 0
            lines.append([(t, w)])
            continue
        if current and length + len(w) > width:
            lines.append(current)
            current, length = [], 0
            width = rng.randint(30, 42)
        current.append((t, w))
        length += len(w) + 1
    if current:
        lines.append(current)
    return lines


def auto_caption_vtt(video: Video, *, seed: int = 0) -> str:
    """The video's speech as YouTube's rolling auto-captions, byte for byte as yt-dlp saves them."""
    rng = random.Random(f"{seed}:{video.id}")
    lines = _lines(video, rng)
    out = ["WEBVTT", "Kind: captions", "Language: en", ""]
    previous = " "
    for i, line in enumerate(lines):
        start = line[0][0]
        end = lines[i + 1][0][0] - 0.01 if i + 1 < len(lines) else min(video.duration, line[-1][0] + 1.5)
        if end <= start:
            end = start + 0.01
        if len(line) == 1 and line[0][1] == "[Music]":
            text = "[Music]"
        else:
            text = line[0][1] + "".join(f"<{_ts(t)}><c> {w}</c>" for t, w in line[1:])
        out += [f"{_ts(start)} --> {_ts(end)} align:start position:0%", previous, text, ""]
        plain = " ".join(w for _, w in line)
        out += [f"{_ts(end)} --> {_ts(end + 0.01)} align:start position:0%", plain, " ", ""]
        previous = plain
    return "\n".join(out) + "\n"


def info_json(video: Video, *, upload_date: str = "20240315") -> dict:
    """The info.json yt-dlp writes for the video (keys in yt-dlp's order, the bulky lists included)."""
    url = f"https://www.youtube.com/watch?v={video.id}"
    description = (
        f"In this video I walk through {video.title.lower()}, step by step, in my own sessions.\n\n"
        "Download the project files and presets on my website.\n"
        "Gear and plugins used are linked below.\n\n"
        + ("".join(f"{int(c['start_time']) // 60}:{int(c['start_time']) % 60:02d} {c['title']}\n"
                   for c in video.chapters) if video.chapters else "")
        + "\n#musicproduction #" + video.topic.lower().replace(" ", "")
    )
    formats = [
        {"format_id": fid, "format_note": note, "ext": ext, "protocol": "https",
         "url": f"https://rr3---sn-example.googlevideo.com/videoplayback?expire=1710000000&id={video.id}&itag={fid}&source=youtube&requiressl=yes&mime={ext}&gir=yes&clen={1000000 + int(fid) * 977}&dur={video.duration}&lmt=1700000000000000&sig=AOq0QJ8wRQIh" + "x" * 80,
         "width": w, "height": h, "fps": 30 if h else None, "vcodec": "avc1.4d401f" if h else "none",
         "acodec": "mp4a.40.2" if not h else "none", "filesize": 1000000 + int(fid) * 977,
         "tbr": 128.0 + int(fid), "http_headers": {"User-Agent": "Mozilla/5.0", "Accept": "*/*"}}
        for fid, note, ext, w, h in [
            ("139", "low", "m4a", None, None), ("140", "medium", "m4a", None, None),
            ("251", "medium", "webm", None, None), ("160", "144p", "mp4", 256, 144),
            ("133", "240p", "mp4", 426, 240), ("134", "360p", "mp4", 640, 360),
            ("135", "480p", "mp4", 854, 480), ("136", "720p", "mp4", 1280, 720),
            ("137", "1080p", "mp4", 1920, 1080), ("18", "360p", "mp4", 640, 360),
        ]
    ]
    thumbnails = [{"url": f"https://i.ytimg.com/vi/{video.id}/{name}.jpg", "preference": -i,
                   "id": str(i)} for i, name in enumerate(
                       ["default", "mqdefault", "hqdefault", "sddefault", "maxresdefault"])]
    # Real files list the auto-captions translated into a hundred-odd languages, six
    # formats each, with long signed URLs: most of an info.json's size.
    captions = {lang: [{"ext": ext, "url": f"https://www.youtube.com/api/timedtext?v={video.id}&ei=Zx8VZsXrL4mJ&caps=asr&opi=112496729&xoaf=5&hl=en&ip=0.0.0.0&ipbits=0&expire=1712345678&sparams=ip%2Cipbits%2Cexpire%2Cv%2Cei%2Ccaps%2Copi%2Cxoaf&signature=3A1F0E4B5C6D7E8F9A0B1C2D3E4F5A6B7C8D9E0F.1A2B3C4D5E6F7A8B9C0D1E2F3A4B5C6D7E8F9A0B&key=yt8&kind=asr&lang=en&tlang={lang}&fmt={ext}", "name": f"{name} from English"}
                       for ext in ("json3", "srv1", "srv2", "srv3", "ttml", "vtt")]
                for lang, name in CAPTION_LANGUAGES}
    return {
        "id": video.id, "title": video.title, "formats": formats, "thumbnails": thumbnails,
        "thumbnail": f"https://i.ytimg.com/vi/{video.id}/maxresdefault.jpg",
        "description": description, "channel_id": video.channel_id,
        "channel_url": f"https://www.youtube.com/channel/{video.channel_id}",
        "duration": int(video.duration), "view_count": 48213, "average_rating": None,
        "age_limit": 0, "webpage_url": url, "categories": ["Music"],
        "tags": ["music production", video.topic.lower(), "tutorial", "ableton"],
        "playable_in_embed": True, "live_status": "not_live", "release_timestamp": None,
        "_format_sort_fields": ["quality", "res", "fps", "hdr:12", "source", "vcodec", "channels", "acodec", "lang", "proto"],
        "automatic_captions": captions, "subtitles": {}, "comment_count": 214,
        "chapters": video.chapters, "heatmap": None, "like_count": 1904,
        "channel": video.channel, "channel_follower_count": 120000,
        "uploader": video.channel, "uploader_id": "@" + video.channel.replace(" ", "").lower(),
        "uploader_url": "https://www.youtube.com/@" + video.channel.replace(" ", "").lower(),
        "upload_date": upload_date, "timestamp": 1710460800, "availability": "public",
        "original_url": url, "webpage_url_basename": "watch", "webpage_url_domain": "youtube.com",
        "extractor": "youtube", "extractor_key": "Youtube", "playlist": None, "playlist_index": None,
        "display_id": video.id, "fulltitle": video.title,
        "duration_string": f"{int(video.duration) // 60}:{int(video.duration) % 60:02d}",
        "release_year": None, "is_live": False, "was_live": False,
        "requested_subtitles": {"en": {"ext": "vtt", "url": f"https://www.youtube.com/api/timedtext?v={video.id}&lang=en&fmt=vtt", "name": "English"}},
        "_has_drm": None, "epoch": 1710500000, "format_id": "137+140", "ext": "mp4",
        "protocol": "https+https", "language": "en", "format_note": "1080p+medium",
        "filesize_approx": 150000000, "tbr": 2600.0, "width": 1920, "height": 1080,
        "resolution": "1920x1080", "fps": 30, "dynamic_range": "SDR", "vcodec": "avc1.640028",
        "vbr": 2470.0, "stretched_ratio": None, "aspect_ratio": 1.78, "acodec": "mp4a.40.2",
        "abr": 129.5, "asr": 44100, "audio_channels": 2, "_type": "video",
        "_version": {"version": "2024.08.06", "current_git_head": None,
                     "release_git_head": "4d9231208332d4c32364b8cd814bff8b20232cae",
                     "repository": "yt-dlp/yt-dlp"},
    }


def write_video(folder: Path, video: Video, *, seed: int = 0) -> list[Path]:
    """`Title [ID].info.json` and `Title [ID].en.vtt` for one video; returns both paths."""
    info = folder / f"{video.stem}.info.json"
    vtt = folder / f"{video.stem}.en.vtt"
    # yt-dlp's write_json_file: json.dump(..., ensure_ascii=False), one line.
    info.write_text(json.dumps(info_json(video), ensure_ascii=False), encoding="utf-8")
    vtt.write_text(auto_caption_vtt(video, seed=seed), encoding="utf-8")
    return [info, vtt]


def generate(folder: str | Path, n: int, *, seed: int = 0, words: int = 3500,
             minutes: float = 20) -> list[Path]:
    """Write `n` yt-dlp downloads into `folder` (made if missing); returns every file written,
    the info.json and the .en.vtt of each video in turn."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for i in range(n):
        written += write_video(folder, build_video(seed, i, words=words, minutes=minutes), seed=seed)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--words", type=int, default=3500)
    parser.add_argument("--minutes", type=float, default=20)
    args = parser.parse_args(argv)
    files = generate(args.folder, args.n, seed=args.seed, words=args.words, minutes=args.minutes)
    print(f"{len(files) // 2} videos, {len(files)} files in {args.folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
