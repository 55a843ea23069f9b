"""Qwen-VL JSONL: line/field errors, image references by kind, the freeze_vit billing warning, and the samples."""

from __future__ import annotations

import asyncio
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from zip_helpers import png

from bailian_flow.validate import DatasetError
from bailian_flow.validate._media_entry import validate_path
from bailian_flow.validate._vl import classify_ref, freeze_vit_warning, image_fields, validate_vl_jsonl
from bailian_flow.validate._vlpack import pack_vl_jsonl
from bailian_flow.validate._zip import validate_zip_file

SAMPLES = Path(__file__).resolve().parents[2] / "samples"


def chat(*user_parts: dict[str, Any], answer: str = "A square.") -> dict[str, Any]:
    return {
        "messages": [
            {"role": "user", "content": [{"text": "What is this?"}, *user_parts]},
            {"role": "assistant", "content": [{"text": answer}]},
        ]
    }


def write(tmp_path: Path, *records: Any) -> Path:
    path = tmp_path / "vl.jsonl"
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records), encoding="utf-8")
    return path


def test_urls_and_local_images_are_reported_by_kind(tmp_path: Path) -> None:
    (tmp_path / "pics").mkdir()
    (tmp_path / "pics" / "a.png").write_bytes(png())
    path = write(
        tmp_path,
        chat({"image": "https://example.com/a.jpg"}),
        chat({"image": "oss://dashscope-instant/abc/a.png"}),
        chat({"image": "pics/a.png"}),
    )
    report = validate_vl_jsonl(path)
    assert [(ref.line, ref.kind, ref.value) for ref in report.images] == [
        (1, "url", "https://example.com/a.jpg"),
        (2, "oss", "oss://dashscope-instant/abc/a.png"),
        (3, "local", "pics/a.png"),
    ]
    assert [ref.field for ref in report.local_images] == ["messages[0].content[1].image"]
    assert any("expire 48 h" in warning for warning in report.warnings)


@pytest.mark.parametrize(
    ("record", "line_field_reason"),
    [
        (chat({"image": "file:///etc/passwd"}), ("messages[0].content[1].image", "unsupported image reference")),
        (chat({"image": "data:image/png;base64,AAAA"}), ("messages[0].content[1].image", "unsupported image")),
        (chat({"image": "missing.png"}), ("messages[0].content[1].image", "no such file")),
        (chat({"image": ""}), ("messages[0].content[1].image", "expected a non-empty string")),
        (chat({"video": "clip.mp4"}), ("messages[0].content[1].video", "video parts are for Qwen3.5")),
        (chat({"image": "a.png", "fps": 2}), ("messages[0].content[1].fps", "unknown key 'fps' in a image part")),
        (chat({"image": "a.png", "resized_width": 0}), ("messages[0].content[1].resized_width", "positive integer")),
        (chat({"picture": "a.png"}), ("messages[0].content[1]", "a part needs 'text' or 'image'")),
        ({"messages": [{"role": "user", "content": "hi"}]}, ("messages[0].content", "expected a non-empty list")),
        (
            {"messages": [{"role": "system", "content": "be brief"}, *chat()["messages"]]},
            ("messages[0].content", "expected a non-empty list"),
        ),
        ({"messages": chat()["messages"][:1]}, ("messages[0]", "the last message must be the assistant's")),
        (
            {"messages": [chat()["messages"][0], {"role": "assistant", "content": [{"image": "a.png"}]}]},
            ("messages[1].content[0].image", "images belong in user turns"),
        ),
    ],
)
def test_bad_line_names_its_field(tmp_path: Path, record: Any, line_field_reason: tuple[str, str]) -> None:
    field, reason = line_field_reason
    with pytest.raises(DatasetError) as caught:
        validate_vl_jsonl(write(tmp_path, chat(), record))
    error = caught.value
    assert (error.object_name, error.line, error.field) == ("vl.jsonl", 2, field)
    assert error.reason.startswith(reason) or reason in error.reason


def test_local_image_of_the_wrong_type_or_size(tmp_path: Path) -> None:
    (tmp_path / "fake.png").write_bytes(b"GIF89a" + bytes(40))
    (tmp_path / "wide.png").write_bytes(png(width=1025, height=1))
    with pytest.raises(DatasetError) as caught:
        validate_vl_jsonl(write(tmp_path, chat({"image": "fake.png"}), chat({"image": "wide.png"})))
    assert [(e.line, e.reason) for e in caught.value.errors] == [
        (1, "the file is not an image (its first bytes match no PNG header)"),
        (2, "the image is 1025x1 (at most 1024x1024)"),
    ]


def test_thinking_model_keeps_think_in_the_last_turn(tmp_path: Path) -> None:
    record = {
        "messages": [
            chat()["messages"][0],
            {"role": "assistant", "content": [{"text": "<think>\nhm\n</think>\n\nA."}]},
            {"role": "user", "content": [{"text": "And?"}]},
            {"role": "assistant", "content": [{"text": "B."}]},
        ]
    }
    with pytest.raises(DatasetError) as caught:
        validate_vl_jsonl(write(tmp_path, record), model="qwen3-vl-8b-thinking")
    assert (caught.value.field, caught.value.reason) == (
        "messages[1].content",
        "only the last assistant turn may hold a <think> block",
    )


