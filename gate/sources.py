"""A source reference to a verified tree of raw manifests.

- `docker://REF`: the top manifest through skopeo, then every child by digest, concurrently.
- `oci:DIR[:TAG]` and `oci-archive:FILE[:TAG]`: the OCI image layout is read directly (skopeo 1.9 cannot open a
  layout entry with a Docker media type, which buildx writes with `oci-mediatypes=false`).
- a path to a saved manifest (what `skopeo inspect --raw` printed), with `--children DIR` optional.

Every child's bytes are checked against the digest that points at them; a mismatch means a corrupt or tampered
source and stops the gate (exit 3). Sizes are compared by the rules, since a wrong `size` is a manifest property.
"""

from __future__ import annotations

import os
import posixpath
import re
import stat
import tarfile
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from gate import manifest as mf
from gate.errors import InspectError, ManifestError, UsageError
from gate.reference import Reference
from gate.reference import parse as parse_reference
from gate.skopeo import Skopeo

if TYPE_CHECKING:
    from gate.cache import Cache

MAX_MANIFEST_BYTES = 4 * 1024 * 1024 + 512 * 1024
"""Registries cap manifests at 4 MiB; we read a little more so that the size rule can report a document just over
that cap, and refuse anything larger unread."""
MAX_DEPTH = 8
MAX_CHILDREN = 10_000
"""More entries than this is refused for every source, before any child is fetched: the work (and memory) per entry
is bounded, so this bounds a run; a saved 4 MiB index of tiny entries could otherwise hold hundreds of thousands."""
_SAFE_DIGEST = re.compile(r"^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$")

Fetch = Callable[[mf.Descriptor], "bytes | None"]


def _too_big(what: str, size: int) -> InspectError:
    return InspectError(
        f"{what} is {size} bytes, over the {MAX_MANIFEST_BYTES} bytes the gate reads",
        "no registry accepts a manifest that large (4 MiB is the usual cap); split the index or drop layers",
        kind="too-large",
    )


def _parse(raw: bytes, declared: str | None, what: str, digest: str | None = None) -> mf.Manifest:
    if len(raw) > MAX_MANIFEST_BYTES:
        raise _too_big(what, len(raw))
    return mf.parse(raw, declared, digest)


def resolve(source: str, top: mf.Manifest, fetch: Fetch | None, jobs: int = 8) -> mf.Image:
    """Walk the index tree level by level, fetching each level's children concurrently and verifying them."""
    root = mf.Node("", top)
    nodes = [root]
    level = [root]
    while level:
        wanted: list[tuple[mf.Node, mf.Descriptor]] = [
            (node, d)
            for node in level
            if node.manifest and node.manifest.kind == "index"
            for d in node.manifest.manifests
        ]
        if not wanted:
            break
        if len(nodes) + len(wanted) > MAX_CHILDREN + 1:
            raise InspectError(
                f"{source} lists more than {MAX_CHILDREN} child manifests",
                "an index that large is almost certainly a mistake; check it with skopeo inspect --raw",
                kind="too-large",
            )
        depth = level[0].depth + 1
        if depth > MAX_DEPTH and fetch is not None:
            raise InspectError(
                f"{source} nests indexes more than {MAX_DEPTH} levels deep",
                "flatten the index: point the top index straight at image manifests",
                kind="too-deep",
            )
        firsts: dict[str, mf.Descriptor] = {}  # one fetch per distinct child digest
        for _, d in wanted:
            if d.digest and d.media_type in mf.MANIFEST_TYPES:
                firsts.setdefault(d.digest, d)
        fetched: dict[str, bytes | None] = {}
        if fetch is not None and firsts:
            with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(firsts)))) as pool:
                for digest, raw in zip(firsts, pool.map(fetch, firsts.values())):
                    fetched[digest] = raw
        parsed: dict[str, mf.Manifest] = {}
        next_level = []
        for node, d in wanted:
            path = node.child_path(d)
            child = mf.Node(path, None, d, node, depth)
            raw = fetched.get(d.digest or "")
            if fetch is None:
                child.note = "not inspected: a saved manifest has no children (pass --children DIR)"
            elif d.media_type not in mf.MANIFEST_TYPES or not d.digest:
                child.note = "not a manifest media type: not fetched"
            elif raw is None:
                raise InspectError(
                    f"{source}: child {d.digest} ({path}) is missing",
                    "the index is sparse; copy every platform (skopeo copy --all) before checking",
                    kind="not-found",
                )
            else:
                assert d.digest is not None
                if d.digest not in parsed:
                    ok = mf.verify(raw, d.digest)
                    if ok is None:
                        raise InspectError(
                            f"{source}: cannot verify {path}: digest algorithm of {d.digest} is not sha256 or sha512",
                            "use sha256 digests",
                            kind="digest",
                        )
                    if not ok:
                        raise InspectError(
                            f"{source}: the bytes served for {path} do not hash to {d.digest}",
                            "the registry or layout is corrupt or was tampered with; re-push or re-export it",
                            kind="digest",
                        )
                    try:
                        parsed[d.digest] = _parse(raw, d.media_type, path, d.digest)
                    except ManifestError as exc:
                        raise InspectError(f"{source}: {path}: {exc.problem}", exc.fix, kind="manifest") from None
                child.manifest = parsed[d.digest]
                if child.manifest.kind == "index":
                    next_level.append(child)
            node.children.append(child)
            nodes.append(child)
        level = next_level
    return mf.Image(source=source, nodes=nodes, children_inspected=fetch is not None)


