"""Material in the formats users have, for the readers' tests.

The subtitle samples are written as the tools write them: YouTube's rolling
auto-captions as yt-dlp saves them (`WEBVTT` / `Kind: captions` / `Language: en`,
`align:start position:0%`, a blank-looking line holding one space, inline word
timings, the 10 ms cue repeating a finished line), a manual WebVTT file with
identifiers, a NOTE and a STYLE block, SubRip as a Windows editor saves it.
PDFs are made with pypdf: pages with real text operators, an outline, metadata.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

from pypdf import PdfWriter
from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import ytdlp_material  # noqa: E402

# What was said, in order, in AUTO_VTT (the words a reader must give back, each once).
AUTO_WORDS = (
    "hey what's up guys today we're going to talk about reverb "
    "so the first thing i do is set the pre-delay "
    "to around 20 milliseconds"
).split()

AUTO_SENTENCES = [
    "Hey what's up guys.",
    "Today we're going to talk about reverb.",
    "So the first thing I do is set the pre-delay to around 20 milliseconds.",
]

# "\x20" is the line holding one space that YouTube puts under a finished line.
AUTO_VTT = """WEBVTT
Kind: captions
Language: en

00:00:00.000 --> 00:00:02.990 align:start position:0%
\x20
[Music]

00:00:02.990 --> 00:00:03.000 align:start position:0%
[Music]
\x20

00:00:03.000 --> 00:00:05.150 align:start position:0%
[Music]
hey<00:00:03.240><c> what's</c><00:00:03.480><c> up</c><00:00:03.800><c> guys</c>

00:00:05.150 --> 00:00:05.160 align:start position:0%
hey what's up guys
\x20

00:00:05.160 --> 00:00:06.430 align:start position:0%
hey what's up guys
today<00:00:05.480><c> we're</c><00:00:05.720><c> going</c><00:00:05.960><c> to</c><00:00:06.200><c> talk</c>

00:00:06.430 --> 00:00:06.440 align:start position:0%
today we're going to talk
\x20

00:00:06.440 --> 00:00:08.270 align:start position:0%
today we're going to talk
about<00:00:06.680><c> reverb</c>

00:00:08.270 --> 00:00:08.280 align:start position:0%
about reverb
\x20

00:00:08.280 --> 00:00:09.630 align:start position:0%
about reverb
so<00:00:08.520><c.colorE5E5E5> the</c><00:00:08.760><c> first</c><00:00:09.000><c> thing</c><00:00:09.240><c> i</c><00:00:09.400><c> do</c>

00:00:09.630 --> 00:00:09.640 align:start position:0%
so the first thing i do
\x20

00:00:09.640 --> 00:00:10.590 align:start position:0%
so the first thing i do
is<00:00:09.880><c> set</c><00:00:10.120><c> the</c><00:00:10.360><c> pre-delay</c>

00:00:10.590 --> 00:00:10.600 align:start position:0%
is set the pre-delay
\x20

00:00:10.600 --> 00:00:12.000 align:start position:0%
is set the pre-delay
to<00:00:10.840><c> around</c><00:00:11.080><c> 20</c><00:00:11.320><c> milliseconds</c>

00:00:12.000 --> 00:00:12.010 align:start position:0%
to around 20 milliseconds
\x20

00:00:12.010 --> 00:00:15.000 align:start position:0%
to around 20 milliseconds
[Applause]
"""

# Newer auto-captions, laid out as YouTube serves them after pauses: the lines are
# cleared (a 10 ms cue of two lines holding one space), one-word lines come without
# timings, markers are lower case, and the speech recogniser adds case and punctuation.
CLEARED_WORDS = ["cheers", "cheers", "guys", "we're", "going", "live", "today", "tom", "&", "jerry", "mix", "it"]
CLEARED_SENTENCES = ["Cheers.", "Cheers.", "Guys, we're going live today.", "Tom & Jerry mix it."]
CLEARED_VTT = """WEBVTT
Kind: captions
Language: en

00:00:00.000 --> 00:00:02.000 align:start position:0%
\x20
[music]

00:00:02.000 --> 00:00:02.010 align:start position:0%
\x20
\x20

00:00:02.010 --> 00:00:04.500 align:start position:0%
\x20
cheers

00:00:04.500 --> 00:00:04.510 align:start position:0%
\x20
\x20

00:00:04.510 --> 00:00:07.000 align:start position:0%
\x20
cheers

00:00:07.000 --> 00:00:07.010 align:start position:0%
cheers
\x20

00:00:07.010 --> 00:00:09.000 align:start position:0%
cheers
Guys,<00:00:07.300><c> we're</c><00:00:07.500><c> going</c><00:00:07.700><c> live</c><00:00:07.900><c> today.</c>

