"""Dataset zips, honest and hostile, written to disk and checked by ranged reads (`validate_zip_file`)."""

from __future__ import annotations

import random
import string
from pathlib import Path

import pytest
from zip_helpers import STORED, Entry, build_zip, index_entry, jpeg_header, mp4, png, wan_entries, write_zip

from bailian_flow.validate import DatasetError
from bailian_flow.validate._zip import validate_zip_file


async def problem(path: Path, **options: object) -> DatasetError:
    with pytest.raises(DatasetError) as caught:
        await validate_zip_file(path, **options)  # type: ignore[arg-type]
    return caught.value


def replace(entries: list[Entry], target: str, **changes: object) -> list[Entry]:
    out = []
    for entry in entries:
        if entry.name == target:
            entry = Entry(**{**entry.__dict__, **changes})  # type: ignore[arg-type]
        out.append(entry)
    return out


# --- honest archives -------------------------------------------------------------------------------------------


async def test_first_frame_set_passes(tmp_path: Path) -> None:
    stats = await validate_zip_file(write_zip(tmp_path / "set.zip", wan_entries()), model="wan2.6-i2v")
    assert (stats.kind, stats.records, stats.entries, stats.warnings) == ("wan-i2v", 10, 21, ())


async def test_first_and_last_frame_set_in_folders_passes(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "kf.zip", wan_entries(kf2v=True, folders=True))
    stats = await validate_zip_file(path)
    assert (stats.kind, stats.records) == ("wan-kf2v", 10)


async def test_zip64_archive_passes(tmp_path: Path) -> None:
    stats = await validate_zip_file(
        write_zip(tmp_path / "z64.zip", wan_entries(), zip64=True), model="wan2.5-i2v-preview"
    )
    assert stats.records == 10


async def test_validation_set_needs_no_videos(tmp_path: Path) -> None:
    lines = [{"prompt": f"p{n}", "first_frame_path": f"image_{n}.png"} for n in range(1, 3)]
    entries = [index_entry(lines), *(Entry(f"image_{n}.png", png()) for n in range(1, 3))]
    stats = await validate_zip_file(write_zip(tmp_path / "valid.zip", entries), role="validation")
    assert (stats.role, stats.records) == ("validation", 2)


async def test_extra_entries_are_a_warning(tmp_path: Path) -> None:
    path = write_zip(tmp_path / "set.zip", [*wan_entries(), Entry("notes.txt", b"hello")])
    stats = await validate_zip_file(path)
    assert stats.warnings == ("1 entr(y/ies) not named by data.jsonl, ignored: notes.txt",)


# --- the archive itself ----------------------------------------------------------------------------------------


