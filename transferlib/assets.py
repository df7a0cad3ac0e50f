"""Where the course's files live, how they are checked, and whether we are offline.

Files handed over (a model) are written whole or not at all (``write_safetensors``).
Everything a lesson needs ships with the course: model weights inside installed
packages (or in ``transferlib/weights/``), data in the repository's ``datasets/``
folder. Each shipped file has a sha256 that is checked before it is used, so a
truncated download or an edited file fails loudly, naming the file.

    >>> from transferlib.assets import is_offline
    >>> is_offline()          # True here: no route to the model hubs
    True
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
from functools import cache
from pathlib import Path
from typing import Any

PACKAGE_DIR = Path(__file__).resolve().parent
WEIGHTS_DIR = PACKAGE_DIR / "weights"

_TRUE = {"1", "true", "yes", "on"}


class ChecksumError(RuntimeError):
    """A shipped file does not match its recorded sha256."""


class OfflineError(RuntimeError):
    """Something online-only was asked for while there is no network."""


def datasets_dir() -> Path:
    """The ``datasets/`` folder: ``$TRANSFERLIB_DATASETS``, else the one beside this package.

    >>> (datasets_dir() / "SHA256SUMS").exists()
    True
    """
    env = os.environ.get("TRANSFERLIB_DATASETS")
    path = Path(env) if env else PACKAGE_DIR.parent / "datasets"
    if not (path / "SHA256SUMS").exists():
        raise FileNotFoundError(
            f"The course datasets were not found at {path}. Install the course from a clone "
            "of its repository (`pip install -r requirements.txt` inside it), or set "
            "TRANSFERLIB_DATASETS to the folder that holds datasets/SHA256SUMS."
        )
    return path


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@cache
def recorded_checksums(root: Path) -> dict[str, str]:
    lines = (root / "SHA256SUMS").read_text().splitlines()
    return {name: digest for digest, name in (line.split(maxsplit=1) for line in lines if line)}


def verify(path: Path, expected: str | None = None) -> Path:
    """Return ``path`` if its sha256 matches, else raise :class:`ChecksumError` naming it.

    ``expected`` defaults to the digest recorded in ``datasets/SHA256SUMS``.
    A file is hashed once per process (by path, inode, size, modification and change time).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing. Restore it with `git checkout -- {path.name}` "
                                "or reinstall the package that ships it.")
    if expected is None:
        root = datasets_dir()
        expected = recorded_checksums(root).get(path.resolve().relative_to(root.resolve()).as_posix())
        if expected is None:
            raise ChecksumError(f"{path} has no entry in {root / 'SHA256SUMS'}.")
    stat = path.stat()  # a same-size edit with the old mtime restored still changes ctime
    if _hash_once(path, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns) != expected:
        raise ChecksumError(
            f"{path} is corrupted: its sha256 does not match the recorded one. Restore the "
            "original file (`git checkout` for datasets/, `pip install --force-reinstall` for a package)."
        )
    return path


@cache
def _hash_once(path: Path, inode: int, size: int, mtime_ns: int, ctime_ns: int) -> str:
    return sha256(path)


def is_offline(timeout: float = 0.8) -> bool:
    """True when the model hubs cannot be reached; answers within ``timeout`` seconds.

    ``TRANSFERLIB_OFFLINE=1`` or ``HF_HUB_OFFLINE=1`` force True without probing the
    network. Otherwise one TCP connection to huggingface.co is tried in a background
    thread, so a hanging DNS lookup cannot stall a lesson; the answer is remembered for
    the rest of the process (restart the kernel after connecting). A network reachable
    only through a proxy counts as offline.

    >>> is_offline()                      # True in a classroom with no route to the hubs
    """
    if any(os.environ.get(v, "").lower() in _TRUE for v in ("TRANSFERLIB_OFFLINE", "HF_HUB_OFFLINE")):
        return True
    return _probe_says_offline(timeout)


@cache
def _probe_says_offline(timeout: float) -> bool:
    reachable = threading.Event()

    def probe() -> None:
        try:
            socket.create_connection(("huggingface.co", 443), timeout=timeout).close()
            reachable.set()
        except OSError:
            pass

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return not reachable.is_set()


def write_safetensors(path: Path, tensors: dict[str, Any], metadata: dict[str, str]) -> Path:
    """Write a safetensors file to hand over: whole or not at all, readable as any file the user writes is.

    >>> write_safetensors(Path("model.safetensors"), model.state_dict(), {"format": "mine"})
    """
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        save_file(tensors, tmp, metadata=metadata)
        umask = os.umask(0o022)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)   # safetensors writes 0600; a file to hand over, read as any file is
        os.replace(tmp, path)  # never leave half a file behind
    finally:
        tmp.unlink(missing_ok=True)
    return path
