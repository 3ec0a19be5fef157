"""Reading the binary structures of CT logs: TLS presentation language (RFC 8446 §3, as RFC 6962
§3.4 uses it) for the log's leaves and tiles, and just enough DER to edit a TBSCertificate.

Nothing here trusts a length it reads: every read is bounded by the bytes present, and a short
or overlong structure is a ``MalformedEntry`` (the entry is counted, never a crash).
"""

from __future__ import annotations

__all__ = ["MalformedEntry", "Reader", "der_children", "der_encode", "der_read"]


class MalformedEntry(ValueError):
    """A structure that does not parse; the message says which part."""


class Reader:
    """Consumes ``data`` front to back."""

    __slots__ = ("data", "offset")

    def __init__(self, data: bytes, offset: int = 0) -> None:
        self.data, self.offset = data, offset

    def take(self, count: int) -> bytes:
        end = self.offset + count
        if end > len(self.data):
            raise MalformedEntry(f"{count} bytes wanted, {len(self.data) - self.offset} left")
        chunk = self.data[self.offset : end]
        self.offset = end
        return chunk

    def uint(self, size: int) -> int:
        return int.from_bytes(self.take(size), "big")

    def vector(self, length_size: int) -> bytes:
        """``opaque x<0..2^(8*length_size)-1>``: a length prefix, then that many bytes."""
        return self.take(self.uint(length_size))

    @property
    def left(self) -> int:
        return len(self.data) - self.offset


def der_read(data: bytes, offset: int) -> tuple[int, int, int]:
    """The DER element at ``offset``: (tag, start of content, end of element)."""
    if offset + 2 > len(data):
        raise MalformedEntry("DER: truncated header")
    tag, first = data[offset], data[offset + 1]
    start = offset + 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if not 1 <= count <= 4 or start + count > len(data):
            raise MalformedEntry("DER: bad length")
        length = int.from_bytes(data[start : start + count], "big")
        start += count
    end = start + length
    if end > len(data):
        raise MalformedEntry("DER: element overruns its container")
    return tag, start, end


def der_children(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    """The elements inside ``data[start:end]``: (tag, element start, element end) each."""
    children = []
    offset = start
    while offset < end:
        tag, _, child_end = der_read(data, offset)
        if child_end > end:
            raise MalformedEntry("DER: element overruns its container")
        children.append((tag, offset, child_end))
        offset = child_end
    return children


def der_encode(tag: int, content: bytes) -> bytes:
    length = len(content)
    if length < 0x80:
        return bytes((tag, length)) + content
    size = (length.bit_length() + 7) // 8
    return bytes((tag, 0x80 | size)) + length.to_bytes(size, "big") + content