# --- docker:// -------------------------------------------------------------------------------------------------


def from_registry(ref: Reference, skopeo: Skopeo, jobs: int, cache: Cache | None = None) -> mf.Image:
    """The top manifest (from the cache when `ref` is pinned by digest), then every child by digest.

    Bytes fetched by digest are verified before use and before they enter the cache. Bytes fetched by tag have
    nothing to be verified against: integrity rests on the transport (TLS), and a corrupted document shows up only
    when it no longer parses or its children's digests no longer resolve.
    """
    raw = cache.get(ref.digest) if cache is not None and ref.digest else None
    if raw is None:
        raw = skopeo.inspect_raw(str(ref))
        if ref.digest:
            ok = mf.verify(raw, ref.digest)
            if ok is False:
                raise InspectError(
                    f"the bytes served for {ref} do not hash to {ref.digest}",
                    "the registry is corrupt or the response was tampered with; retry, or re-push the image",
                    kind="digest",
                )
        if cache is not None:
            # Bytes fetched by tag are kept under their own sha256 (what a later digest-pinned check asks for);
            # which digest the tag pointed at is not kept.
            cache.put(ref.digest or mf.digest_of(raw), raw)
    try:
        top = _parse(raw, None, str(ref))
    except ManifestError as exc:
        raise InspectError(
            f"docker://{ref}: the registry served something that is not a manifest: {exc.problem}",
            "check the reference with skopeo inspect --raw; a proxy or a corrupted response can cause this",
            kind="manifest",
        ) from None

    def fetch(d: mf.Descriptor) -> bytes:
        assert d.digest is not None
        cached = cache.get(d.digest) if cache is not None else None
        if cached is not None:
            return cached
        fetched = skopeo.inspect_raw(str(ref.with_digest(d.digest)))
        if cache is not None:
            cache.put(d.digest, fetched)  # stored only when it hashes to d.digest
        return fetched

    return resolve(f"docker://{ref}", top, fetch, jobs)


# --- OCI image layouts ------------------------------------------------------------------------------------------


class _Layout:
    """Read access to a layout's files, from a folder or a tar, that can never leave the layout."""

    def __init__(self, location: str) -> None:
        self.location = location

    def read(self, name: str) -> bytes | None:
        raise NotImplementedError

    def blob(self, digest: str) -> bytes | None:
        if not _SAFE_DIGEST.match(digest):
            raise InspectError(
                f"{self.location}: {digest!r} is not a sha256/sha512 digest, so no blob path can be made from it",
                "fix the layout's index",
                kind="layout",
            )
        algorithm, hexpart = digest.split(":")
        return self.read(f"blobs/{algorithm}/{hexpart}")


class _DirLayout(_Layout):
    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.root = os.path.realpath(location)
        if not os.path.isdir(self.root):
            raise UsageError(f"oci:{location}: no such directory", "build one with `--output type=oci,tar=false`")

    def read(self, name: str) -> bytes | None:
        path = os.path.realpath(os.path.join(self.root, name))
        if os.path.commonpath([self.root, path]) != self.root:
            raise InspectError(
                f"{self.location}: {name} resolves outside the layout (a symlink?)",
                "rebuild the layout without links that leave it",
                kind="layout",
            )
        try:
            info = os.stat(path)
        except FileNotFoundError:
            return None
        if not stat.S_ISREG(info.st_mode):  # a folder, a FIFO (which would block forever), a device
            raise InspectError(f"{self.location}: {name} is not a regular file", "re-export the layout", kind="layout")
        if info.st_size > MAX_MANIFEST_BYTES:
            raise _too_big(f"{self.location}/{name}", info.st_size)
        return Path(path).read_bytes()


