"""Images behind a URL: ``http(s)://``, ``s3://``, ``gs://``... read through fsspec.

A remote image is read under the same rules as a file: refused when it is larger than the
server accepts (before reading when the store declares the size, else as soon as the stream
passes the limit, so a huge or endless response is never held in memory), per-request timeouts,
and retries with back-off for what may pass (5xx answers, resets, timeouts). What will not pass
(404, 403, a 4xx) and what is still failing after the retries become the image's own error
record, like a missing file: the catalog goes on.

fsspec (with s3fs for ``s3://``, aiohttp for ``http(s)://``) comes with the ``remote`` extra;
credentials and endpoints come from the usual environment (``AWS_*``, ``AWS_ENDPOINT_URL_S3``,
``FSSPEC_<PROTOCOL>_<OPTION>``), so nothing here is specific to one cloud.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from functools import cache

from fashiontag.client._stream import RetryPolicy
from fashiontag.client.errors import InvalidImageError

__all__ = ["is_url", "is_http", "scheme", "RemoteReader", "RemoteReadError", "filesystem",
           "describe_error"]

_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_HTTP = ("http", "https")
_CHUNK = 1 << 20


class RemoteReadError(InvalidImageError):
    """A remote image could not be read: not found, refused, or still failing after retries."""


def is_url(value: object) -> bool:
    """True for ``scheme://...`` strings (paths given as :class:`~pathlib.Path` never are)."""
    return isinstance(value, str) and bool(_URL.match(value))


def scheme(url: str) -> str:
    """``S3://b/k`` → ``s3``."""
    return url.split("://", 1)[0].lower()


def is_http(url: str) -> bool:
    """HTTP(S) URLs: no listing, and fsspec wants the whole URL as the path."""
    return scheme(url) in _HTTP


def filesystem(url: str, timeout_s: float = 30.0):
    """The fsspec filesystem for ``url`` and the path inside it (one instance per protocol)."""
    protocol = scheme(url)
    return _filesystem(protocol, float(timeout_s)), url if protocol in _HTTP \
        else url.split("://", 1)[1]


@cache
def _filesystem(protocol: str, timeout_s: float):
    try:
        import fsspec
    except ImportError:
        raise RemoteReadError(f"{protocol}:// sources need fsspec: pip install "
                              "'fashiontag[remote]'") from None
    options: dict = {}
    if protocol in _HTTP:
        import aiohttp

        options["client_kwargs"] = {"timeout": aiohttp.ClientTimeout(total=timeout_s)}
    elif protocol in ("s3", "s3a"):
        options["config_kwargs"] = {"connect_timeout": timeout_s, "read_timeout": timeout_s}
    try:
        return fsspec.filesystem(protocol, **options)
    except (ImportError, ValueError) as exc:  # a protocol whose implementation is missing
        raise RemoteReadError(f"cannot read {protocol}:// URLs: {exc}") from None


def _permanent(exc: Exception) -> bool:
    """Errors a retry cannot fix: missing, forbidden, any other 4xx, a bad URL."""
    if isinstance(exc, (FileNotFoundError, PermissionError, IsADirectoryError, ValueError)):
        return True
    status = getattr(exc, "status", None)  # aiohttp.ClientResponseError
    return isinstance(status, int) and 400 <= status < 500 and status not in (408, 429)


def describe_error(exc: Exception) -> str:
    """A short reason for a failed remote read, never a traceback."""
    if isinstance(exc, FileNotFoundError):
        return "not found"
    if isinstance(exc, PermissionError):
        return "access denied"
    status = getattr(exc, "status", None)
    if isinstance(status, int):
        return f"HTTP {status}"
    return (str(exc).strip().splitlines() or [type(exc).__name__])[-1][:200]


@dataclass(frozen=True)
class RemoteReader:
    """Reads one remote image with a byte limit, a timeout and retries (see the module)."""

    timeout_s: float = 30.0
    retries: int = 3
    backoff_s: float = 0.25
    max_backoff_s: float = 4.0

    def read(self, url: str, max_bytes: int) -> bytes:
        policy = RetryPolicy(self.retries, self.backoff_s, self.max_backoff_s)
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._read_once(url, max_bytes)
            except RemoteReadError:
                raise
            except Exception as exc:
                permanent = _permanent(exc)
                if permanent or attempt > policy.retries:
                    tries = "" if permanent else f" after {attempt} tries"
                    raise RemoteReadError(f"cannot read {url}: {describe_error(exc)}{tries}"
                                          ) from None
                time.sleep(policy.delay(attempt))

    def _read_once(self, url: str, max_bytes: int) -> bytes:
        fs, path = filesystem(url, self.timeout_s)
        kwargs: dict = {}
        if is_http(url):  # HEAD for the size, then one streamed GET
            kwargs = {"block_size": 0, "size": fs.info(path).get("size")}
            self._check_size(url, kwargs["size"], max_bytes)
        with fs.open(path, "rb", **kwargs) as f:
            self._check_size(url, getattr(f, "size", None), max_bytes)
            chunks, total = [], 0
            while total <= max_bytes:
                chunk = f.read(min(_CHUNK, max_bytes + 1 - total))
                if not chunk:
                    return b"".join(chunks)
                chunks.append(chunk)
                total += len(chunk)
        raise RemoteReadError(f"{url} is more than {max_bytes} bytes, above the limit")

    @staticmethod
    def _check_size(url: str, size: object, max_bytes: int) -> None:
        """Refuse before reading when the store declares the size."""
        if isinstance(size, int) and size > max_bytes:
            raise RemoteReadError(f"{url} is {size} bytes, above the limit of {max_bytes}")
