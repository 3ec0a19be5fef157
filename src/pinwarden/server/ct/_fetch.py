"""HTTP GETs to logs and log lists: one keep-alive client, a time limit, a size limit.

A log is a third party on the internet: a body larger than the caller allows (counted after
gzip decoding, so a compression bomb stops early) or a slow answer is an error, never memory
or a hang. ``Content-Encoding: gzip`` is decoded (static-ct-api: clients MUST support it).
"""

from __future__ import annotations

import ssl
import time
from types import TracebackType

import httpx

__all__ = ["Fetcher", "LogFetchError", "LogNotFound"]

_USER_AGENT = "pinwarden-ct-watch"


class LogFetchError(Exception):
    """A request that failed: network, status, size or time."""


class LogNotFound(LogFetchError):
    """The server answered 404 (a partial tile no longer served, an unknown issuer)."""


class Fetcher:
    """``timeout``: per network operation (httpx's, reset by every byte read); ``deadline``:
    for the whole request, checked as the body arrives, so a log trickling a byte now and then
    cannot hold a round for days."""

    def __init__(
        self, *, timeout: float = 20.0, deadline: float = 300.0, cafile: str | None = None
    ) -> None:
        verify: ssl.SSLContext | bool = (
            ssl.create_default_context(cafile=cafile) if cafile else True
        )
        self._client = httpx.Client(
            timeout=timeout,
            verify=verify,
            headers={"User-Agent": _USER_AGENT, "Accept-Encoding": "gzip, identity"},
            follow_redirects=False,
        )
        self._deadline = deadline

    def get(self, url: str, *, limit: int) -> bytes:
        stop = time.monotonic() + self._deadline
        try:
            with self._client.stream("GET", url) as response:
                if response.status_code == 404:
                    raise LogNotFound(f"{url}: 404")
                if response.status_code != 200:
                    raise LogFetchError(f"{url}: HTTP {response.status_code}")
                chunks, size = [], 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > limit:
                        raise LogFetchError(f"{url}: the answer is larger than {limit} bytes")
                    chunks.append(chunk)
                    if time.monotonic() > stop:
                        raise LogFetchError(f"{url}: no full answer in {self._deadline:g} s")
                return b"".join(chunks)
        except httpx.HTTPError as error:
            raise LogFetchError(f"{url}: {type(error).__name__}: {error}") from None

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
