"""Opt-in downloads (``--download``) with checksum verification, through pooch.

Nothing is ever fetched unless the user asks; a file whose md5 does not match is rejected and not kept.
"""

from __future__ import annotations

import tarfile
import zipfile
from pathlib import Path

from ..errors import DistillsetError


def fetch(url: str, dest: Path, md5: str | None) -> Path:
    """Download ``url`` to ``dest`` (atomically, verified) unless a verified copy is already there."""
    try:
        import pooch
    except ImportError:
        raise DistillsetError("downloading needs the 'pooch' package: pip install pooch") from None
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        pooch.retrieve(url, known_hash=f"md5:{md5}" if md5 else None, fname=dest.name, path=dest.parent, progressbar=False)
    except ValueError as exc:  # pooch reports a hash mismatch as ValueError
        raise DistillsetError(f"download of {url} failed verification: {exc}") from None
    except Exception as exc:  # network errors come in many types (requests, OSError, ...)
        raise DistillsetError(f"download of {url} failed: {exc}; check the network or place the file at {dest} yourself") from None
    return dest


def extract_tar(archive: Path, into: Path) -> None:
    """Unpack a tarball with the 'data' filter (no absolute paths, links out of the tree or devices)."""
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(into, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise DistillsetError(f"cannot extract {archive}: {exc}") from None


def extract_zip(archive: Path, into: Path) -> None:
    """Unpack a zip archive, refusing members that would land outside ``into`` (absolute paths, ``..``)."""
    target = into.resolve()
    try:
        with zipfile.ZipFile(archive) as bundle:
            for member in bundle.namelist():
                if not (target / member).resolve().is_relative_to(target):
                    raise DistillsetError(f"{archive} holds {member!r}, which would be written outside {into}; refused")
            bundle.extractall(into)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DistillsetError(f"cannot extract {archive}: {exc}") from None
