"""Where datasets are looked for: --data-root, else $DISTILLSET_DATA, else ~/.cache/distillset; Debian's
/usr/share/datasets is always searched last (read-only, for packages such as dataset-fashion-mnist)."""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "DISTILLSET_DATA"
DEBIAN_ROOT = Path("/usr/share/datasets")


def primary_root(data_root: str | os.PathLike | None = None) -> Path:
    """The root that downloads go into and that error messages recommend."""
    if data_root:
        return Path(data_root).expanduser()
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    return Path("~/.cache/distillset").expanduser()


def search_roots(data_root: str | os.PathLike | None = None) -> list[Path]:
    """Roots in the order they are searched."""
    roots = [primary_root(data_root)]
    if DEBIAN_ROOT not in roots:
        roots.append(DEBIAN_ROOT)
    return roots
