"""Write the Wan image-to-video sample datasets beside this script, byte for byte the same on every run.

    python samples/wan/make_sample.py

* `wan-i2v-training-dataset.zip`: first frame (wan2.6-i2v, wan2.5-i2v-preview, wan2.2-i2v-flash, wan2.7-i2v);
* `wan-kf2v-training-dataset.zip`: first and last frame (wan2.2-kf2v-flash), frames under `image/`, videos under
  `video/`, as the guide's sample lays them out.

The layout and `data.jsonl` fields follow "Fine-tune a video generation model", section "Build a custom dataset"
(www.alibabacloud.com/help/en/model-studio/wan-video-generation-finetune-guide): 10 samples (the documented
minimum). Frames are real 32x32 PNGs. Videos are ISO base media headers (`ftyp`, and a `moov` whose `mvhd` says
3 s and whose `tkhd` says 32x32) with no media samples: enough for every check this project makes and for the
emulator, far too little for real training (use the guide's sample zips for that).
"""

from __future__ import annotations

import json
import struct
import zipfile
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
SAMPLES = 10
STAMP = (2026, 1, 1, 0, 0, 0)  # fixed timestamps: the zip is the same bytes on every run
EFFECT = "Then the s86b5p paper-lantern effect begins: warm lanterns rise slowly around the subject."
SUBJECTS = [
    "a young woman in a red coat stands on a snowy street",
    "an old fisherman mends a net on a wooden pier",
    "a child in a yellow raincoat holds an umbrella",
    "a chef in white plates a dessert in a bright kitchen",
    "a cyclist rests beside a mountain road at dusk",
    "a cat sits on a windowsill above a quiet canal",
    "a violinist plays under the arches of an old bridge",
    "a gardener kneels among tulips in a greenhouse",
    "a student reads on the steps of a library",
    "a dancer in a blue dress pauses on an empty stage",
]


def png(seed: int) -> bytes:
    """A 32x32 PNG in two colours derived from `seed`."""

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    colour = bytes(((seed * 53) % 256, (seed * 97) % 256, (seed * 29) % 256))
    rows = b"".join(b"\x00" + (colour if y < 16 else bytes(3 * [200])) * 32 for y in range(32))
    header = struct.pack(">IIBBBBB", 32, 32, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")


def mp4_header(seconds: int = 3, width: int = 32, height: int = 32) -> bytes:
    """`ftyp` + `moov` (`mvhd`, one `trak` with its `tkhd`) + an empty `mdat`."""

    def box(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", 8 + len(body)) + tag + body

    matrix = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
    mvhd = box(b"mvhd", bytes(4) + struct.pack(">IIII", 0, 0, 1000, seconds * 1000) + struct.pack(">IH", 0x10000, 0x100)
               + bytes(10) + matrix + bytes(24) + struct.pack(">I", 2))  # fmt: skip
    tkhd = box(b"tkhd", b"\x00\x00\x00\x03" + struct.pack(">IIII", 0, 0, 1, 0) + struct.pack(">I", seconds * 1000)
               + bytes(16) + matrix + struct.pack(">II", width << 16, height << 16))  # fmt: skip
    return (
        box(b"ftyp", b"isom" + struct.pack(">I", 512) + b"isomiso2avc1mp41")
        + box(b"moov", mvhd + box(b"trak", tkhd))
        + box(b"mdat", b"")
    )


def write(path: Path, files: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, STAMP)
            # Media are already compressed: store them, deflate only the index (as zip tools do for text).
            info.compress_type = zipfile.ZIP_DEFLATED if name.endswith(".jsonl") else zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)


def first_frame() -> dict[str, bytes]:
    lines, media = [], {}
    for n in range(1, SAMPLES + 1):
        prompt = f"The video begins with {SUBJECTS[n - 1]}. {EFFECT}"
        lines.append({"prompt": prompt, "first_frame_path": f"image_{n}.png", "video_path": f"video_{n}.mp4"})
        media[f"image_{n}.png"] = png(n)
        media[f"video_{n}.mp4"] = mp4_header()
    return {"data.jsonl": _jsonl(lines), **media}


def first_and_last_frame() -> dict[str, bytes]:
    lines, media = [], {}
    for n in range(1, SAMPLES + 1):
        prompt = f"The video begins with {SUBJECTS[n - 1]}. Then she/he begins the s86b5p transformation."
        lines.append(
            {
                "prompt": prompt,
                "first_frame_path": f"image/image_{n}_first.png",
                "last_frame_path": f"image/image_{n}_last.png",
                "video_path": f"video/video_{n}.mp4",
            }
        )
        media[f"image/image_{n}_first.png"] = png(n)
        media[f"image/image_{n}_last.png"] = png(n + 100)
        media[f"video/video_{n}.mp4"] = mp4_header()
    return {"data.jsonl": _jsonl(lines), **media}


def _jsonl(lines: list[dict[str, str]]) -> bytes:
    return "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines).encode()


if __name__ == "__main__":
    write(HERE / "wan-i2v-training-dataset.zip", first_frame())
    write(HERE / "wan-kf2v-training-dataset.zip", first_and_last_frame())
    print("wrote", *(p.name for p in sorted(HERE.glob("*.zip"))))
