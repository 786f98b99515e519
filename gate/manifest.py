"""Raw manifest bytes to a typed model: OCI and Docker indexes, image manifests, schema 1.

Parsing never trusts the document: fields of the wrong type are recorded as `problems` (with their JSON path,
e.g. `manifests[3].size`) and left out of the typed view, so every rule can run on whatever is well-formed and
the `schema` rule reports the rest. Only bytes that are not a JSON object at all raise `ManifestError`.
The exact bytes and their digest are kept: registries and rules care about bytes, not re-serialisations.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from gate.errors import ManifestError

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_ARTIFACT = "application/vnd.oci.artifact.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
OCI_LAYER_PREFIX = "application/vnd.oci.image.layer."
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
DOCKER_PREFIX = "application/vnd.docker."

INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
IMAGE_TYPES = frozenset({OCI_MANIFEST, DOCKER_MANIFEST, OCI_ARTIFACT})
SCHEMA1_TYPES = frozenset({DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED})
MANIFEST_TYPES = INDEX_TYPES | IMAGE_TYPES | SCHEMA1_TYPES
DOCKER_MANIFEST_TYPES = frozenset({DOCKER_LIST, DOCKER_MANIFEST}) | SCHEMA1_TYPES
OCI_MANIFEST_TYPES = frozenset({OCI_INDEX, OCI_MANIFEST, OCI_ARTIFACT})

# image-spec schema/defs-descriptor.json
MEDIA_TYPE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$")
DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$")
_HASHES = {"sha256": 64, "sha512": 128}


def digest_of(raw: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, raw).hexdigest()}"


def verify(raw: bytes, digest: str) -> bool | None:
    """True/False when the digest's algorithm is one we can compute, None when it is not."""
    algorithm, _, hexpart = digest.partition(":")
    if algorithm not in _HASHES or len(hexpart) != _HASHES[algorithm]:
        return None
    return digest_of(raw, algorithm) == digest


def _registered_digest_ok(digest: str) -> bool:
    """sha256 and sha512 digests must be exactly their length in lowercase hex (image-spec descriptor.md)."""
    algorithm, _, encoded = digest.partition(":")
    if algorithm not in _HASHES:
        return True
    return len(encoded) == _HASHES[algorithm] and all(c in "0123456789abcdef" for c in encoded)


@dataclass(frozen=True)
class Problem:
    path: str
    message: str


@dataclass(frozen=True)
class Platform:
    os: str | None = None
    architecture: str | None = None
    variant: str | None = None
    os_version: str | None = None

    def __str__(self) -> str:
        parts = [self.os or "?", self.architecture or "?"]
        if self.variant:
            parts.append(self.variant)
        text = "/".join(parts)
        return f"{text} ({self.os_version})" if self.os_version else text

    @property
    def key(self) -> tuple[str | None, ...]:
        return (self.os, self.architecture, self.variant, self.os_version)


@dataclass(frozen=True)
class Descriptor:
    path: str
    media_type: str | None
    digest: str | None
    size: int | None
    platform: Platform | None = None
    annotations: dict[str, str] = field(default_factory=dict)
    urls: tuple[str, ...] = ()
    artifact_type: str | None = None
    data: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass
class Manifest:
    raw: bytes
    digest: str
    data: dict[str, Any]
    declared_type: str | None
    """The type the document was served or referenced as (Content-Type, descriptor, layout entry)."""
    kind: str
    """index, image, schema1 or unknown."""
    schema_version: Any = None
    manifests: list[Descriptor] = field(default_factory=list)
    config: Descriptor | None = None
    layers: list[Descriptor] = field(default_factory=list)
    subject: Descriptor | None = None
    artifact_type: str | None = None
    annotations: dict[str, str] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.raw)

    @property
    def media_type(self) -> str | None:
        """The top-level `mediaType` written in the body, if it is a string."""
        value = self.data.get("mediaType")
        return value if isinstance(value, str) else None

    @property
    def type(self) -> str | None:
        """What the document is: its own `mediaType`, else what it was served as, else what its shape says."""
        return self.media_type or self.declared_type or guess_type(self.data)