class _TarLayout(_Layout):
    def __init__(self, location: str) -> None:
        super().__init__(location)
        try:
            self.tar = tarfile.open(location, "r:*")  # noqa: SIM115 - kept open for the lookups
        except FileNotFoundError:
            raise UsageError(f"oci-archive:{location}: no such file", "pass the tar written by the build") from None
        except (tarfile.TarError, OSError) as exc:
            raise InspectError(
                f"oci-archive:{location}: not a readable tar ({exc})", "re-export it", kind="layout"
            ) from None
        self.lock = threading.Lock()
        self.members: dict[str, tarfile.TarInfo] = {}
        for member in self.tar.getmembers():
            name = posixpath.normpath(member.name)
            if name.startswith("/") or ".." in name.split("/"):
                raise InspectError(
                    f"oci-archive:{location}: member {member.name!r} escapes the layout",
                    "refusing a tar with absolute or '..' paths; re-export it",
                    kind="layout",
                )
            if member.isfile():
                self.members[name] = member
            elif member.islnk():  # a hard link names an earlier member of the same archive
                target = self.members.get(posixpath.normpath(member.linkname))
                if target is not None:
                    self.members[name] = target

    def read(self, name: str) -> bytes | None:
        member = self.members.get(name)
        if member is None:
            return None
        if member.size > MAX_MANIFEST_BYTES:
            raise _too_big(f"{self.location}:{name}", member.size)
        with self.lock:  # one TarFile shares one file position: children are read from several threads
            handle = self.tar.extractfile(member)
            return handle.read() if handle else None


def _split_layout(spec: str) -> tuple[str, str | None]:
    """`DIR[:TAG]`: the last `:` starts a tag unless what follows contains a `/` (a Windows-ish or odd path)."""
    path, sep, tag = spec.rpartition(":")
    if sep and path and "/" not in tag:
        return path, tag or None
    return spec, None


def source_tag(spec: str) -> str | None:
    """The tag a source names (`docker://H/R:TAG`, `oci:DIR:TAG`, `oci-archive:FILE:TAG`), else None."""
    if spec.startswith("docker://"):
        try:
            return parse_reference(spec).tag
        except UsageError:
            return None
    for transport in ("oci:", "oci-archive:"):
        if spec.startswith(transport):
            return _split_layout(spec[len(transport) :])[1]
    return None


def from_layout(spec: str, archive: bool, jobs: int) -> mf.Image:
    location, tag = _split_layout(spec)
    transport = "oci-archive" if archive else "oci"
    layout: _Layout = _TarLayout(location) if archive else _DirLayout(location)
    raw_index = layout.read("index.json")
    if raw_index is None:
        raise InspectError(f"{transport}:{location}: no index.json", "is this an OCI image layout?", kind="layout")
    try:
        index = mf.parse(raw_index, mf.OCI_INDEX)
    except ManifestError as exc:
        raise InspectError(f"{transport}:{location}/index.json: {exc.problem}", exc.fix, kind="layout") from None
    entries = index.manifests
    if tag is not None:
        entries = [d for d in entries if d.annotations.get("org.opencontainers.image.ref.name") == tag]
    names = sorted({d.annotations.get("org.opencontainers.image.ref.name", "") for d in index.manifests} - {""})
    if not entries or (tag is None and len(entries) != 1):
        what = f"no entry named {tag!r}" if tag is not None else f"{len(entries)} entries and no tag was given"
        raise UsageError(
            f"{transport}:{location}: {what}",
            f"name one of its tags: {', '.join(names) or '(none)'} as {transport}:{location}:TAG",
        )
    entry = entries[0]
    if entry.digest is None:
        raise InspectError(
            f"{transport}:{location}/index.json: the entry has no valid digest",
            "re-export the layout; its index.json is damaged",
            kind="layout",
        )
    raw = layout.blob(entry.digest)
    source = f"{transport}:{location}" + (f":{tag}" if tag else "")
    if raw is None:
        raise InspectError(f"{source}: blob {entry.digest} is missing", "re-export the layout", kind="layout")
    if mf.verify(raw, entry.digest) is False:
        raise InspectError(f"{source}: blob {entry.digest} does not match its digest", "re-export it", kind="digest")
    try:
        top = _parse(raw, entry.media_type, source, entry.digest)
    except ManifestError as exc:
        raise ManifestError(
            f"{source}: entry {entry.digest} ({entry.media_type}): {exc.problem}",
            "point the tag at an image manifest or an index",
        ) from None
    return resolve(source, top, lambda d: layout.blob(d.digest or ""), jobs)