async def test_truncated_archive(tmp_path: Path) -> None:
    whole = build_zip(wan_entries())
    (tmp_path / "half.zip").write_bytes(whole[: len(whole) // 2])
    error = await problem(tmp_path / "half.zip")
    assert (
        str(error) == "half.zip: not a zip archive, or truncated: no end of central directory record in its last bytes"
    )


async def test_archive_missing_bytes_in_the_middle(tmp_path: Path) -> None:
    whole = build_zip(wan_entries())
    (tmp_path / "cut.zip").write_bytes(whole[:100] + whole[200:])
    error = await problem(tmp_path / "cut.zip")
    assert "does not end where the end record starts" in str(error)
    assert error.object_name == "cut.zip"


async def test_zip64_without_its_locator(tmp_path: Path) -> None:
    whole = build_zip(wan_entries(), zip64=True)
    eocd = whole.rfind(b"PK\x05\x06")
    (tmp_path / "z.zip").write_bytes(whole[: eocd - 20] + whole[eocd:])
    error = await problem(tmp_path / "z.zip")
    assert "zip64 locator is missing" in str(error)


async def test_zip_bomb_by_ratio(tmp_path: Path) -> None:
    entries = replace(wan_entries(), "video_1.mp4", data=mp4() + bytes(30 << 20), method=8)
    error = await problem(write_zip(tmp_path / "bomb.zip", entries))
    assert str(error).startswith("bomb.zip: entry 'video_1.mp4' inflates ")
    assert str(error).endswith(", at most 100): zip bomb by ratio")


async def test_zip_bomb_whose_directory_lies_about_the_size(tmp_path: Path) -> None:
    entries = replace(wan_entries(), "data.jsonl", declared_size=40)
    error = await problem(write_zip(tmp_path / "liar.zip", entries))
    assert str(error) == "liar.zip: entry 'data.jsonl' inflates past its declared 40 bytes: zip bomb"


async def test_zip_bomb_by_count(tmp_path: Path) -> None:
    entries = [*wan_entries(), *(Entry(f"pad_{n}.txt", b"", method=STORED) for n in range(10_000))]
    error = await problem(write_zip(tmp_path / "many.zip", entries))
    assert str(error) == "many.zip: the archive lists 10,021 entries (at most 10,000): zip bomb by count"


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("../evil.png", "climbs out of the archive root with '..'"),
        ("image/../../evil.png", "climbs out of the archive root with '..'"),
        ("..\\evil.png", "climbs out of the archive root with '..'"),
        ("/etc/evil.png", "is an absolute path"),
        ("C:/evil.png", "starts with a drive letter"),
    ],
)
async def test_entry_outside_the_archive_root(tmp_path: Path, name: str, reason: str) -> None:
    error = await problem(write_zip(tmp_path / "out.zip", [*wan_entries(), Entry(name, b"x")]))
    assert str(error) == f"out.zip: entry {name!r} {reason}: every entry must stay inside the archive root"


async def test_symbolic_link_entry(tmp_path: Path) -> None:
    error = await problem(
        write_zip(tmp_path / "link.zip", [*wan_entries(), Entry("image_0.png", b"/etc/passwd", symlink=True)])
    )
    assert str(error) == "link.zip: entry 'image_0.png' is a symbolic link (links could point outside the archive)"


async def test_missing_index(tmp_path: Path) -> None:
    error = await problem(write_zip(tmp_path / "noindex.zip", wan_entries()[1:]))
    assert str(error) == "noindex.zip: no data.jsonl index at the archive root"


async def test_index_inside_a_folder(tmp_path: Path) -> None:
    entries = [Entry(f"dataset/{entry.name}", entry.data, entry.method) for entry in wan_entries()]
    error = await problem(write_zip(tmp_path / "wrapped.zip", entries))
    assert "data.jsonl must be at the archive root, found 'dataset/data.jsonl'" in str(error)


# --- the index and the media it names ---------------------------------------------------------------------------


async def test_index_names_a_missing_entry(tmp_path: Path) -> None:
    entries = [entry for entry in wan_entries() if entry.name != "video_4.mp4"]
    error = await problem(write_zip(tmp_path / "gap.zip", entries))
    assert str(error) == "gap.zip:data.jsonl line 4, field video_path: names 'video_4.mp4', which is not in the archive"


async def test_image_whose_bytes_are_another_type(tmp_path: Path) -> None:
    entries = replace(wan_entries(), "image_3.png", data=jpeg_header(64, 64))
    error = await problem(write_zip(tmp_path / "t.zip", entries))
    assert (
        str(error)
        == "t.zip:data.jsonl line 3, field first_frame_path: 'image_3.png': the file is JPEG but its extension says PNG"
    )


async def test_image_of_an_unsupported_extension(tmp_path: Path) -> None:
    entries = replace(wan_entries(), "image_2.png", name="image_2.gif")
    entries[0] = index_entry(
        [{"prompt": "p", "first_frame_path": f"image_{n}.{'gif' if n == 2 else 'png'}", "video_path": f"video_{n}.mp4"}
         for n in range(1, 11)]
    )  # fmt: skip
    error = await problem(write_zip(tmp_path / "gif.zip", entries))
    assert error.line == 2 and error.field == "first_frame_path"
    assert error.reason == "'image_2.gif': a image must be one of BMP, JPEG, PNG, WEBP (by extension)"


