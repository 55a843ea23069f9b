"""The incremental validator: fed the bytes of a dataset as they stream past, it holds only the current line.

File-level decisions (bailian-api.md §9 says "UTF-8 JSONL"; the dashscope SDK's own pre-upload check runs
`json.loads` on every line, so it rejects blank lines and a byte order mark):
- a blank line between records is an error (at the blank line); blank lines at the end are tolerated with a
  warning, and the final line needs no newline;
- a UTF-8 byte order mark is an error, as is any invalid UTF-8 (line and byte column reported). Lines are
  split on b"\\n" before decoding, and that byte never occurs inside a multi-byte character, so a character
  split across chunks is never an error;
- `NaN`/`Infinity` are not JSON and are rejected;
- `max_bytes` (default 300 MiB, the API's fine-tune file limit, §4) fails as soon as it is exceeded;
- `max_line_bytes` (default 8 MiB) bounds the buffered line: a 128K-token conversation is well under 1 MiB
  of UTF-8 text, so a longer line is a broken file (no newlines) rather than data, and must not grow memory.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import AsyncIterable, AsyncIterator, Callable
from pathlib import Path
from typing import Any, NoReturn

from bailian_flow.client.limits import FINE_TUNE_MAX_BYTES

from ._errors import DatasetError, DatasetKind, DatasetStats
from ._rules import RecordError, check_record

# The per-file limit of the file API a fine-tune dataset is uploaded through: Model Studio "模型定制文件管理服务"
# (https://help.aliyun.com/document_detail/2712476.html), section "使用限制": "单个文件大小最大为300MB". The seed's
# "Max 1 GB per file" is out of date; the page wins. One number for the client and the validator (client/limits.py).
FILE_API_MAX_BYTES = FINE_TUNE_MAX_BYTES
DEFAULT_MAX_BYTES = FILE_API_MAX_BYTES
DEFAULT_MAX_LINE_BYTES = 8 * 1024 * 1024
# bailian-api.md §9: below these volumes a fine-tune trains but rarely learns much.
RECOMMENDED_RECORDS: dict[DatasetKind, int] = {"sft": 1000, "dpo": 100}
_KINDS: tuple[DatasetKind, ...] = ("sft", "dpo", "cpt")
# How many problems a collecting validator reports before it stops reading: enough to fix a file in one go.
MAX_REPORTED_ERRORS = 100
_BOM = b"\xef\xbb\xbf"
# Average bytes per line from which `feed` passes lines as memoryviews of the chunk rather than split copies.
_VIEW_LINES_FROM = 2048


def _size(count: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if count >= scale:
            value = count / scale
            return f"{value:.0f} {unit}" if value.is_integer() else f"{value:.1f} {unit}"
    return f"{count} bytes"


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


class _LineRejected(Exception):
    """This line is bad and recorded; collecting goes on with the next one."""


class DatasetValidator:
    """Validate a JSONL dataset fed in chunks of any size.

    By default `feed` raises at the first error. With `max_errors` > 1 a bad line is recorded and reading goes on;
    the error raised (by `finish`, or by `feed` once `max_errors` are found, or at a problem that makes the rest
    of the file unreadable) is the first one, carrying all of them in `.errors`. `on_record` sees each valid record.
    """

    def __init__(
        self,
        kind: DatasetKind,
        *,
        object_name: str,
        max_bytes: int = DEFAULT_MAX_BYTES,
        thinking: bool | None = None,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        fast: bool = True,
        max_errors: int = 1,
        on_record: Callable[[Any], None] | None = None,
    ):
        """`fast=False` puts every line through the full rules: the reference the fast path is tested against."""
        if kind not in _KINDS:
            raise ValueError(f"unknown dataset kind {kind!r} (expected one of {', '.join(_KINDS)})")
        self.kind: DatasetKind = kind
        self.object_name = object_name
        self.max_bytes = max_bytes
        self.max_line_bytes = max_line_bytes
        self.thinking = thinking
        self._partial = bytearray()
        self._line = 1  # number of the line being buffered
        self._bytes = 0
        self._records = 0
        self._first_blank: int | None = None  # first blank line since the last record
        self._trailing_blanks = 0
        self._error: DatasetError | None = None
        self._stats: DatasetStats | None = None
        self.max_errors = max(1, max_errors)
        self.errors: list[DatasetError] = []
        self._on_record = on_record
        from ._fast import FastPath  # msgspec loads with the first validator, not with the package

        # A caller that wants each record parsed (on_record) gets the full path for every line.
        self._fast = FastPath(kind, thinking, enabled=fast and on_record is None)

    @property
    def records(self) -> int:
        """Valid records so far."""
        return self._records

    @property
    def lines(self) -> int:
        """Lines read so far."""
        return self._line - 1

    @property
    def stats(self) -> DatasetStats | None:
        """The result of `finish()`, None before it succeeded."""
        return self._stats

    def feed(self, chunk: bytes) -> None:
        if self._error is not None:
            raise self._error
        if self._stats is not None:
            raise RuntimeError("feed() after finish()")
        self._bytes += len(chunk)
        if self._bytes > self.max_bytes:
            self._fail_at(
                None,
                None,
                f"file exceeds the {_size(self.max_bytes)} limit (read {self._bytes:,} bytes so far)",
            )
        start = 0
        if self._partial:
            newline = chunk.find(b"\n")
            if newline < 0:
                self._check_line_length(len(self._partial) + len(chunk))
                self._partial += chunk
                return
            self._partial += chunk[:newline]
            line = bytes(self._partial)
            self._partial.clear()
            self._next_line(line)
            start = newline + 1
        end = chunk.rfind(b"\n", start)
        if end >= 0:
            if self._bytes >= _VIEW_LINES_FROM * self._line:
                # Long lines: hand the decoder views of the chunk, not copies (a split copied every byte once more).
                view, find = memoryview(chunk), chunk.find
                while start <= end:
                    newline = find(b"\n", start, end + 1)
                    self._next_line(view[start:newline])
                    start = newline + 1
            else:
                # Short lines: one C split costs less than a Python step per line.
                for line in chunk[start:end].split(b"\n"):
                    self._next_line(line)
                start = end + 1
        if start < len(chunk):
            self._check_line_length(len(chunk) - start)
            self._partial += chunk[start:]

    def _next_line(self, line: bytes | memoryview) -> None:
        self._check_line_length(len(line))
        # The fast path only ever accepts; anything else, and every line after a blank one, gets the full rules.
        if self._first_blank is None and self._fast.accepts(line):
            self._records += 1
        else:
            self._process_line(bytes(line))
        self._line += 1

    def finish(self) -> DatasetStats:
        if self._error is not None:
            raise self._error
        if self._stats is not None:
            return self._stats
        if self._partial:
            line = bytes(self._partial)
            self._partial.clear()
            self._process_line(line)
        if self.errors:
            self._stop(self.errors[0])
        if self._bytes == 0:
            self._fail_at(None, None, "file is empty")
        if self._records == 0:
            self._fail_at(None, None, "file has no records (only blank lines)")
        warnings: list[str] = []
        if self._first_blank is not None:
            warnings.append(
                f"{self._trailing_blanks} blank line(s) at the end of the file from line "
                f"{self._first_blank} were ignored"
            )
        recommended = RECOMMENDED_RECORDS.get(self.kind)
        if recommended is not None and self._records < recommended:
            warnings.append(
                f"{self._records} record(s); Bailian recommends at least {recommended:,} for {self.kind.upper()}"
            )
        self._stats = DatasetStats(kind=self.kind, records=self._records, bytes=self._bytes, warnings=tuple(warnings))
        return self._stats

    def _check_line_length(self, length: int) -> None:
        if length > self.max_line_bytes:
            reason = f"line is longer than {_size(self.max_line_bytes)} (is the file newline-delimited?)"
            self._fail_at(self._line, None, reason, fatal=True)

    def _process_line(self, raw: bytes) -> None:
        with contextlib.suppress(_LineRejected):
            self._process(raw)

    def _process(self, raw: bytes) -> None:
        if not raw.strip(b" \t\r"):
            if self._first_blank is None:
                self._first_blank = self._line
            self._trailing_blanks += 1
            return
        if self._first_blank is not None:
            blank, self._first_blank, self._trailing_blanks = self._first_blank, None, 0
            self._fail_at(blank, None, "blank line between records (each line must be one JSON object)")
        if self._line == 1 and raw.startswith(_BOM):
            self._fail(None, "file starts with a UTF-8 byte order mark (BOM); save it as UTF-8 without BOM")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            self._fail(None, f"invalid UTF-8 at byte {exc.start + 1} of the line")
        try:
            record: Any = json.loads(text, parse_constant=_reject_constant)
        except json.JSONDecodeError as exc:
            self._fail(None, f"invalid JSON: {exc.msg} at column {exc.colno}")
        except (ValueError, RecursionError) as exc:
            self._fail(None, f"invalid JSON: {exc}" if isinstance(exc, ValueError) else "invalid JSON: too deep")
        try:
            check_record(record, self.kind, self.thinking)
        except RecordError as exc:
            self._fail(exc.field, exc.reason)
        self._records += 1
        if self._on_record is not None:
            self._on_record(record)

    def _fail(self, field: str | None, reason: str) -> NoReturn:
        self._fail_at(self._line, field, reason)

    def _fail_at(self, line: int | None, field: str | None, reason: str, *, fatal: bool = False) -> NoReturn:
        self.errors.append(DatasetError(self.object_name, reason, line=line, field=field))
        # A file-level problem, or one that leaves the rest unreadable, ends the reading; so does the cap.
        if fatal or line is None or len(self.errors) >= self.max_errors:
            self._stop(self.errors[0])
        raise _LineRejected

    def _stop(self, first: DatasetError) -> NoReturn:
        # Sticky: once a dataset is known bad, every later call reports the same first error (with all found).
        first.errors = tuple(self.errors)
        self._error = first
        raise first


async def validating(chunks: AsyncIterable[bytes], validator: DatasetValidator) -> AsyncIterator[bytes]:
    """Pass `chunks` through while validating them: a bad chunk raises before it is yielded, and the end of
    the stream raises instead of completing if the file as a whole is invalid, so an upload reading from
    this generator aborts rather than storing a bad file. A collecting validator reads on to find every problem
    but passes nothing more once the first is found."""
    async for chunk in chunks:
        validator.feed(chunk)
        if not validator.errors:
            yield chunk
    validator.finish()


def validate_file(
    path: str | os.PathLike[str],
    kind: DatasetKind,
    *,
    object_name: str | None = None,
    chunk_size: int = 1 << 16,
    max_bytes: int = DEFAULT_MAX_BYTES,
    thinking: bool | None = None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> DatasetStats:
    """Validate a local file in constant memory (the tests' entry point); raises at the first error."""
    file_path = Path(path)
    validator = DatasetValidator(
        kind,
        object_name=object_name or file_path.name,
        max_bytes=max_bytes,
        thinking=thinking,
        max_line_bytes=max_line_bytes,
    )
    return feed_file(validator, file_path, chunk_size=chunk_size)


def feed_file(validator: DatasetValidator, path: str | os.PathLike[str], *, chunk_size: int = 1 << 16) -> DatasetStats:
    """Run a local file through `validator` in constant memory and finish it."""
    with Path(path).open("rb") as handle:
        while chunk := handle.read(chunk_size):
            validator.feed(chunk)
    return validator.finish()
