"""Deterministic, fully valid tiny images: real bytes, real digests, no network.

Data model: a `Blob` is bytes plus a media type (digest and size derive from the bytes). A `Tree`
is a top manifest/index plus every manifest and blob beneath it, children ordered before parents
so it can be pushed or written as-is. Builders: `layer`, `image`, `attestation`, `index`,
`docker_list`, `custom` (hand-crafted JSON for rule tests) and `python_like` (a mixed index).
Outputs: `push` (distribution HTTP API via urllib), `write_layout` / `write_archive` (OCI layout).
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import ssl
import struct
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, Protocol

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
OCI_LAYER_NONDIST_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER_FOREIGN = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
IN_TOTO = "application/vnd.in-toto+json"
REF_NAME = "org.opencontainers.image.ref.name"

MANIFEST_TYPES = frozenset({OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST})
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
CREATED = "2024-01-01T00:00:00Z"
Format = Literal["oci", "docker"]


# -- data model -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Blob:
    """Content-addressed bytes with the media type they are served and referenced as."""

    media_type: str
    data: bytes

    @cached_property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.data).hexdigest()

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def hex(self) -> str:
        return self.digest.removeprefix("sha256:")

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        """`{"mediaType", "digest", "size"}` plus extra fields (platform, annotations, urls...)."""
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size, **extra}

    def json(self) -> Any:
        return json.loads(self.data)


@dataclass(frozen=True)
class Layer:
    """A layer blob plus its diff_id (sha256 of the uncompressed tar)."""

    blob: Blob
    diff_id: str


@dataclass(frozen=True)
class Tree:
    """A top manifest/index with everything it references.

    `manifests` holds every manifest below the top, each placed after the manifests it
    references (push order); `blobs` holds configs and layers. Both are de-duplicated.
    """

    top: Blob
    manifests: tuple[Blob, ...] = ()
    blobs: tuple[Blob, ...] = ()

    @property
    def digest(self) -> str:
        return self.top.digest

    @property
    def media_type(self) -> str:
        return self.top.media_type

    @property
    def all_manifests(self) -> tuple[Blob, ...]:
        return (*self.manifests, self.top)

    def manifest(self, digest: str) -> Blob:
        """The manifest (top or below) with this digest; KeyError if the tree does not hold it."""
        for m in self.all_manifests:
            if m.digest == digest:
                return m
        raise KeyError(digest)

    def json(self) -> Any:
        return self.top.json()


@dataclass(frozen=True)
class Platform:
    os: str
    architecture: str
    variant: str | None = None
    os_version: str | None = None

    def to_dict(self) -> dict[str, str]:
        d = {"architecture": self.architecture, "os": self.os}
        if self.os_version:
            d["os.version"] = self.os_version
        if self.variant:
            d["variant"] = self.variant
        return d


@dataclass(frozen=True)
class Entry:
    """An index entry: a child tree plus the descriptor's platform/annotations/extra fields."""

    tree: Tree
    platform: Platform | Mapping[str, str] | None = None
    annotations: Mapping[str, str] | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def descriptor(self) -> dict[str, Any]:
        d = self.tree.top.descriptor()
        if self.annotations:
            d["annotations"] = dict(self.annotations)
        if self.platform is not None:
            d["platform"] = self.platform.to_dict() if isinstance(self.platform, Platform) else dict(self.platform)
        d.update(self.extra)
        return d


# -- low-level encoders -------------------------------------------------------------------------
def to_json(obj: Any) -> bytes:
    """The one serialisation used for every manifest and config (stable key order = insertion)."""
    return json.dumps(obj, indent=2).encode() + b"\n"


def gzip_stored(data: bytes) -> bytes:
    """A valid gzip member using stored (uncompressed) deflate blocks.

    Byte-identical on every zlib build (zlib-ng compresses differently), mtime 0, no file name.
    """
    out = bytearray(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff")  # magic, deflate, flags, mtime=0, xfl, os
    chunks = [data[i : i + 0xFFFF] for i in range(0, len(data), 0xFFFF)] or [b""]
    for i, chunk in enumerate(chunks):
        final = 1 if i == len(chunks) - 1 else 0
        out += struct.pack("<BHH", final, len(chunk), len(chunk) ^ 0xFFFF) + chunk
    out += struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF)
    return bytes(out)