def test_scheme_classification() -> None:
    assert [classify_ref(v) for v in ("HTTPS://x/y.png", "oss://b/k.png", "a/b.png", "C:\\x.png", "ftp://h/x")] == [
        "url",
        "oss",
        "local",
        "local",
        None,
    ]


def test_freeze_vit_warning_only_when_false_on_a_vl_model() -> None:
    assert freeze_vit_warning("qwen3-vl-8b-instruct", {}) is None
    assert freeze_vit_warning("qwen3-vl-8b-instruct", {"freeze_vit": True}) is None
    assert freeze_vit_warning("qwen3-8b", {"freeze_vit": False}) is None
    warning = freeze_vit_warning("qwen3-vl-8b-thinking", {"freeze_vit": "false"})
    assert warning is not None and "billed by token usage" in warning


def test_validate_path_reports_the_samples_and_leaves_text_datasets_alone() -> None:
    i2v = validate_path(SAMPLES / "wan" / "wan-i2v-training-dataset.zip", model="wan2.6-i2v")
    kf2v = validate_path(SAMPLES / "wan" / "wan-kf2v-training-dataset.zip", model="wan2.2-kf2v-flash")
    packed = validate_path(SAMPLES / "vl" / "train.zip", model="qwen3-vl-8b-instruct")
    listed = validate_path(SAMPLES / "vl" / "train.jsonl", hyper_parameters={"freeze_vit": False})
    assert i2v and kf2v and packed and listed
    assert [(r["ok"], r["type"], r["records"]) for r in (i2v, kf2v, packed, listed)] == [
        (True, "wan-i2v", 10),
        (True, "wan-kf2v", 10),
        (True, "vl", 6),
        (True, "vl", 6),
    ]
    assert listed["images"] == {"url": 0, "oss": 0, "local": 6}
    assert any("freeze_vit" in warning for warning in listed["warnings"])
    assert validate_path(SAMPLES / "sft" / "train.jsonl") is None


def test_validate_path_errors_carry_line_field_and_object(tmp_path: Path) -> None:
    report = validate_path(write(tmp_path, chat({"image": "nope.png"})))
    assert report is not None and not report["ok"]
    assert report["errors"] == [
        {
            "line": 1,
            "field": "messages[0].content[1].image",
            "message": f"no such file: {tmp_path / 'nope.png'}",
            "object": "vl.jsonl",
        }
    ]


def test_packing_a_jsonl_gives_the_documented_zip(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "cat photo.png").write_bytes(png(rgb=(1, 2, 3)))
    (tmp_path / "b" / "cat photo.png").write_bytes(png(rgb=(4, 5, 6)))
    source = write(
        tmp_path,
        chat({"image": "a/cat photo.png"}),
        chat({"image": "b/cat photo.png"}, {"image": "a/cat photo.png"}),
    )
    result = pack_vl_jsonl(source, tmp_path / "packed.zip")
    assert (result.records, result.images) == (2, 2)
    with zipfile.ZipFile(tmp_path / "packed.zip") as archive:
        assert sorted(archive.namelist()) == ["data.jsonl", "images/cat_photo-2.png", "images/cat_photo.png"]
        lines = [json.loads(line) for line in archive.read("data.jsonl").splitlines()]
        assert archive.read("images/cat_photo-2.png") == (tmp_path / "b" / "cat photo.png").read_bytes()
    assert [list(image_fields(line)) for line in lines] == [
        [("messages[0].content[1].image", "cat_photo.png")],
        [("messages[0].content[1].image", "cat_photo-2.png"), ("messages[0].content[2].image", "cat_photo.png")],
    ]
    stats = asyncio.run(validate_zip_file(tmp_path / "packed.zip", model="qwen3-vl-8b-instruct"))
    assert (stats.kind, stats.records) == ("vl", 2)


def test_packing_refuses_urls_and_leaves_nothing(tmp_path: Path) -> None:
    source = write(tmp_path, chat({"image": "https://example.com/a.png"}))
    with pytest.raises(DatasetError) as caught:
        pack_vl_jsonl(source, tmp_path / "packed.zip")
    assert (caught.value.line, caught.value.field) == (1, "messages[0].content[1].image")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["vl.jsonl"]


def test_unreadable_local_paths_are_reported_not_raised(tmp_path: Path) -> None:
    with pytest.raises(DatasetError) as caught:
        validate_vl_jsonl(write(tmp_path, chat({"image": "a\x00b.png"}), chat({"image": "x" * 5000 + ".png"})))
    assert (
        [(e.line, e.reason) for e in caught.value.errors]
        == [
            (1, f"no such file: {tmp_path / 'a'}\x00b.png"),  # pathlib answers False for a NUL byte, not ValueError
            (2, "cannot read " + repr(str(tmp_path / ("x" * 5000 + ".png"))[:80]) + " (OSError)"),
        ]
    )
