"""A streaming ``multipart/form-data`` reader for large uploads.

aiohttp's ``BodyPartReader.read_chunk`` joins the received pieces into the requested size and then copies
the previous chunk and the new one into a search window, about three copies of every byte on the event loop;
for a 200 MB upload that was the longest chain of the emulator's ingest. This reader searches each received
piece for the delimiter in place and hands the piece on as a ``memoryview``: the only copies are the few bytes
kept back at the end of a piece, in case it ends with the start of a delimiter.

The format (RFC 7578 over RFC 2046): an optional preamble, then ``--boundary``, and per part: optional
whitespace, CRLF, header lines, an empty line, the body, ``CRLF--boundary``; after the last part ``--``. A
body ends at the first ``CRLF--boundary``. Anything malformed raises :class:`FormError` (a ``ValueError``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from email.message import Message

from aiohttp import StreamReader
from aiohttp.multipart import content_disposition_filename, parse_content_disposition

__all__ = ["FormError", "FormPart", "FormReader", "form_boundary"]

Piece = bytes | memoryview

MAX_HEADER_BYTES = 16 * 1024
MAX_BOUNDARY_BYTES = 70  # RFC 2046 section 5.1.1


class FormError(ValueError):
    pass


def form_boundary(content_type: str) -> bytes:
    """The ``boundary`` parameter of a ``multipart/*`` Content-Type header."""
    message = Message()
    message["Content-Type"] = content_type
    boundary = message.get_param("boundary")
    if not isinstance(boundary, str) or not 0 < len(boundary) <= MAX_BOUNDARY_BYTES:
        raise FormError("the Content-Type has no valid boundary")
    try:
        return boundary.encode("ascii")
    except UnicodeEncodeError:
        raise FormError("the boundary is not ASCII") from None


@dataclass(frozen=True)
class FormPart:
    name: str | None
    filename: str | None
    headers: dict[str, str]  # lower-cased names


class FormReader:
    """Parts one after the other: ``next()`` gives a part's headers, ``chunks()`` streams its body.

    A body not read to its end is skipped by the following ``next()``. Memory: one received piece (at most
    aiohttp's read buffer) plus the part headers.
    """

    def __init__(self, content: StreamReader, boundary: bytes) -> None:
        self._content = content
        self._delimiter = b"\r\n--" + boundary
        # Received but not yet consumed. The stream is read as if it began with CRLF, so that the first
        # boundary line is found as a delimiter like the others (and a preamble is the "body" before it).
        self._rest: bytes = b"\r\n"
        self._in_body = True
        self._done = False

    async def _receive(self) -> bytes:
        data, _ = await self._content.readchunk()  # one received piece, not joined with the others
        if not data:
            raise FormError("the body ended before the closing boundary")
        return data

    async def next(self) -> FormPart | None:
        """The next part's headers, or None after the closing boundary."""
        async for _ in self.chunks():  # the preamble, or what the caller left unread of the last part
            pass
        if self._done:
            return None
        # Just past a delimiter: "--" closes the form; else optional whitespace, CRLF, then the headers.
        while not self._rest.startswith(b"--"):
            line_end = self._rest.find(b"\r\n")
            if line_end >= 0:
                break
            if len(self._rest) > MAX_HEADER_BYTES:
                raise FormError("a boundary line is followed by junk")
            self._rest += await self._receive()
        else:
            self._done = True
            self._rest = b""
            return None
        if self._rest[:line_end].strip(b" \t"):
            raise FormError("a boundary line is followed by junk")
        self._rest = self._rest[line_end:]  # from the CRLF on: the header block then ends at CRLF CRLF
        while (end := self._rest.find(b"\r\n\r\n", 0, MAX_HEADER_BYTES)) < 0:
            if len(self._rest) >= MAX_HEADER_BYTES:
                raise FormError("the part headers are too large or never end")
            self._rest += await self._receive()
        headers = _parse_headers(self._rest[2:end])
        self._rest = self._rest[end + 4 :]
        self._in_body = True
        _, params = parse_content_disposition(headers.get("content-disposition"))
        return FormPart(
            name=content_disposition_filename(params, "name"),
            filename=content_disposition_filename(params, "filename"),
            headers=headers,
        )

    async def chunks(self) -> AsyncIterator[Piece]:
        """The current part's body, piece by piece as received, up to its closing delimiter."""
        if not self._in_body:
            return
        delimiter = self._delimiter
        keep = len(delimiter) - 1  # a piece may end with at most this many bytes of a delimiter
        rest, self._rest = self._rest, b""
        while True:
            found = rest.find(delimiter)
            if found >= 0:
                if found:
                    yield _head(rest, found)
                self._rest = rest[found + len(delimiter) :]
                self._in_body = False
                return
            if len(rest) > keep:
                yield _head(rest, len(rest) - keep)
                rest = rest[len(rest) - keep :]
            piece = await self._receive()
            if len(piece) < keep:  # too short to finish a delimiter begun in `rest` for sure: just join
                rest += piece
                continue
            # A delimiter across the join starts in the kept bytes and ends in the piece's first `keep` bytes.
            joint = rest + piece[:keep]
            found = joint.find(delimiter)
            if found >= 0:
                if found:
                    yield joint[:found]
                self._rest = piece[found + len(delimiter) - len(rest) :]
                self._in_body = False
                return
            if rest:
                yield rest
            rest = piece


def _head(data: bytes, end: int) -> Piece:
    """``data[:end]``, without copying when that is large."""
    return memoryview(data)[:end] if end >= 4096 else data[:end]


def _parse_headers(block: bytes) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in block.split(b"\r\n") if block else []:
        name, colon, value = line.partition(b":")
        if not colon or not name.strip():
            raise FormError(f"malformed part header line {line[:80]!r}")
        headers[name.strip().decode("latin-1").lower()] = value.strip().decode("utf-8", "surrogateescape")
    return headers