class _Reader:
    """Collects typed values and records a problem for each one of the wrong type."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def bad(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))

    def string(self, obj: dict[str, Any], key: str, path: str, *, required: bool = False) -> str | None:
        if key not in obj:
            if required:
                self.bad(f"{path}.{key}" if path else key, "is required")
            return None
        value = obj[key]
        if not isinstance(value, str):
            self.bad(f"{path}.{key}" if path else key, f"must be a string, not {_kind(value)}")
            return None
        return value

    def media_type(self, obj: dict[str, Any], key: str, path: str, *, required: bool = False) -> str | None:
        value = self.string(obj, key, path, required=required)
        if value is not None and not MEDIA_TYPE_RE.match(value):
            self.bad(f"{path}.{key}" if path else key, f"{value!r} is not a type/subtype media type")
        return value

    def string_map(self, obj: dict[str, Any], key: str, path: str) -> dict[str, str]:
        value = obj.get(key)
        where = f"{path}.{key}" if path else key
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.bad(where, f"must be an object of strings, not {_kind(value)}")
            return {}
        out = {}
        for k, v in value.items():
            if isinstance(v, str):
                out[k] = v
            else:
                self.bad(f"{where}[{k!r}]", f"must be a string, not {_kind(v)}")
        return out

    def platform(self, obj: dict[str, Any], path: str) -> Platform | None:
        value = obj.get("platform")
        where = f"{path}.platform"
        if value is None:
            return None
        if not isinstance(value, dict):
            self.bad(where, f"must be an object, not {_kind(value)}")
            return None
        os_ = self.string(value, "os", where, required=True)
        arch = self.string(value, "architecture", where, required=True)
        variant = self.string(value, "variant", where)
        os_version = self.string(value, "os.version", where)
        features = value.get("os.features")
        if features is not None and not (isinstance(features, list) and all(isinstance(f, str) for f in features)):
            self.bad(f"{where}.os.features", "must be an array of strings")
        return Platform(os_, arch, variant, os_version)

    def descriptor(self, value: Any, path: str) -> Descriptor | None:
        if not isinstance(value, dict):
            self.bad(path, f"must be a descriptor object, not {_kind(value)}")
            return None
        media_type = self.media_type(value, "mediaType", path, required=True)
        digest = self.string(value, "digest", path, required=True)
        if digest is not None and not DIGEST_RE.match(digest):
            self.bad(f"{path}.digest", f"{digest!r} is not a digest (algorithm:encoded)")
            digest = None
        elif digest is not None and not _registered_digest_ok(digest):
            algorithm = digest.partition(":")[0]
            self.bad(f"{path}.digest", f"{digest!r}: a {algorithm} digest is {_HASHES[algorithm]} lowercase hex digits")
            digest = None
        size: int | None = None
        if "size" not in value:
            self.bad(f"{path}.size", "is required")
        elif isinstance(value["size"], bool) or not isinstance(value["size"], int):
            self.bad(f"{path}.size", f"must be an integer, not {_kind(value['size'])}")
        elif not 0 <= value["size"] < 2**63:
            self.bad(f"{path}.size", f"{value['size']} is out of range")
        else:
            size = value["size"]
        urls: tuple[str, ...] = ()
        if "urls" in value:
            raw_urls = value["urls"]
            if isinstance(raw_urls, list) and all(isinstance(u, str) for u in raw_urls):
                urls = tuple(raw_urls)
            else:
                self.bad(f"{path}.urls", "must be an array of strings")
        if "data" in value and not isinstance(value["data"], str):
            self.bad(f"{path}.data", "must be a base64 string")
        return Descriptor(
            path=path,
            media_type=media_type,
            digest=digest,
            size=size,
            platform=self.platform(value, path),
            annotations=self.string_map(value, "annotations", path),
            urls=urls,
            artifact_type=self.media_type(value, "artifactType", path),
            data=value,
        )

    def descriptors(self, obj: dict[str, Any], key: str, *, required: bool) -> list[Descriptor]:
        if key not in obj:
            if required:
                self.bad(key, "is required")
            return []
        value = obj[key]
        if not isinstance(value, list):
            self.bad(key, f"must be an array, not {_kind(value)}")
            return []
        out = []
        for i, item in enumerate(value):
            d = self.descriptor(item, f"{key}[{i}]")
            if d is not None:
                out.append(d)
        return out


def _kind(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number"
    )


def guess_type(data: dict[str, Any]) -> str | None:
    """The media type of a document that does not name its own, as containers/image guesses it."""
    version = data.get("schemaVersion")
    if version == 1 and type(version) is int:
        return DOCKER_SCHEMA1_SIGNED if "signatures" in data else DOCKER_SCHEMA1
    if "manifests" in data:
        return OCI_INDEX  # a Docker list must carry its mediaType, so an untyped list is read as OCI
    config = data.get("config")
    if isinstance(config, dict) and config.get("mediaType") == DOCKER_CONFIG:
        return DOCKER_MANIFEST
    if "config" in data or "layers" in data:
        return OCI_MANIFEST
    return None


def _guess_kind(data: dict[str, Any], declared: str | None) -> str:
    for media_type in (data.get("mediaType"), declared, guess_type(data)):
        if not isinstance(media_type, str):
            continue
        if media_type in INDEX_TYPES:
            return "index"
        if media_type in IMAGE_TYPES:
            return "image"
        if media_type in SCHEMA1_TYPES:
            return "schema1"
    return "unknown"


_UTF8_BOM = b"\xef\xbb\xbf"
_MAX_INT_DIGITS = 30


def _decode(raw: bytes, problems: list[Problem]) -> Any:
    """JSON as Go's encoding/json reads it: UTF-8 (invalid bytes replaced), no BOM, no NaN, big numbers kept."""
    if raw.startswith(_UTF8_BOM):
        problems.append(Problem("", "starts with a UTF-8 byte-order mark, which registries refuse"))
        raw = raw[len(_UTF8_BOM) :]
    encoding = json.detect_encoding(raw)
    if encoding != "utf-8":
        problems.append(Problem("", f"is {encoding.upper()}, not UTF-8; registries refuse it"))
        text = raw.decode(encoding, "replace")
    else:
        text = raw.decode("utf-8", "replace")

    def constant(name: str) -> float:
        problems.append(Problem("", f"contains {name}, which is not JSON; registries refuse it"))
        return float("nan")

    def integer(digits: str) -> int | float:
        # Python refuses to convert very long integers; a number that long is out of range for any field anyway.
        return int(digits) if len(digits.lstrip("-")) <= _MAX_INT_DIGITS else float("inf")

    return json.loads(text, parse_constant=constant, parse_int=integer)


