"""The analysis stages' persistent state (story clusters, event stories) as one ``.npz`` file
each: no pickle, a format version checked on load, and replaced atomically on save."""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from newsmon.errors import NewsmonError


def load_state(
    path: Path,
    version: int,
    what: str,
    check: Callable[[dict[str, np.ndarray]], bool],
    older: tuple[int, ...] = (),
) -> dict[str, np.ndarray] | None:
    """The arrays in ``path`` (None if there is no such file); ``older``: earlier versions the
    caller converts (its ``version`` array says which). A file of another version, or one that
    ``check`` refuses, or an unreadable one is an error naming ``what`` it held."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as stored:
            arrays = {name: stored[name] for name in stored.files}
        if int(arrays["version"]) not in (version, *older) or not check(arrays):
            raise ValueError("another format")
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise NewsmonError(f"{what} {path} is unreadable ({exc}); move it away to start afresh") from None
    return arrays


def save_state(path: Path, version: int, **arrays: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.npz")
    with tmp.open("wb") as fh:
        np.savez(fh, version=np.array(version), **arrays)
    os.replace(tmp, path)  # a crash mid-write leaves the previous state whole
