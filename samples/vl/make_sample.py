"""Write the Qwen-VL sample datasets beside this script, byte for byte the same on every run.

    python samples/vl/make_sample.py

* `train.jsonl` + `images/*.png`: a VL JSONL naming local images. `bailian-flow validate` reports them, and `put`
  must pack or upload them (the VL fine-tune docs train on images packed with the index; see `train.zip`).
* `train.zip`: the documented form ("训练集与评测集", section "SFT 视觉理解（千问VL）", 压缩包要求): `data.jsonl`
  at the root naming images by bare file name, the images in a folder, each at most 1024x1024.

Lines follow the same section: `{"messages": [{"role", "content": [{"text"} | {"image"}]}]}`, a system message in
the list form. Images are real 16x16 PNGs of one colour, and the answers say which colour.
"""

from __future__ import annotations

import json
import struct
import zipfile
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
STAMP = (2026, 1, 1, 0, 0, 0)
COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 160, 60),
    "blue": (30, 60, 220),
    "yellow": (240, 210, 40),
    "purple": (130, 40, 160),
    "orange": (245, 140, 30),
}


def png(rgb: tuple[int, int, int]) -> bytes:
    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    rows = (b"\x00" + bytes(rgb) * 16) * 16
    header = struct.pack(">IIBBBBB", 16, 16, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")


def line(image: str, colour: str) -> dict[str, object]:
    return {
        "messages": [
            {"role": "system", "content": [{"text": "You name the main colour of a picture in one word."}]},
            {"role": "user", "content": [{"text": "What colour is this?"}, {"image": image}]},
            {"role": "assistant", "content": [{"text": colour.capitalize() + "."}]},
        ]
    }


def jsonl(lines: list[dict[str, object]]) -> bytes:
    return "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in lines).encode()


if __name__ == "__main__":
    (HERE / "images").mkdir(exist_ok=True)
    for colour, rgb in COLOURS.items():
        (HERE / "images" / f"{colour}.png").write_bytes(png(rgb))
    (HERE / "train.jsonl").write_bytes(jsonl([line(f"images/{c}.png", c) for c in COLOURS]))
    with zipfile.ZipFile(HERE / "train.zip", "w") as archive:
        files = {"data.jsonl": jsonl([line(f"{c}.png", c) for c in COLOURS])}
        files.update({f"images/{c}.png": png(rgb) for c, rgb in COLOURS.items()})
        for name, data in files.items():
            info = zipfile.ZipInfo(name, STAMP)
            info.compress_type = zipfile.ZIP_DEFLATED if name.endswith(".jsonl") else zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    print("wrote train.jsonl, images/, train.zip")
