"""Checksum verification of dataset files.

A file passes when the md5 of the file as distributed matches, or, for MNIST-family idx files, when
the md5 of its decompressed content matches: Debian re-compresses FashionMNIST and torchvision keeps
uncompressed copies, and both are the canonical data.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from ..errors import DistillsetError
from .formats import read_bytes

_verified: set[tuple[str, int, int]] = set()


def md5_of_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def verify_file(path: Path, md5: str | None, content_md5: str | None = None) -> None:
    """Raise a clear error when ``path`` matches neither known checksum; remembered per (path, size, mtime)."""
    if md5 is None and content_md5 is None:
        return
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key in _verified:
        return
    found = md5_of_file(path)
    if found != md5:
        if content_md5 is None or hashlib.md5(read_bytes(path)).hexdigest() != content_md5:
            expected = md5 or content_md5
            raise DistillsetError(
                f"checksum mismatch for {path}: md5 {found}, expected {expected}; the file is damaged or not the "
                "standard release: delete it and fetch it again (--download), or pass --no-verify to use it as it is"
            )
    _verified.add(key)
