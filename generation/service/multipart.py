"""Reading one multipart part of an upload with a size limit (the service's routes share it)."""

from __future__ import annotations

from aiohttp import BodyPartReader

from generation.service.errors import PayloadTooLarge

CHUNK = 64 * 1024  # bytes read at a time


async def read_part(part: BodyPartReader, limit: int, what: str) -> bytes:
    """The whole part; ``PayloadTooLarge`` ("{what} too large: the limit is …") past ``limit``
    bytes, before the rest is read."""
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await part.read_chunk(CHUNK)
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"{what} too large: the limit is {megabytes(limit)}")
        chunks.append(chunk)
    return b"".join(chunks)


def megabytes(size: int) -> str:
    """``size`` bytes for people: "10 MB", "512 KB"."""
    return f"{size / 2**20:g} MB" if size >= 2**20 else f"{size // 1024} KB"