00:00:09.000 --> 00:00:09.010 align:start position:0%
Guys, we're going live today.
\x20

00:00:09.010 --> 00:00:11.000 align:start position:0%
Guys, we're going live today.
Tom<00:00:09.300><c> &amp;</c><00:00:09.500><c> Jerry</c><00:00:09.700><c> mix</c><00:00:09.900><c> it.</c>
"""

MANUAL_VTT = """WEBVTT - made in a subtitle editor

STYLE
::cue { color: yellow; }

NOTE
This note is not part of any cue.

intro-1
00:00:01.000 --> 00:00:04.000 line:90% align:center
<v Narrator>Welcome back to the studio.</v>

intro-2
00:00:04.500 --> 00:00:08.000
Today we <i>compress</i> the drum bus,
then we add a little saturation.

00:00:09.500 --> 00:00:12.000
Rock &amp; roll needs glue.
"""

SRT_UTF8 = (
    "1\r\n00:00:01,000 --> 00:00:03,500\r\nThe café sound is <i>warm</i>.\r\n\r\n"
    "2\r\n00:00:04,000 --> 00:00:06,000\r\nWe sidechain the pad to the kick.\r\n\r\n"
)
SRT_CP1252 = (
    "1\r\n00:00:01,000 --> 00:00:03,000\r\nThat’s the naïve way – don’t.\r\n\r\n"
    "2\r\n00:00:03,500 --> 00:00:05,000\r\nUse a high-pass filter instead.\r\n\r\n"
)


def info(video_id: str = "dQw4w9WgXcQ", **over) -> dict:
    """A yt-dlp info.json (the keys readers use, in yt-dlp's order, a few bulky ones too)."""
    data = {
        "id": video_id, "title": "Reverb Tricks for Vocals", "formats": [{"format_id": "18", "ext": "mp4"}],
        "thumbnails": [{"url": f"https://i.ytimg.com/vi/{video_id}/hqdefault.jpg"}],
        "description": "How I set reverb on vocals: pre-delay, decay and EQ on the return.\n\n"
                       "Presets: https://example.com/presets\n\n0:00 Intro\n0:08 Pre-delay",
        "channel_id": "UCabcdefghijklmnopqrstuv", "channel_url": "https://www.youtube.com/channel/UCabcdefghijklmnopqrstuv",
        "duration": 20, "webpage_url": f"https://www.youtube.com/watch?v={video_id}",
        "tags": ["reverb", "vocals", "mixing"], "chapters": None, "channel": "Mix Desk Pro",
        "uploader": "Mix Desk Pro", "upload_date": "20240102", "extractor": "youtube",
        "extractor_key": "Youtube", "_type": "video",
    }
    data.update(over)
    return data


def write_download(folder: Path, stem: str, *, vtt: str = AUTO_VTT, lang: str = "en", **over) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    info_path = folder / f"{stem}.info.json"
    info_path.write_text(json.dumps(info(**over), ensure_ascii=False), encoding="utf-8")
    subs = folder / f"{stem}.{lang}.vtt"
    subs.write_text(vtt, encoding="utf-8")
    return subs, info_path


def pdf_bytes(pages: list[str], *, outline: list[tuple[str, int]] = (), author: str | None = None,
              title: str | None = None, user_password: str | None = None,
              owner_password: str | None = None) -> bytes:
    """A PDF whose pages show `pages` (one text line per "\\n"), with an outline of
    (title, 0-based page) entries."""
    writer = PdfWriter()
    font = writer._add_object(DictionaryObject({
        NameObject("/Type"): NameObject("/Font"), NameObject("/Subtype"): NameObject("/Type1"),
        NameObject("/BaseFont"): NameObject("/Helvetica")}))
    for text in pages:
        page = writer.add_blank_page(612, 792)
        if text:
            ops = ["BT", "/F1 12 Tf", "72 720 Td", "14 TL"]
            for line in text.split("\n"):
                escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
                ops.append(f"({escaped}) Tj T*")
            ops.append("ET")
            stream = DecodedStreamObject()
            stream.set_data("\n".join(ops).encode("latin-1"))
            page[NameObject("/Contents")] = writer._add_object(stream)
            page[NameObject("/Resources")] = DictionaryObject({
                NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})})
    for name, index in outline:
        writer.add_outline_item(title=name, page_number=index)
    meta = {}
    if author:
        meta["/Author"] = author
    if title:
        meta["/Title"] = title
    if meta:
        writer.add_metadata(meta)
    if user_password is not None or owner_password is not None:
        writer.encrypt(user_password=user_password or "", owner_password=owner_password, algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


__all__ = ["ytdlp_material"]