async def test_video_that_is_not_a_video(tmp_path: Path) -> None:
    entries = replace(wan_entries(), "video_2.mp4", data=png())
    error = await problem(write_zip(tmp_path / "v.zip", entries))
    assert error.reason == "'video_2.mp4': the entry is not a MP4 video (its first bytes say PNG)"
    assert (error.line, error.field) == (2, "video_path")


@pytest.mark.parametrize(
    ("model", "seconds", "reason"),
    [
        ("wan2.6-i2v", 10.5, "'video_7.mp4': the video lasts 10.50 s (at most 10 s for wan2.6)"),
        ("wan2.2-i2v-flash", 6, "'video_7.mp4': the video lasts 6.00 s (at most 5 s for wan2.2)"),
        (
            "wan2.7-i2v",
            6,
            "'video_7.mp4': the video lasts 6.00 s (at most 5 s for wan2.7-i2v: the strictest documented limit)",
        ),
        (None, 11, "'video_7.mp4': the video lasts 11.00 s (at most 10 s for any Wan model; wan2.2 models take 5 s)"),
    ],
)
async def test_video_longer_than_the_model_takes(
    tmp_path: Path, model: str | None, seconds: float, reason: str
) -> None:
    entries = replace(wan_entries(), "video_7.mp4", data=mp4(seconds))
    error = await problem(write_zip(tmp_path / "long.zip", entries), model=model)
    assert (error.line, error.field, error.reason) == (7, "video_path", reason)


async def test_video_frame_larger_than_documented(tmp_path: Path) -> None:
    entries = replace(wan_entries(), "video_1.mp4", data=mp4(width=4100, height=2000))
    error = await problem(write_zip(tmp_path / "wide.zip", entries))
    assert error.reason == "'video_1.mp4': the video is 4100x2000 (at most 4096x4096)"


async def test_video_without_a_movie_box(tmp_path: Path) -> None:
    entries = replace(wan_entries(), "video_1.mp4", data=mp4(moov=False))
    error = await problem(write_zip(tmp_path / "nomoov.zip", entries))
    assert error.reason.startswith("'video_1.mp4': the video has no moov box")


@pytest.mark.parametrize("method", [STORED, 8])
async def test_movie_box_after_the_media_is_found_stored_or_deflated(tmp_path: Path, method: int) -> None:
    entries = replace(wan_entries(), "video_1.mp4", data=mp4(12, mdat_first=3 << 20), method=method)
    error = await problem(write_zip(tmp_path / "late.zip", entries), model="wan2.5-i2v-preview")
    assert error.reason == "'video_1.mp4': the video lasts 12.00 s (at most 10 s for wan2.5)"


async def test_image_larger_than_documented(tmp_path: Path) -> None:
    entries = replace(wan_entries(), "image_5.png", data=png(width=4097, height=2))
    error = await problem(write_zip(tmp_path / "big.zip", entries))
    assert error.reason == "'image_5.png': the image is 4097x2 (at most 4096x4096)"


async def test_too_few_samples(tmp_path: Path) -> None:
    error = await problem(write_zip(tmp_path / "few.zip", wan_entries(samples=9)))
    assert str(error) == "few.zip:data.jsonl: 9 sample(s): a training set needs at least 10"


async def test_last_frame_in_a_first_frame_model(tmp_path: Path) -> None:
    error = await problem(write_zip(tmp_path / "kf.zip", wan_entries(kf2v=True)), model="wan2.2-i2v-flash")
    assert (error.line, error.field) == (1, "last_frame_path")
    assert error.reason == "unknown field (first-and-last-frame fields in a first-frame dataset?)"


