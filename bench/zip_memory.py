"""Memory of validating a Wan dataset zip by ranged reads: flat whatever the archive's size.

    python bench/zip_memory.py [--sizes-mb 100,990] [--samples 95] [--via file|store]

For each size, writes a sparse zip in a temp dir (the videos are stored entries whose media bytes are holes, their
`moov` box after the media: the disk holds a few KiB, the archive claims the full size), then validates it with
`validate_archive` in a fresh interpreter and prints the archive size, how many ranged reads and bytes the
validation made, the Python heap peak (tracemalloc) and the process's peak RSS over its idle RSS. Target: the heap
peak does not grow with the archive (the largest single read is bounded by the 1 MiB chunk and the 64 KiB image
head), and bytes read stay a tiny fraction of the archive. `--via store` reads through the store contract the
pipeline uses (`ObjectStore.read_range` of a `FileStore`, wrapped in `StoreRangedReader`, pinned to the ETag), the
media fine-tune kind's path with OSS swapped for a directory.
"""

from __future__ import annotations

import argparse
import json
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHILD = r"""
import asyncio, json, resource, sys, tracemalloc
from pathlib import Path
from bailian_flow.validate import _zipdir
from bailian_flow.validate._zip import validate_archive

class Counting:
    reads = 0
    read_bytes = 0
    largest = 0
    def __init__(self, inner):
        self.inner = inner
    @property
    def size(self):
        return self.inner.size
    async def read(self, offset, length):
        data = await self.inner.read(offset, length)
        Counting.reads += 1
        Counting.read_bytes += len(data)
        Counting.largest = max(Counting.largest, len(data))
        return data

async def main(path, via):
    if via == "file":
        return await validate_archive(Counting(_zipdir.FileRangedReader(path)), path.name, model="wan2.6-i2v")
    from bailian_flow.store import FileStore
    store = FileStore(path.parent)
    info = await store.head(path.name)
    reader = _zipdir.StoreRangedReader(store, path.name, info.size, info.etag)
    return await validate_archive(Counting(reader), path.name, model="wan2.6-i2v")

idle = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
path = Path(sys.argv[1])
tracemalloc.start()
stats = asyncio.run(main(path, sys.argv[2]))
_, peak = tracemalloc.get_traced_memory()
print(json.dumps({
    "records": stats.records, "reads": Counting.reads, "read_bytes": Counting.read_bytes,
    "largest_read": Counting.largest, "heap_peak": peak,
    "rss_over_idle_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - idle,
}))
"""


def png() -> bytes:
    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))

    rows = (b"\x00" + b"\x80\x20\x20" * 32) * 32
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 32, 32, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def box(tag: bytes, body: bytes) -> bytes:
    return struct.pack(">I", 8 + len(body)) + tag + body


FTYP = box(b"ftyp", b"isom" + struct.pack(">I", 512) + b"isommp41")
# The movie box last, after the media (a file not "fast-started"): the worst case, walked by jumps when stored.
MOOV = box(
    b"moov",
    box(b"mvhd", bytes(4) + struct.pack(">IIII", 0, 0, 1000, 5000) + bytes(80))
    + box(b"trak", box(b"tkhd", bytes(76) + struct.pack(">II", 1280 << 16, 720 << 16))),
)


def write_sparse_zip(path: Path, size_bytes: int, samples: int) -> int:
    """Index, `samples` PNGs and `samples` stored videos whose sizes add up to about `size_bytes`."""
    video_size = max(4096, size_bytes // samples - 2048)
    lines = "".join(
        json.dumps({"prompt": f"sample {n}", "first_frame_path": f"image_{n}.png", "video_path": f"video_{n}.mp4"})
        + "\n"
        for n in range(1, samples + 1)
    ).encode()
    image = png()
    directory = bytearray()
    with path.open("wb") as out:

        def add(name: str, data: bytes, declared: int, method: int, crc: int, tail: bytes = b"") -> None:
            offset = out.tell()
            raw_name = name.encode()
            header = struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0x800, method, 0, 0x21, crc, len(data) if method
                                 else declared, declared, len(raw_name), 0)  # fmt: skip
            out.write(header + raw_name + data)
            compressed = len(data) if method else declared
            if not method and declared > len(data) + len(tail):
                out.seek(declared - len(data) - len(tail), 1)  # a hole: the video's media bytes
                out.write(tail)
            directory.extend(
                struct.pack(
                    "<IHHHHHHIIIHHHHHII",
                    0x02014B50,
                    (3 << 8) | 20,
                    20,
                    0x800,
                    method,
                    0,
                    0x21,
                    crc,
                    compressed,
                    declared,
                    len(raw_name),
                    0,
                    0,
                    0,
                    0,
                    0o100644 << 16,
                    offset,
                )
                + raw_name
            )

        packer = zlib.compressobj(6, zlib.DEFLATED, -15)
        add("data.jsonl", packer.compress(lines) + packer.flush(), len(lines), 8, zlib.crc32(lines))
        for n in range(1, samples + 1):
            add(f"image_{n}.png", image, len(image), 0, zlib.crc32(image))
            # The CRC of a sparse video is never checked: validation reads its boxes' headers, not its media.
            hole = video_size - len(FTYP) - 8 - len(MOOV)
            add(f"video_{n}.mp4", FTYP + struct.pack(">I", 8 + hole) + b"mdat", video_size, 0, 0, tail=MOOV)
        cd_offset = out.tell()
        out.write(directory)
        count = 1 + 2 * samples
        out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, len(directory), cd_offset, 0))
        return out.tell()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes-mb", default="100,990")
    parser.add_argument("--samples", type=int, default=95)
    parser.add_argument("--via", choices=("file", "store"), default="file")
    options = parser.parse_args()
    print(f"{'archive':>14} {'reads':>6} {'bytes read':>11} {'largest read':>13} {'heap peak':>10} {'rss+':>8}")
    with tempfile.TemporaryDirectory() as folder:
        for size_mb in (int(s) for s in options.sizes_mb.split(",")):
            path = Path(folder) / f"set_{size_mb}.zip"
            size = write_sparse_zip(path, size_mb * 10**6, options.samples)
            env_path = str(ROOT / "shared")
            done = subprocess.run(
                [sys.executable, "-c", CHILD, str(path), options.via],
                capture_output=True,
                text=True,
                check=True,
                env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"},
            )
            row = json.loads(done.stdout)
            print(
                f"{size:>14,} {row['reads']:>6} {row['read_bytes']:>11,} {row['largest_read']:>13,} "
                f"{row['heap_peak'] / 2**20:>8.2f}Mi {row['rss_over_idle_kib'] / 1024:>6.1f}Mi"
            )
            path.unlink()


if __name__ == "__main__":
    main()
