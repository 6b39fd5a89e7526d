"""PDF manuals: sections from the outline with their page ranges; scans, encryption, damage refused."""

from __future__ import annotations

from materials_fixtures import pdf_bytes

from tui.materials import Material, Refusal, SourceGroup, content_hash, read

PAGES = [
    "Contents\nOscillators 2\nFilters 4",
    "Oscillators\nThe wavetable oscillator morphs between frames.",
    "Unison spreads up to 16 voices with detune.",
    "Filters\nThe ladder filter has 24 dB slope and resonance.",
    "Envelope 2 drives the filter cutoff.",
]


def pdf(path, **kw) -> Material | Refusal:
    return read(SourceGroup("pdf", path, (path,)), **kw)


def test_outline_gives_sections_with_page_ranges(tmp_path):
    path = tmp_path / "wavetable-synth-manual.pdf"
    path.write_bytes(pdf_bytes(PAGES, outline=[("Oscillators", 1), ("Filters", 3)], author="Polygon Audio",
                               title="Wavetable Synth Manual"))
    m = pdf(path)
    assert isinstance(m, Material), m
    assert (m.kind, m.title, m.creator_name, m.key) == ("pdf", "Wavetable Synth Manual", "Polygon Audio", f"pdf:{path}")
    got = [(s.heading, s.locator, s.first_page, s.last_page) for s in m.sections]
    assert got == [
        ("Wavetable Synth Manual", "page", 1, 1),  # the pages before the first outline entry
        ("Oscillators", "page", 2, 3),
        ("Filters", "page", 4, 5),
    ]
    assert "Unison spreads up to 16 voices" in m.sections[1].body
    assert "Envelope 2 drives" in m.sections[2].body and "wavetable" not in m.sections[2].body
    assert m.topic_category == "Synthesis"
    assert m.content_hash == content_hash([path])
    assert pdf(path, creator="Me").creator_name == "Me"


def test_without_outline_pages_are_grouped(tmp_path):
    path = tmp_path / "quick_start.pdf"
    long_page = "\n".join(["Routing the sidechain input to the compressor detector."] * 30)
    path.write_bytes(pdf_bytes([long_page, "Short page one.", "Short page two.", "Short page three.", "Last."]))
    m = pdf(path)
    assert [(s.first_page, s.last_page) for s in m.sections] == [(1, 1), (2, 4), (5, 5)]
    assert m.sections[0].heading.startswith("Routing the sidechain")
    assert m.title == "Quick start" and m.creator_name == "Quick start"  # no Author: the file name


def test_long_outline_sections_are_split(tmp_path):
    path = tmp_path / "big.pdf"
    path.write_bytes(pdf_bytes([f"Page {i + 1} about compression." for i in range(14)], outline=[("All", 0)]))
    m = pdf(path)
    assert [(s.heading, s.first_page, s.last_page) for s in m.sections] == [
        ("All", 1, 6), ("All (continued)", 7, 12), ("All (continued)", 13, 14)]
    assert len({s.anchor for s in m.sections}) == 3


def test_no_text_is_refused(tmp_path):
    path = tmp_path / "scan.pdf"
    path.write_bytes(pdf_bytes(["", "", ""]))
    assert pdf(path).reason == "no extractable text (scanned? OCR is not supported)"


def test_encrypted_pdfs(tmp_path):
    locked = tmp_path / "locked.pdf"
    locked.write_bytes(pdf_bytes(PAGES, user_password="secret", owner_password="owner"))
    assert pdf(locked).reason == "encrypted PDF (needs a password)"
    # an owner password alone restricts editing, not reading: such a manual opens
    restricted = tmp_path / "restricted.pdf"
    restricted.write_bytes(pdf_bytes(PAGES, user_password="", owner_password="owner"))
    assert isinstance(pdf(restricted), Material)


def test_damaged_pdfs_are_refused(tmp_path):
    data = pdf_bytes(PAGES, outline=[("Oscillators", 1)])
    truncated = tmp_path / "truncated.pdf"
    truncated.write_bytes(data[: len(data) // 2])
    assert pdf(truncated).reason == "truncated PDF (no %%EOF at the end)"
    garbage = tmp_path / "garbage.pdf"
    garbage.write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 40 + b"\n%%EOF\n")
    result = pdf(garbage)
    assert isinstance(result, Refusal) and result.reason.startswith("broken PDF")
    huge = tmp_path / "huge.pdf"
    with open(huge, "wb") as f:
        f.write(b"%PDF-1.7\n")
        f.truncate(65 * 1024 * 1024)
    assert pdf(huge).reason == "file is 65 MiB, over the 64 MiB limit for PDFs"


def test_a_single_outline_root_uses_its_children(tmp_path):
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(__import__("io").BytesIO(pdf_bytes(PAGES))))
    root = writer.add_outline_item(title="Manual", page_number=0)
    writer.add_outline_item(title="Oscillators", page_number=1, parent=root)
    writer.add_outline_item(title="Filters", page_number=3, parent=root)
    path = tmp_path / "nested.pdf"
    with open(path, "wb") as f:
        writer.write(f)
    m = pdf(path)
    assert [(s.heading, s.first_page, s.last_page) for s in m.sections] == [
        ("Nested", 1, 1), ("Oscillators", 2, 3), ("Filters", 4, 5)]
