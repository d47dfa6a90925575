"""One file over HTTP(S): resumed with a Range request after an interruption, checked against its MD5 sum.

    fetch_verified(url, target, md5)   -> "kept" (already there and valid) or "downloaded"

The bytes go to `target` + ".part" first (kept when the transfer breaks, so the next run asks the server for the
rest with `Range: bytes=N-`); the file gets its name only once its MD5 sum is the expected one. A finished file
whose sum is wrong is removed and fetched once more from its first byte; a second wrong sum is an error naming the
URL and both sums. A server that ignores the Range header (200 instead of 206) sends the whole file again, and
the part file is restarted rather than appended to.
"""

import hashlib
import http.client
import os
import pathlib
import re
import urllib.error
import urllib.request

from tqdm import tqdm

__all__ = ["PART_SUFFIX", "HttpDownloadError", "fetch_verified", "md5_of"]

PART_SUFFIX = ".part"
BLOCK = 1 << 20
TIMEOUT = 60.0  # seconds without a byte before a read gives up


class HttpDownloadError(RuntimeError):
    """A file that could not be had with the right checksum; the message names it."""


def md5_of(path):
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def _content_range_start(response):
    """The first byte of a 206 answer (Content-Range: bytes START-END/TOTAL)."""
    match = re.match(r"bytes (\d+)-", response.headers.get("Content-Range", ""))
    return int(match.group(1)) if match else None


def _transfer(url, part, progress_label, timeout):
    """Appends the rest of `url` to `part` (from its current size); returns when the server has sent it all."""
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # nothing after byte `have`: the part is already whole
            return
        raise HttpDownloadError(f"{url}: HTTP {err.code} {err.reason}") from err
    except (urllib.error.URLError, OSError) as err:
        raise HttpDownloadError(f"{url}: {getattr(err, 'reason', err)}") from err
    with response:
        resumed = response.status == 206 and _content_range_start(response) == have
        length = response.headers.get("Content-Length")
        total = (int(length) + (have if resumed else 0)) if length is not None else None
        with open(part, "ab" if resumed else "wb") as out, tqdm(
            total=total, initial=have if resumed else 0, unit="B", unit_scale=True, desc=progress_label,
            leave=False, disable=None,
        ) as bar:
            while True:
                try:
                    block = response.read(BLOCK)
                except (OSError, http.client.HTTPException) as err:
                    raise HttpDownloadError(f"{url}: the transfer broke after {out.tell():,} bytes ({err}); "
                                            f"run again to resume it") from err
                if not block:
                    break
                out.write(block)
                bar.update(len(block))
        if total is not None and part.stat().st_size < total:
            raise HttpDownloadError(f"{url}: the server closed the connection after {part.stat().st_size:,} of "
                                    f"{total:,} bytes; run again to resume it")


def fetch_verified(url, target, md5, timeout=TIMEOUT):
    """Makes sure `target` holds the file at `url` with MD5 sum `md5`; see the module docstring."""
    target = pathlib.Path(target)
    if target.exists():
        found = md5_of(target)
        if found == md5:
            return "kept"
        raise HttpDownloadError(f"{target}: MD5 {found} is not the expected {md5}; this file is never "
                                f"overwritten: remove it and run again")
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + PART_SUFFIX)
    for _ in range(2):
        _transfer(url, part, target.name, timeout)
        found = md5_of(part)
        if found == md5:
            os.replace(part, target)
            return "downloaded"
        part.unlink()  # a wrong sum: the bytes cannot be trusted, not even as a prefix to resume from
    raise HttpDownloadError(f"{url}: a wrong MD5 sum twice (last {found}, expected {md5}); nothing was kept")