async def test_every_problem_is_collected(tmp_path: Path) -> None:
    entries = wan_entries()
    lines = [
        {"prompt": "p", "first_frame_path": f"image_{n}.png", "video_path": f"video_{n}.mp4"} for n in range(1, 11)
    ]
    del lines[1]["video_path"]
    lines[6]["prompt"] = 7
    entries[0] = index_entry([*lines[:5], "not json", *lines[5:]])
    error = await problem(write_zip(tmp_path / "many.zip", entries))
    assert [(e.line, e.field, e.reason) for e in error.errors] == [
        (2, "video_path", "missing"),
        (6, None, "not valid JSON (Expecting value: line 1 column 1 (char 0))"),
        (8, "prompt", "expected a non-empty string"),
    ]


async def test_file_names_outside_the_documented_alphabet(tmp_path: Path) -> None:
    entries = replace(wan_entries(), "image_1.png", name="image 1.png")
    lines = [
        {
            "prompt": "p",
            "first_frame_path": "image 1.png" if n == 1 else f"image_{n}.png",
            "video_path": f"video_{n}.mp4",
        }
        for n in range(1, 11)
    ]
    entries[0] = index_entry(lines)
    error = await problem(write_zip(tmp_path / "names.zip", entries))
    assert error.reason == "'image 1.png': file and folder names may use only English letters, digits, '_' and '-'"


# --- Qwen-VL packed images ---------------------------------------------------------------------------------------


def vl_line(image: str) -> dict[str, object]:
    return {
        "messages": [
            {"role": "user", "content": [{"text": "What is in the picture?"}, {"image": image}]},
            {"role": "assistant", "content": [{"text": "A red square."}]},
        ]
    }


async def test_vl_zip_with_images_in_folders_passes(tmp_path: Path) -> None:
    entries = [
        index_entry([vl_line("a.png"), vl_line("b.jpg")]),
        Entry("img/a.png", png()),
        Entry("jpg/b.jpg", jpeg_header(800, 600)),
    ]
    stats = await validate_zip_file(write_zip(tmp_path / "vl.zip", entries), model="qwen3-vl-8b-instruct")
    assert (stats.kind, stats.records) == ("vl", 2)


async def test_vl_zip_image_named_with_its_folder(tmp_path: Path) -> None:
    entries = [index_entry([vl_line("img/a.png")]), Entry("img/a.png", png())]
    error = await problem(write_zip(tmp_path / "vl.zip", entries))
    assert (error.line, error.field, error.reason) == (
        1,
        "messages[0].content[1].image",
        "name the image file only, without its folder",
    )


async def test_vl_zip_image_over_1024_pixels(tmp_path: Path) -> None:
    entries = [index_entry([vl_line("a.jpg")]), Entry("a.jpg", jpeg_header(1025, 10))]
    error = await problem(write_zip(tmp_path / "vl.zip", entries))
    assert error.reason == "'a.jpg': the image is 1025x10 (at most 1024x1024)"


async def test_an_overlong_index_line_is_named_and_the_rest_still_read(tmp_path: Path) -> None:
    noise = "".join(random.Random(1).choices(string.ascii_letters, k=(1 << 20) + 10))
    lines: list[object] = [
        {"prompt": "p", "first_frame_path": f"image_{n}.png", "video_path": f"video_{n}.mp4"} for n in range(1, 11)
    ]
    lines.insert(3, {"prompt": noise})
    lines.append("{broken")
    entries = wan_entries()
    entries[0] = index_entry(lines)
    error = await problem(write_zip(tmp_path / "long.zip", entries))
    assert [(e.line, e.reason) for e in error.errors] == [
        (4, "line longer than 1,048,576 bytes"),
        (12, "not valid JSON (Expecting property name enclosed in double quotes: line 1 column 2 (char 1))"),
    ]


async def test_thousands_of_entries_parse_and_extras_are_one_warning(tmp_path: Path) -> None:
    padding = [Entry(f"pad/pad_{n}.txt", b"", method=STORED) for n in range(9_000)]
    stats = await validate_zip_file(write_zip(tmp_path / "wide.zip", [*wan_entries(), *padding]))
    assert stats.entries == 9_021
    assert stats.warnings[0].startswith("9000 entr(y/ies) not named by data.jsonl, ignored: pad/pad_0.txt, ")
