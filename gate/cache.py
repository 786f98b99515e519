"""A digest-addressed cache of raw manifests on disk.

Only content-addressed facts are stored: the bytes a digest names, which can never change. A tag -> digest mapping
is never stored, so a tag is always fetched from the registry. Every read hashes the bytes again and drops an entry
that does not match (a torn write, a disk error, someone editing the folder), so the cache can make the gate faster
but never make it see different bytes. The cache is an optimisation: when its folder cannot be written, the gate
runs without it.

Layout: `$XDG_CACHE_HOME/registry-gate/` (else `~/.cache/registry-gate/`) holding `manifests/<algorithm>/<hex>` and
`skopeo-version.json` (the installed skopeo's version, keyed by the binary's path, size and mtime).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

_DIGEST = r"^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$"
MAX_ENTRY_BYTES = 4 * 1024 * 1024 + 512 * 1024


def default_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "registry-gate"


def _write_atomic(path: Path, data: bytes) -> None:
    """Write through a private temporary file and rename, so readers never see half an entry."""
    import tempfile

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Cache:
    """Manifest bytes by digest, verified on every read: in memory for one run, and on disk unless `disk=False`."""

    def __init__(self, root: Path | None = None, disk: bool = True) -> None:
        self.root = root or default_root()
        self.disk = disk
        self.hits = 0
        self.misses = 0
        self._memory: dict[str, bytes] = {}

    def _path(self, digest: str) -> Path | None:
        if not self.disk or not re.match(_DIGEST, digest):
            return None
        algorithm, hexpart = digest.split(":")
        return self.root / "manifests" / algorithm / hexpart

    def get(self, digest: str) -> bytes | None:
        """The bytes stored for `digest`, or None (absent, unreadable, or not hashing to `digest`: then dropped)."""
        raw = self._memory.get(digest)
        if raw is not None:
            self.hits += 1
            return raw
        path = self._path(digest)
        try:
            if path is None or path.stat().st_size > MAX_ENTRY_BYTES:
                raise FileNotFoundError
            raw = path.read_bytes()
        except OSError:
            self.misses += 1
            return None
        from gate.manifest import verify

        if verify(raw, digest) is not True:
            path.unlink(missing_ok=True)
            self.misses += 1
            return None
        self._memory[digest] = raw
        self.hits += 1
        return raw

    def put(self, digest: str, raw: bytes) -> None:
        """Store `raw` under `digest` when it hashes to it; a cache that cannot be written is skipped silently."""
        from gate.manifest import verify

        if len(raw) > MAX_ENTRY_BYTES or verify(raw, digest) is not True:
            return
        self._memory[digest] = raw
        path = self._path(digest)
        if path is None:
            return
        try:
            _write_atomic(path, raw)
        except OSError:
            return

    # -- skopeo's version ------------------------------------------------------------------------------------

    def skopeo_version(self, binary: str) -> tuple[str | None, str | None]:
        """(cached version or None, the key it must match): the key is the resolved binary's path, size, mtime."""
        import shutil

        found = shutil.which(binary)
        if found is None:
            return None, None
        try:
            real = os.path.realpath(found)
            st = os.stat(real)
        except OSError:
            return None, None
        key = f"{real}:{st.st_size}:{st.st_mtime_ns}"
        try:
            data = json.loads((self.root / "skopeo-version.json").read_bytes())
        except (OSError, ValueError):
            return None, key
        if isinstance(data, dict) and data.get("key") == key and isinstance(data.get("version"), str):
            return data["version"], key
        return None, key

    def remember_skopeo_version(self, key: str, version: str) -> None:
        try:
            _write_atomic(self.root / "skopeo-version.json", json.dumps({"key": key, "version": version}).encode())
        except OSError:
            return
