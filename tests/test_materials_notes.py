"""Markdown notes: front matter, `##` sections at their lines, timestamps, Obsidian links."""

from __future__ import annotations

from tui.materials import Material, Refusal, SourceGroup, read

NOTE = """---
title: Reverb on vocals
creator: Ana Lopez
tags: [reverb, vocals]
category: mixing
video_url: https://www.youtube.com/watch?v=dQw4w9WgXcQ
---
Reverb makes a vocal sit in the room. See [[Plate reverb|plates]] and [[Delay]].

## [01:30] Pre-delay
Set the pre-delay near 20 ms so the consonants stay dry.
![[predelay-diagram.png]]

```python
## not a heading inside a code fence
```

## [03:05] Decay and EQ
A short decay; cut the lows on the return, see [[EQ basics#Low cut]].
%% private reminder: redo this %%

## Summary
Less is more. #mixing
"""


def note(path, **kw) -> Material | Refusal:
    return read(SourceGroup("note", path, (path,)), **kw)


def test_front_matter_sections_lines_and_links(tmp_path):
    path = tmp_path / "vault" / "reverb.md"
    path.parent.mkdir()
    path.write_text(NOTE, encoding="utf-8")
    m = note(path)
    assert isinstance(m, Material), m
    assert (m.kind, m.title, m.creator_name, m.creator_slug) == ("note", "Reverb on vocals", "Ana Lopez", "ana-lopez")
    assert m.key == f"note:{path}" and m.topic_category == "Mixing"
    assert m.tags[:3] == ["reverb", "vocals", "mixing"]
    assert m.video.id == "dQw4w9WgXcQ" and m.video.url.endswith("dQw4w9WgXcQ")
    got = [(s.heading, s.line, s.locator, s.start_time, s.end_time) for s in m.sections]
    assert got == [
        ("Reverb on vocals", 1, "heading", None, None),
        ("Pre-delay", 10, "video", 90.0, 185.0),
        ("Decay and EQ", 18, "video", 185.0, None),
        ("Summary", 22, "heading", None, None),
    ]
    lines = NOTE.split("\n")
    assert lines[10 - 1].startswith("## [01:30]") and lines[18 - 1].startswith("## [03:05]")
    bodies = "\n".join(s.body for s in m.sections)
    assert "See plates and Delay." in bodies
    assert "predelay-diagram.png" in bodies and "![[" not in bodies and "[[" not in bodies
    assert "EQ basics › Low cut" in bodies
    assert "## not a heading" in m.sections[1].body  # code stays code
    assert "private reminder" not in bodies
    assert m.summary.startswith("Reverb makes a vocal sit in the room.")


def test_without_front_matter(tmp_path):
    path = tmp_path / "Sound design" / "risers.md"
    path.parent.mkdir()
    path.write_bytes(b"# Risers\r\n\r\nNoise sweeps up.\r\n\r\n## [0:45] Filter\r\nOpen the filter.\r\n")
    m = note(path)
    assert m.title == "Risers"
    assert m.creator_name == "Sound design"
    assert note(path, creator="Me").creator_name == "Me"
    assert [(s.heading, s.line, s.locator, s.start_time) for s in m.sections] == [
        ("Risers", 1, "heading", None), ("Filter", 5, "heading", 45.0)]
    assert m.sections[0].body == "Noise sweeps up."  # the title heading is not repeated
    assert m.video is None


def test_bad_front_matter_is_a_warning(tmp_path):
    path = tmp_path / "x.md"
    path.write_text("---\ntitle: [unclosed\ntags: 5\n---\nSome text about compression.\n")
    m = note(path)
    assert isinstance(m, Material)
    assert m.title == "X" and any("not valid YAML" in w for w in m.warnings)
    path.write_text("---\n- a\n- b\n---\nText.\n")
    assert any("not a mapping" in w for w in note(path).warnings)


def test_hostile_notes_are_refused(tmp_path):
    empty = tmp_path / "empty.md"
    empty.write_text("---\ntitle: Nothing\n---\n\n   \n")
    assert note(empty).reason == "empty note (no text)"
    binary = tmp_path / "binary.md"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    assert note(binary).reason == "not a text file (binary data)"
    long = tmp_path / "long.md"
    long.write_text("# Title\n" + "x" * 2_000_000)
    assert note(long).reason == "line 2 is longer than 65536 characters"


def test_terminal_escapes_in_a_note_are_stripped(tmp_path):
    path = tmp_path / "evil.md"
    path.write_text("---\ntitle: \"\\e]0;pwned\\aMix\"\n---\n## Gain\u202e\nRaise \x1b[31mit\x1b[0m.\n")
    m = note(path)
    assert m.title == "Mix" and m.sections[0].heading == "Gain" and m.sections[0].body == "Raise it."


def test_a_note_with_only_top_level_headings_is_split_at_them(tmp_path):
    path = tmp_path / "mixing_checklist.md"
    path.write_text("# Gain staging\nPeaks at -6 dB.\n\n# Bus compression\nTwo dB of glue.\n")
    m = note(path)
    assert m.title == "Mixing checklist"
    assert [(s.heading, s.line, s.body) for s in m.sections] == [
        ("Gain staging", 1, "Peaks at -6 dB."), ("Bus compression", 4, "Two dB of glue.")]


def test_a_front_matter_title_empty_after_cleaning_falls_back(tmp_path):
    path = tmp_path / "compression_notes.md"
    path.write_text('---\ntitle: "\\e[2J\\u202e"\n---\nAttack and release.\n')
    assert note(path).title == "Compression notes"
