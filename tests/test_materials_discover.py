"""Discovery: a real-looking mixed folder, kinds by content, hostile files refused beside good ones."""

from __future__ import annotations

import os
from pathlib import Path

from materials_fixtures import AUTO_VTT, SRT_CP1252, pdf_bytes, write_download

from tui.materials import Material, Refusal, SourceGroup, discover, read


def build(root: Path) -> None:
    """A producer's folder: yt-dlp downloads with their side files, notes in an Obsidian
    vault, a manual, a KB document, and bad files among them."""
    dl = root / "youtube"
    write_download(dl, "Reverb Tricks [dQw4w9WgXcQ]")
    (dl / "Reverb Tricks [dQw4w9WgXcQ].webp").write_bytes(b"RIFF\x00\x00WEBPVP8 ")
    (dl / "Reverb Tricks [dQw4w9WgXcQ].mp4.part").write_bytes(b"\x00" * 64)
    (dl / "Reverb Tricks [dQw4w9WgXcQ].live_chat.json").write_text("{}")
    (dl / "garbage.en.vtt").write_bytes(bytes(range(256)) * 8)
    (dl / "lesson_02.srt").write_bytes(SRT_CP1252.encode("cp1252"))
    vault = root / "vault"
    (vault / ".obsidian").mkdir(parents=True)
    (vault / ".obsidian" / "workspace.json").write_text('{"main": {}}')
    (vault / ".git").mkdir()
    (vault / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (vault / "reverb.md").write_text("## Pre-delay\nKeep consonants dry.\n")
    (vault / "attachments").mkdir()
    (vault / "attachments" / "diagram.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (vault / "loop").symlink_to(vault, target_is_directory=True)
    (vault / "dangling.md").symlink_to(vault / "gone.md")
    manuals = root / "manuals"
    manuals.mkdir()
    (manuals / "synth.pdf").write_bytes(pdf_bytes(["Filters\nThe ladder filter."], outline=[("Filters", 0)]))
    (manuals / "fake.pdf").write_text("this is not a pdf")
    (manuals / "Manual (no extension)").write_bytes(pdf_bytes(["Oscillators and envelopes."]))
    (manuals / "captions.txt").write_text(AUTO_VTT)  # WebVTT under another name
    (manuals / "huge.md").write_bytes(b"")
    os.truncate(manuals / "huge.md", 17 * 1024 * 1024)
    (root / "my-kb.json").write_text('{"format": "chrysopedia.kb/1", "creators": []}')


def describe(item) -> tuple:
    if isinstance(item, Refusal):
        return ("refused", str(item.path.relative_to(item.path.parents[1])), item.reason)
    return (item.kind, str(item.main.relative_to(item.main.parents[1])), len(item.files))


def test_a_mixed_folder(tmp_path):
    build(tmp_path)
    items = list(discover([tmp_path]))
    assert [describe(i) for i in items] == [
        ("kb", f"{tmp_path.name}/my-kb.json", 1),
        ("pdf", "manuals/Manual (no extension)", 1),
        ("subtitles", "manuals/captions.txt", 1),
        ("refused", "manuals/fake.pdf", "not a PDF (no %PDF- header)"),
        ("refused", "manuals/huge.md", "file is 17 MiB, over the 16 MiB limit for notes"),
        ("pdf", "manuals/synth.pdf", 1),
        ("refused", "vault/dangling.md", "broken symlink (its target is missing)"),
        ("refused", "vault/loop", "symlink loop (leads back to a folder above it)"),
        ("note", "vault/reverb.md", 1),
        ("ytdlp", "youtube/Reverb Tricks [dQw4w9WgXcQ].en.vtt", 2),
        ("refused", "youtube/garbage.en.vtt", "not a WebVTT file (no WEBVTT header)"),
        ("subtitles", "youtube/lesson_02.srt", 1),
    ]
    assert [describe(i) for i in discover([tmp_path])] == [describe(i) for i in items]  # stable

    results = {}
    for item in items:
        if isinstance(item, SourceGroup) and item.kind != "kb":
            results[item.main.name] = read(item)
    assert not [v for v in results.values() if isinstance(v, Refusal)]
    good = {k: v for k, v in results.items() if isinstance(v, Material)}
    assert sorted(good) == ["Manual (no extension)", "Reverb Tricks [dQw4w9WgXcQ].en.vtt", "captions.txt",
                            "lesson_02.srt", "reverb.md", "synth.pdf"]
    assert good["lesson_02.srt"].creator_name == "youtube"
    assert good["Reverb Tricks [dQw4w9WgXcQ].en.vtt"].video.id == "dQw4w9WgXcQ"


def test_a_file_named_alone_comes_with_its_info_json(tmp_path):
    subs, info = write_download(tmp_path, "Reverb Tricks [dQw4w9WgXcQ]")
    for named in (subs, info):
        items = list(discover([named]))
        assert [(i.kind, i.files) for i in items] == [("ytdlp", (subs, info))]
    assert len(list(discover([tmp_path, subs, tmp_path / "." / subs.name]))) == 1  # once


def test_missing_paths_and_relative_paths(tmp_path, monkeypatch):
    missing = list(discover([tmp_path / "nope"]))
    assert [(r.path.name, r.reason) for r in missing] == [("nope", "no such file or folder")]
    (tmp_path / "a.md").write_text("Text.\n")
    monkeypatch.chdir(tmp_path)
    (item,) = discover(["a.md"])
    assert item.main == tmp_path / "a.md" and item.main.is_absolute()


def test_a_deep_tree_does_not_hit_the_recursion_limit(tmp_path):
    folder = tmp_path
    for i in range(120):
        folder = folder / f"d{i}"
    folder.mkdir(parents=True)
    (folder / "deep.md").write_text("Deep note.\n")
    assert [i.main.name for i in discover([tmp_path])] == ["deep.md"]


def test_json_is_a_kb_document_by_content_or_when_named(tmp_path):
    (tmp_path / "my-kb.json").write_text('{"creators": [], "techniques": [], "format": "chrysopedia.kb/2"}')
    (tmp_path / "typo.json").write_text('{"format": "chrysopedia.kb/1x", "techniques": []}')
    (tmp_path / "package.json").write_text('{"name": "vault-plugin", "version": "1.0.0"}')
    assert [(i.kind, i.main.name) for i in discover([tmp_path])] == [("kb", "my-kb.json"), ("kb", "typo.json")]
    # named on its own, any .json goes to the KB validator (which refuses this one)
    assert [(i.kind, i.main.name) for i in discover([tmp_path / "package.json"])] == [("kb", "package.json")]


def test_a_name_with_a_control_character_or_bidi_override_is_refused(tmp_path):
    # Locators, exports and the screen name the file and "open" needs its real name, so
    # such a name cannot be cleaned: it is refused, as the KB validator refuses it.
    (tmp_path / "good.md").write_text("## Gain\nRaise it.\n")
    (tmp_path / "evil\x1b]0;pwned\x07.md").write_text("## Gain\nRaise it.\n")
    (tmp_path / "drums\u202egpj.srt").write_text("1\n00:00:01,000 --> 00:00:02,000\nKick.\n")
    write_download(tmp_path / "dl\x1b[31m", "Reverb Tricks [dQw4w9WgXcQ]")
    items = list(discover([tmp_path]))
    groups = [i for i in items if isinstance(i, SourceGroup)]
    refused = {i.path.name: i.reason for i in items if isinstance(i, Refusal)}
    assert [g.main.name for g in groups] == ["good.md"]
    assert refused == {
        "drums\u202egpj.srt": "its name holds a control character (U+202E); rename it to import it",
        "evil\x1b]0;pwned\x07.md": "its name holds a control character (U+001B); rename it to import it",
        # a folder's name is part of every file's path under it
        "Reverb Tricks [dQw4w9WgXcQ].en.vtt": "its name holds a control character (U+001B); rename it to import it",
    }
    # named on its own, the same
    assert isinstance(next(discover([tmp_path / "evil\x1b]0;pwned\x07.md"])), Refusal)