def tar_one(name: str, content: bytes) -> bytes:
    """A ustar archive holding one regular file (fixed mtime/owner/mode), without record padding."""
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(content), 0, 0o644
    header = info.tobuf(tarfile.USTAR_FORMAT, "utf-8", "strict")
    return header + content + b"\0" * (-len(content) % 512) + b"\0" * 1024


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# -- builders -----------------------------------------------------------------------------------
def layer(content: bytes | str, name: str = "hello.txt", media_type: str = OCI_LAYER_GZIP) -> Layer:
    """A gzip'd tar of one file. `media_type` may be overridden (bytes stay gzip)."""
    raw = tar_one(name, content.encode() if isinstance(content, str) else content)
    return Layer(Blob(media_type, gzip_stored(raw)), sha256(raw))


def config_blob(
    platform: Platform, layers: Sequence[Layer], media_type: str = OCI_CONFIG, cmd: Sequence[str] = ("sh",)
) -> Blob:
    """An image config whose rootfs.diff_ids match `layers`."""
    cfg: dict[str, Any] = {"created": CREATED, "architecture": platform.architecture, "os": platform.os}
    if platform.os_version:
        cfg["os.version"] = platform.os_version
    if platform.variant:
        cfg["variant"] = platform.variant
    cfg["config"] = {"Env": ["PATH=/usr/local/bin:/usr/bin:/bin"], "Cmd": list(cmd)}
    cfg["rootfs"] = {"type": "layers", "diff_ids": [lay.diff_id for lay in layers]}
    cfg["history"] = [
        {"created": CREATED, "created_by": f"registry-gate factory layer {i}"} for i in range(len(layers))
    ]
    return Blob(media_type, to_json(cfg))


def _unique(blobs: Iterable[Blob]) -> tuple[Blob, ...]:
    return tuple({b.digest: b for b in blobs}.values())


def image(
    platform: Platform,
    layers: Sequence[Layer] | None = None,
    *,
    fmt: Format = "oci",
    annotations: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
    layer_extra: Mapping[str, Any] | None = None,
) -> Tree:
    """An image manifest (OCI or Docker v2s2) with its config and layers.

    Layer media types are switched to the Docker type in Docker form unless a layer has a custom
    type. `extra` is merged into the manifest JSON (e.g. subject/artifactType); `layer_extra` into
    every layer descriptor (e.g. urls).
    """
    if layers is None:
        layers = [layer(f"{platform.os}/{platform.architecture}{platform.variant or ''} {platform.os_version or ''}\n")]
    docker = fmt == "docker"
    if docker:
        layers = [
            Layer(Blob(DOCKER_LAYER_GZIP, lay.blob.data), lay.diff_id) if lay.blob.media_type == OCI_LAYER_GZIP else lay
            for lay in layers
        ]
    config = config_blob(platform, layers, DOCKER_CONFIG if docker else OCI_CONFIG)
    manifest: dict[str, Any] = {"schemaVersion": 2, "mediaType": DOCKER_MANIFEST if docker else OCI_MANIFEST}
    manifest["config"] = config.descriptor()
    manifest["layers"] = [lay.blob.descriptor(**(layer_extra or {})) for lay in layers]
    if annotations:
        manifest["annotations"] = dict(annotations)
    manifest.update(extra or {})
    top = Blob(manifest["mediaType"], to_json(manifest))
    return Tree(top, (), _unique([config, *(lay.blob for lay in layers)]))


def attestation(subject: Tree, predicate_type: str = "https://slsa.dev/provenance/v0.2") -> Tree:
    """A BuildKit-style attestation manifest for `subject` (OCI manifest, one in-toto layer)."""
    statement = {
        "_type": "https://in-toto.io/Statement/v0.1",
        "predicateType": predicate_type,
        "subject": [{"name": "pkg:docker/registry-gate/example", "digest": {"sha256": subject.top.hex}}],
        "predicate": {"builder": {"id": "https://example.org/registry-gate/factory"}},
    }
    body = Blob(IN_TOTO, to_json(statement))
    config = Blob(
        OCI_CONFIG,
        to_json(
            {
                "architecture": "unknown",
                "os": "unknown",
                "config": {},
                "rootfs": {"type": "layers", "diff_ids": [body.digest]},
            }
        ),
    )
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config.descriptor(),
        "layers": [body.descriptor(annotations={"in-toto.io/predicate-type": predicate_type})],
    }
    return Tree(Blob(OCI_MANIFEST, to_json(manifest)), (), (config, body))