def parse(raw: bytes, declared_type: str | None = None, digest: str | None = None) -> Manifest:
    """Parse manifest bytes. `declared_type` is what it was served or referenced as, when known."""
    early: list[Problem] = []
    try:
        data = _decode(raw, early)
    except (ValueError, RecursionError) as exc:
        reason = str(exc).split("\n")[0][:120] if isinstance(exc, ValueError) else "nested too deeply"
        raise ManifestError(
            f"not a manifest: the bytes are not JSON ({reason})",
            "pass what `skopeo inspect --raw` prints, an OCI layout (oci:DIR:TAG) or a docker:// reference",
        ) from None
    if not isinstance(data, dict):
        raise ManifestError(
            f"not a manifest: the JSON is {_kind(data)}, not an object",
            "pass what `skopeo inspect --raw` prints for an image or index",
        )
    kind = _guess_kind(data, declared_type)
    m = Manifest(raw=raw, digest=digest or digest_of(raw), data=data, declared_type=declared_type, kind=kind)
    r = _Reader()
    r.problems.extend(early)
    m.schema_version = data.get("schemaVersion")
    if kind == "schema1":
        _schema1(data, r)
    else:
        if "schemaVersion" not in data:
            r.bad("schemaVersion", "is required")
        elif m.schema_version != 2 or type(m.schema_version) is not int:
            r.bad("schemaVersion", f"must be 2, not {json.dumps(m.schema_version)}")
        r.media_type(data, "mediaType", "")
        m.artifact_type = r.media_type(data, "artifactType", "")
        m.annotations = r.string_map(data, "annotations", "")
        if "subject" in data:
            m.subject = r.descriptor(data["subject"], "subject")
        if kind == "index":
            m.manifests = r.descriptors(data, "manifests", required=True)
            if "config" in data or "layers" in data:
                r.bad("", "has both `manifests` and `config`/`layers`: it is ambiguous between an index and a manifest")
        elif kind == "image":
            if "config" in data:
                m.config = r.descriptor(data["config"], "config")
            elif (m.type or "") != OCI_ARTIFACT:
                r.bad("config", "is required")
            m.layers = r.descriptors(data, "layers" if "layers" in data else "blobs", required=m.type != OCI_ARTIFACT)
            if "manifests" in data:
                r.bad("", "has both `config`/`layers` and `manifests`: it is ambiguous between a manifest and an index")
        else:
            r.bad("", "is neither an index (`manifests`) nor an image manifest (`config`, `layers`)")
    m.problems = r.problems
    return m


def _schema1(data: dict[str, Any], r: _Reader) -> None:
    if data.get("schemaVersion") != 1:
        r.bad("schemaVersion", "must be 1 for a schema 1 manifest")
    for key in ("name", "tag", "architecture"):
        r.string(data, key, "", required=True)
    for key in ("fsLayers", "history"):
        if not isinstance(data.get(key), list):
            r.bad(key, "must be an array")


@dataclass
class Node:
    """One manifest in the tree, with the descriptor that pointed at it (None for the top)."""

    path: str
    manifest: Manifest | None
    descriptor: Descriptor | None = None
    parent: Node | None = None
    depth: int = 0
    note: str | None = None
    """Why `manifest` is None: not fetched (a saved file), not a manifest type, ..."""
    children: list[Node] = field(default_factory=list, repr=False)

    def child_path(self, descriptor: Descriptor) -> str:
        return f"{self.path}/{descriptor.path}" if self.path else descriptor.path

    def at(self, field_path: str) -> str:
        """The path of a field of this node's document: `manifests[4]/layers[0].mediaType`."""
        if not self.path:
            return field_path
        return f"{self.path}/{field_path}" if field_path else self.path

    @property
    def platform(self) -> Platform | None:
        return self.descriptor.platform if self.descriptor else None


@dataclass
class Image:
    """What a source resolved to: the top manifest and every manifest below it that could be read."""

    source: str
    nodes: list[Node]
    children_inspected: bool = True

    @property
    def top(self) -> Manifest:
        top = self.nodes[0].manifest
        assert top is not None
        return top

    def manifests(self) -> Iterator[tuple[Node, Manifest]]:
        for node in self.nodes:
            if node.manifest is not None:
                yield node, node.manifest
