"""Damaged copies of good files: each is read or refused with a specific reason, never a
reader's crash (which `read` would report as "could not read: SomeError")."""

from __future__ import annotations

import random

import pytest
from materials_fixtures import (
    AUTO_VTT,
    CLEARED_VTT,
    MANUAL_VTT,
    SRT_UTF8,
    pdf_bytes,
    ytdlp_material,
)

from tui.materials import Material, Refusal, SourceGroup, read

NOTE = b"---\ntitle: x\ntags: [a]\n---\n# T\n## [01:00] A\ntext [[x|y]] ![[z]]\n## B\nmore\n"
SPLICES = [b"-->", b"<00:00:01.000>", b"\n\n", b"[[", b"<c>", b"&amp;", b"99:99:99.999", b"\x1b[31m",
           b"%%EOF", b"\xb2", b"---\n", b"obj", b"endobj", b"/Outlines", b"\x00"]


def mutate(rng: random.Random, data: bytes) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        op, i = rng.random(), rng.randrange(len(b) + 1)
        if op < 0.4 and i < len(b):
            b[i] = rng.randrange(256)
        elif op < 0.6:
            del b[i : i + rng.randint(1, 20)]
        elif op < 0.8:
            b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 10)))
        else:
            b[i:i] = rng.choice(SPLICES)
    return bytes(b)


@pytest.mark.parametrize("name,kind,data", [
    ("auto.vtt", "subtitles", AUTO_VTT.encode()),
    ("youtube.vtt", "subtitles",  # YouTube's own layout: the bulk reading
     ytdlp_material.auto_caption_vtt(ytdlp_material.build_video(2, 1, words=120, minutes=1)).encode()),
    ("cleared.vtt", "subtitles", CLEARED_VTT.encode()),
    ("manual.vtt", "subtitles", MANUAL_VTT.encode()),
    ("movie.srt", "subtitles", SRT_UTF8.encode()),
    ("note.md", "note", NOTE),
    ("manual.pdf", "pdf", pdf_bytes(["Hello\nworld", "Page two"], outline=[("A", 0), ("B", 1)])),
], ids=lambda v: v if isinstance(v, str) and len(v) < 20 else "")
def test_damaged_files_are_read_or_refused_never_crash(tmp_path, name, kind, data):
    rng = random.Random(name)
    path = tmp_path / name
    for _ in range(150):
        path.write_bytes(mutate(rng, data))
        result = read(SourceGroup(kind, path, (path,)))
        assert isinstance(result, Material | Refusal)
        if isinstance(result, Refusal):
            assert not result.reason.startswith("could not read"), result.reason
            assert "\n" not in result.reason