def attestation_entry(subject: Tree, predicate_type: str = "https://slsa.dev/provenance/v0.2") -> Entry:
    """The index entry BuildKit writes next to an image: unknown/unknown plus reference annotations."""
    return Entry(
        attestation(subject, predicate_type),
        Platform("unknown", "unknown"),
        {"vnd.docker.reference.digest": subject.digest, "vnd.docker.reference.type": "attestation-manifest"},
    )


def custom(
    top: Mapping[str, Any] | bytes,
    media_type: str | None = None,
    children: Sequence[Tree] = (),
    blobs: Sequence[Blob] = (),
) -> Tree:
    """A hand-crafted tree: any JSON (or raw bytes) as the top, plus what it should carry along.

    `media_type` defaults to the JSON's `mediaType`. Nothing is validated, on purpose.
    """
    data = top if isinstance(top, bytes) else to_json(top)
    if media_type is None:
        if isinstance(top, bytes) or "mediaType" not in top:
            raise ValueError("media_type is required when the top has no mediaType field")
        media_type = str(top["mediaType"])
    manifests = _unique(m for child in children for m in child.all_manifests)
    all_blobs = _unique([*(b for child in children for b in child.blobs), *blobs])
    return Tree(Blob(media_type, data), manifests, all_blobs)


def index(
    entries: Sequence[Entry | Tree],
    *,
    media_type: str = OCI_INDEX,
    annotations: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Tree:
    """An OCI index (or, with media_type=DOCKER_LIST, a Docker manifest list) over `entries`.

    Children are used as given (never converted), so mixed and nested indexes are easy.
    """
    ents = [e if isinstance(e, Entry) else Entry(e) for e in entries]
    doc: dict[str, Any] = {"schemaVersion": 2, "mediaType": media_type, "manifests": [e.descriptor() for e in ents]}
    if annotations:
        doc["annotations"] = dict(annotations)
    doc.update(extra or {})
    return custom(doc, media_type, [e.tree for e in ents])


def docker_list(entries: Sequence[Entry | Tree], **kw: Any) -> Tree:
    """A Docker manifest list over `entries` (children are not converted)."""
    return index(entries, media_type=DOCKER_LIST, **kw)


def python_like(version: str = "3.12.8") -> Tree:
    """A python:3.12-shaped *mixed* OCI index.

    linux/amd64 and linux/arm64/v8 OCI images, each followed by its attestation entry, then
    windows/amd64 ltsc2022 and 1809 Docker v2s2 images (ordinary gzip layers, not foreign).
    """
    ann = {"org.opencontainers.image.version": version}
    entries: list[Entry] = []
    for plat in (Platform("linux", "amd64"), Platform("linux", "arm64", "v8")):
        arch = plat.architecture + (plat.variant or "")
        img = image(
            plat,
            [
                layer(f"debian bookworm rootfs for {arch}\n", "etc/os-release"),
                layer(f"Python {version} for linux/{arch}\n", "usr/local/bin/python3"),
            ],
        )
        entries += [Entry(img, plat, ann), attestation_entry(img)]
    for os_version in ("10.0.20348.2966", "10.0.17763.6659"):
        plat = Platform("windows", "amd64", os_version=os_version)
        img = image(
            plat,
            [
                layer(f"windows servercore {os_version}\n", "Files/License.txt"),
                layer(f"Python {version} for windows {os_version}\n", "Files/Python/python.exe"),
            ],
            fmt="docker",
        )
        entries.append(Entry(img, plat, ann))
    return index(entries)


# -- pushing (distribution HTTP API, urllib only) -------------------------------------------------
class HasUrl(Protocol):
    @property
    def url(self) -> str: ...


class PushError(RuntimeError):
    """The registry refused a request; `.status` is the HTTP code, `.body` its error body."""

    def __init__(self, method: str, url: str, status: int, body: str) -> None:
        super().__init__(f"{method} {url} -> HTTP {status}: {body.strip()}")
        self.method, self.url, self.status, self.body = method, url, status, body

    @property
    def codes(self) -> list[str]:
        """Error codes from a distribution error body, e.g. ["MANIFEST_BLOB_UNKNOWN"]."""
        try:
            return [str(e.get("code")) for e in json.loads(self.body).get("errors", [])]
        except (ValueError, AttributeError):
            return []


class _Client:
    def __init__(self, base: str, auth: tuple[str, str] | None, cafile: str | Path | None) -> None:
        self.base = base.rstrip("/")
        self.headers: dict[str, str] = {}
        if auth:
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            self.headers["Authorization"] = f"Basic {token}"
        self.context = ssl.create_default_context(cafile=str(cafile)) if cafile else None

    def request(
        self,
        method: str,
        url: str,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        ok: Sequence[int] = (200, 201, 202),
    ) -> tuple[int, Mapping[str, str]]:
        url = urllib.parse.urljoin(self.base + "/", url)
        req = urllib.request.Request(url, data=data, method=method, headers={**self.headers, **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=30, context=self.context) as resp:
                resp.read()
                status, hdrs = resp.status, dict(resp.headers)
        except urllib.error.HTTPError as e:
            status, hdrs = e.code, dict(e.headers)
            if status not in ok:
                raise PushError(method, url, status, e.read().decode(errors="replace")) from None
        if status not in ok:
            raise PushError(method, url, status, "")
        return status, hdrs


def _push_blob(client: _Client, repo: str, blob: Blob) -> None:
    status, _ = client.request("HEAD", f"/v2/{repo}/blobs/{blob.digest}", ok=(200, 404))
    if status == 200:
        return
    _, hdrs = client.request("POST", f"/v2/{repo}/blobs/uploads/", data=b"")
    location = hdrs["Location"]
    sep = "&" if "?" in location else "?"
    client.request(
        "PUT",
        f"{location}{sep}digest={urllib.parse.quote(blob.digest)}",
        data=blob.data,
        headers={"Content-Type": "application/octet-stream"},
    )


def _push_manifest(client: _Client, repo: str, ref: str, manifest: Blob) -> str:
    _, hdrs = client.request(
        "PUT", f"/v2/{repo}/manifests/{ref}", data=manifest.data, headers={"Content-Type": manifest.media_type}
    )
    return hdrs.get("Docker-Content-Digest", manifest.digest)


def push(
    registry: str | HasUrl,
    repo: str,
    tag: str,
    tree: Tree,
    auth: tuple[str, str] | None = None,
    cafile: str | Path | None = None,
) -> str:
    """Push blobs, then child manifests by digest, then the top by `tag`; return the top digest.

    `registry` is a base URL ("http://127.0.0.1:5000") or anything with `.url`. Raises PushError
    carrying the registry's status and error body on the first refusal.
    """
    client = _Client(registry if isinstance(registry, str) else registry.url, auth, cafile)
    for blob in tree.blobs:
        _push_blob(client, repo, blob)
    for child in tree.manifests:
        _push_manifest(client, repo, child.digest, child)
    digest = _push_manifest(client, repo, tag, tree.top)
    if digest != tree.digest:
        raise PushError(
            "PUT", f"/v2/{repo}/manifests/{tag}", 201, f"registry stored digest {digest}, expected {tree.digest}"
        )
    return digest


# -- OCI image layout ---------------------------------------------------------------------------
def layout_files(tag: str, tree: Tree) -> dict[str, bytes]:
    """Relative path -> bytes of an OCI image layout holding `tree` under ref name `tag`."""
    entry = tree.top.descriptor(annotations={REF_NAME: tag})
    files = {
        "oci-layout": to_json({"imageLayoutVersion": "1.0.0"}),
        "index.json": to_json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [entry]}),
    }
    for blob in (*tree.blobs, *tree.all_manifests):
        files[f"blobs/sha256/{blob.hex}"] = blob.data
    return dict(sorted(files.items()))


def write_layout(directory: str | Path, tag: str, tree: Tree) -> Path:
    """Write an OCI image layout directory (must be absent or empty); return its path."""
    root = Path(directory)
    if root.exists() and any(root.iterdir()):
        raise FileExistsError(f"{root} is not empty")
    for rel, data in layout_files(tag, tree).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def write_archive(path: str | Path, tag: str, tree: Tree) -> Path:
    """Write the same layout as a deterministic tar, usable as `oci-archive:PATH`."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for d in ("blobs", "blobs/sha256"):
            info = tarfile.TarInfo(d)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
            tar.addfile(info)
        for rel, data in layout_files(tag, tree).items():
            info = tarfile.TarInfo(rel)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    out = Path(path)
    out.write_bytes(buf.getvalue())
    return out