# --- saved files ------------------------------------------------------------------------------------------------


def from_file(path: str, children: str | None, jobs: int) -> mf.Image:
    try:
        size = os.stat(path).st_size
        if size > MAX_MANIFEST_BYTES:
            raise _too_big(path, size)
        raw = Path(path).read_bytes()
    except IsADirectoryError:
        raise UsageError(f"{path} is a directory", f"for an OCI layout write oci:{path}") from None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}", "pass a saved manifest file") from None
    top = mf.parse(raw)
    fetch: Fetch | None = None
    if children is not None:
        folder = children
        if not os.path.isdir(folder):
            raise UsageError(f"--children {folder}: no such directory", "pass the folder of saved child manifests")

        def fetch(d: mf.Descriptor) -> bytes | None:
            digest = d.digest or ""
            hexpart = digest.partition(":")[2]
            if not re.fullmatch(r"[a-f0-9]{64,128}", hexpart):
                return None
            for name in (f"{hexpart}.json", hexpart, f"{digest}.json", digest):
                candidate = os.path.join(folder, name)
                if os.path.isfile(candidate):
                    if os.path.getsize(candidate) > MAX_MANIFEST_BYTES:
                        raise _too_big(candidate, os.path.getsize(candidate))
                    return Path(candidate).read_bytes()
            raise InspectError(
                f"--children {folder}: no file for {d.path} ({digest}); looked for {hexpart}.json, {hexpart}, {digest}",
                f"save it: skopeo inspect --raw docker://REPOSITORY@{digest} > {os.path.join(folder, hexpart)}.json",
                kind="not-found",
            )

    return resolve(path, top, fetch, jobs)


def open_source(
    spec: str, skopeo: Skopeo | None = None, jobs: int = 8, children: str | None = None, cache: Cache | None = None
) -> mf.Image:
    """Resolve any supported source string (`cache` serves and keeps registry manifests by digest)."""
    if spec.startswith("-"):
        raise UsageError(f"{spec!r} is not a source (it starts with '-')", "put the source first: check SOURCE")
    if spec.startswith("docker://"):
        ref = parse_reference(spec)
        return from_registry(ref, skopeo or Skopeo(), jobs, cache)
    if spec.startswith("oci:"):
        return from_layout(spec[4:], archive=False, jobs=jobs)
    if spec.startswith("oci-archive:"):
        return from_layout(spec[len("oci-archive:") :], archive=True, jobs=jobs)
    transport = spec.split(":", 1)[0]
    if transport in {"docker-daemon", "docker-archive", "containers-storage", "dir"}:
        raise UsageError(
            f"{transport}: sources are not supported: they do not hold what a push would send",
            "export with `docker buildx build --output type=oci,dest=out.tar` and check oci-archive:out.tar",
        )
    if os.path.exists(spec):
        return from_file(spec, children, jobs)
    raise UsageError(
        f"{spec!r}: no such file",
        f"for a registry image write docker://{spec}; for a layout oci:DIR[:TAG] or oci-archive:FILE[:TAG]",
    )


def open_in_background(
    spec: str, skopeo: Skopeo, jobs: int = 8, children: str | None = None, cache: Cache | None = None
) -> Callable[[], mf.Image]:
    """Start resolving a `docker://` source on a daemon thread and return the call that waits for it.

    The registry's round trips then overlap the caller's own work (loading policies); skopeo runs as a separate
    process, so this wins even on one core. Other sources are opened when the returned call is made.
    """
    if not spec.startswith("docker://"):
        return lambda: open_source(spec, skopeo, jobs, children, cache)
    import threading

    box: list[mf.Image | BaseException] = []

    def work() -> None:
        try:
            box.append(open_source(spec, skopeo, jobs, children, cache))
        except BaseException as exc:  # handed to the caller's thread
            box.append(exc)

    thread = threading.Thread(target=work, name="open-source", daemon=True)
    thread.start()

    def wait() -> mf.Image:
        thread.join()
        result = box[0]
        if isinstance(result, BaseException):
            raise result
        return result

    return wait
