"""Atomic file writes: a crash or Ctrl-C never leaves a half-written result behind.

Every file the project writes goes to a temporary sibling first and is renamed into place, which
POSIX and Windows both make atomic within one directory.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)`` and rename the result onto ``path``; the temp file never survives."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 would survive the rename: honour the umask instead
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


TMP_SUFFIX = ".tmp"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def remove_stale_temporaries(directory: str | os.PathLike) -> list[Path]:
    """Delete the temporary files an interrupted atomic write left in ``directory`` (call it while holding the
    directory's run lock, so no live writer owns one); returns what was removed."""
    removed = []
    for candidate in Path(directory).glob(f".*{TMP_SUFFIX}"):
        if candidate.is_file():
            candidate.unlink(missing_ok=True)
            removed.append(candidate)
    return removed


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    def write(tmp: str) -> None:
        with open(tmp, "wb") as handle:
            handle.write(data)

    return atomic_write(path, write)


def safetensors_bytes(tensors: dict, metadata: dict[str, str] | None = None) -> bytes:
    """A safetensors file whose bytes depend only on its content: the library orders the metadata map at
    random (a Rust hash map), so the header is re-serialised with sorted keys (data offsets are relative to the
    end of the header, so they stay valid; the header is padded with spaces to 8 bytes, as the format wants)."""
    from safetensors.torch import save

    raw = save(tensors, metadata=metadata)
    size = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + size])
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text + raw[8 + size:]


def write_safetensors(path: str | os.PathLike, tensors: dict, metadata: dict[str, str] | None = None) -> Path:
    """Atomically write a reproducible safetensors file (see :func:`safetensors_bytes`)."""
    return atomic_write_bytes(path, safetensors_bytes(tensors, metadata))


def cache_dir() -> Path:
    """Where computed things are cached (feature networks, whole-data references): $DISTILLSET_CACHE, else
    ~/.cache/distillset/cache."""
    return Path(os.environ.get("DISTILLSET_CACHE") or Path("~/.cache/distillset/cache").expanduser())


def check_writable_folder(directory: str | os.PathLike, name: str) -> Path:
    """Refuse, before any work, a folder this process could not write into at the end: one that is a file, lies
    under a file, or whose nearest existing ancestor is not writable. ``name`` is how the user gave it (a flag or
    an environment variable), used in the one-line message."""
    from .errors import DistillsetError

    directory = Path(directory)
    if directory.exists() and not directory.is_dir():
        raise DistillsetError(f"{name} {directory} is a file, not a folder; choose another {name}")
    existing = directory
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise DistillsetError(f"{name} {directory} lies under {existing}, which is a file; choose another {name}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise DistillsetError(f"{name} {directory}: {existing} is not writable by this user; choose another {name}")
    return directory


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    text = json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n"
    return atomic_write_bytes(path, text.encode())


def read_keyed_json(path: str | os.PathLike, field: str, expected: Any) -> dict | None:
    """The JSON mapping stored at ``path`` when its ``field`` equals ``expected``, else None.

    For caches keyed by what produced them: a missing file, a damaged one (an interrupted copy, a hand edit) and
    an entry for another key all read as "not stored", so the caller measures again and overwrites it.
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return stored if isinstance(stored, dict) and stored.get(field) == expected else None


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def read_yaml_mapping(path: str | os.PathLike, what: str) -> dict:
    """A YAML file that must hold a mapping; missing files, bad YAML and other shapes are one clear error.

    An empty file is an empty mapping. ``what`` names the file's role in messages ("config", "experiment").
    """
    import yaml

    from .errors import DistillsetError

    try:
        data = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise DistillsetError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise DistillsetError(f"{what} {path} is not a text (UTF-8) YAML file") from None
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise DistillsetError(f"{what} {path} is not valid YAML{at}: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise DistillsetError(f"{what} {path} must be a mapping of option: value")
    return data


def read_index(folder: str | os.PathLike, name: str, format_tag: str, what: str, make: str,
               required: tuple[str, ...] = ()) -> dict:
    """The JSON index of a folder this library wrote (an expert folder, a model pool): ``name`` inside ``folder``,
    a mapping whose ``format`` is ``format_tag``. ``what`` names the folder's kind and ``make`` the command that
    makes one, in the one-line messages for a missing folder, a missing or unreadable index, or a foreign one."""
    from .errors import DistillsetError

    folder = Path(folder)
    path = folder / name
    if not folder.is_dir():
        raise DistillsetError(f"{what} {folder} does not exist; make one with `{make}`")
    if not path.is_file():
        raise DistillsetError(f"{folder} has no {name}: it is not {what} (make one with `{make}`)")
    try:
        index = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DistillsetError(f"{path} is not readable JSON ({exc}); the {what} is corrupt") from None
    if not isinstance(index, dict) or index.get("format") != format_tag:
        found = index.get("format") if isinstance(index, dict) else None
        raise DistillsetError(f"{path} is not {what} index of this library (format {found!r}, expected {format_tag!r})")
    missing = [key for key in required if key not in index]
    if missing:
        raise DistillsetError(f"{path} lacks {', '.join(missing)}; the {what} is damaged (make it again with `{make}`)")
    return index
