"""Many sources in one run: expand, shard, check concurrently, and sum up with the worst exit code.

A source is anything `check` accepts. A registry repository named without a tag or digest (`HOST/NS/REPO`) is
expanded into one source per tag (`skopeo list-tags`, filtered by `--tags REGEX`). `--shard K/N` keeps the sources
whose sha256 falls in bucket K of N, so N CI jobs given the same list cover each source exactly once, whatever
order the list comes in.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from gate.cache import Cache
from gate.config import Settled
from gate.engine import Target, evaluate
from gate.errors import EXIT_FAIL, EXIT_PASS, GateError, InspectError, UsageError
from gate.policy import Registry
from gate.reference import parse as parse_reference
from gate.report import Report
from gate.skopeo import Skopeo
from gate.sources import open_source

MAX_SOURCES = 100_000


@dataclass
class Outcome:
    """What checking one source gave: a report, or the error that stopped it."""

    source: str
    report: Report | None = None
    error: GateError | None = None

    def verdict(self) -> str:
        """The worst target verdict, or "error" when the source could not be checked."""
        if self.report is None:
            return "error"
        verdicts = {r.verdict for r in self.report.results}
        return "fail" if "fail" in verdicts else "warn" if "warn" in verdicts else "pass"

    def exit_code(self) -> int:
        if self.error is not None:
            return self.error.exit_code
        assert self.report is not None
        return EXIT_FAIL if any(self.report.failing(r) for r in self.report.results) else EXIT_PASS


def read_list(path: str) -> list[str]:
    """One source a line; blank lines and `#` comments (whole-line or trailing after a space) are skipped."""
    try:
        if path == "-":
            text = sys.stdin.read()
        else:
            with open(path, encoding="utf-8") as handle:
                text = handle.read(64 * 1024 * 1024)
    except (OSError, UnicodeDecodeError) as exc:
        problem = f"--from-file {path}: cannot read it ({exc})"
        raise UsageError(problem, "pass a UTF-8 text file, one source a line") from None
    out = []
    for line in text.splitlines():
        line = re.sub(r"(^|\s)#.*$", "", line).strip()
        if line:
            out.append(line)
    return out


def parse_shard(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    match = re.fullmatch(r"(\d+)/(\d+)", text.strip())
    if not match or not 1 <= int(match.group(1)) <= int(match.group(2)):
        raise UsageError(f"--shard {text!r} is not K/N with 1 <= K <= N", "write it like --shard 2/4")
    return int(match.group(1)), int(match.group(2))


def in_shard(source: str, shard: tuple[int, int] | None) -> bool:
    """Whether `source` belongs to shard K of N: by its sha256, never by its position in the list."""
    if shard is None:
        return True
    k, n = shard
    return int.from_bytes(hashlib.sha256(source.encode()).digest()[:8], "big") % n == k - 1


def _is_repository(spec: str) -> bool:
    """A registry name with no tag and no digest: audit expands it into its tags."""
    if not spec.startswith("docker://"):
        return False
    ref = parse_reference(spec)
    return ref.tag is None and ref.digest is None


def normalise(spec: str) -> str:
    """`docker://` is implied for something that looks like a registry reference and is not a local path."""
    if spec.startswith(("docker://", "oci:", "oci-archive:", "-")) or os.path.exists(spec):
        return spec
    return f"docker://{spec}"


def expand(specs: list[str], tags: str | None, skopeo: Skopeo, jobs: int) -> list[str]:
    """Sources in order, repositories replaced by their tags (matching `tags`, searched anywhere in the tag)."""
    try:
        pattern = re.compile(tags) if tags is not None else None
    except re.error as exc:
        raise UsageError(f"--tags {tags!r} is not a regular expression: {exc}", "fix the pattern") from None
    specs = [normalise(s) for s in specs]
    repositories = [s for s in specs if _is_repository(s)]
    if tags is not None and not repositories:
        raise UsageError("--tags was given but no source is a bare repository", "name HOST/REPOSITORY with no tag")
    listed: dict[str, list[str]] = {}
    if repositories:
        with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(repositories)))) as pool:
            for repo, found in zip(
                repositories, pool.map(lambda r: skopeo.list_tags(r[len("docker://") :]), repositories)
            ):
                listed[repo] = found
    out: list[str] = []
    for spec in specs:
        if spec in listed:
            out += [f"{spec}:{t}" for t in sorted(listed[spec]) if pattern is None or pattern.search(t)]
        else:
            out.append(spec)
    unique = list(dict.fromkeys(out))
    if len(unique) > MAX_SOURCES:
        raise UsageError(f"{len(unique)} sources is more than {MAX_SOURCES}", "split the list with --shard K/N")
    return unique


def check_one(
    source: str,
    targets: list[Target],
    registry: Registry,
    skopeo: Skopeo,
    jobs: int,
    cache: Cache,
    run: Settled,
    source_flags: Sequence[str] = (),
) -> Outcome:
    try:
        image = open_source(source, skopeo, jobs, None, cache)
        results = [evaluate(image, t, registry, source_flags) for t in targets]
        run.waive(results, image.top.digest)
    except GateError as exc:
        return Outcome(source, error=exc)
    except Exception as exc:  # one broken source must not hide the others' results
        return Outcome(
            source,
            error=InspectError(
                f"internal error: {type(exc).__name__}: {exc}", "report it with the source", kind="internal"
            ),
        )
    return Outcome(source, Report(image.source, image.top.digest, image.top.type, results, run.notices, run.fail_on))


def run(
    sources: list[str],
    targets: list[Target],
    registry: Registry,
    skopeo: Skopeo,
    jobs: int,
    cache: Cache,
    progress: Callable[[int, int, str], None] | None,
    run: Settled,
    source_flags: Sequence[str] = (),
) -> list[Outcome]:
    """Check every source, `jobs` at a time, in the order given."""
    done = 0
    lock = threading.Lock()

    def one(source: str) -> Outcome:
        nonlocal done
        outcome = check_one(source, targets, registry, skopeo, jobs, cache, run, source_flags)
        if progress is not None:
            with lock:
                done += 1
                progress(done, len(sources), source)
        return outcome

    if not sources:
        return []
    with ThreadPoolExecutor(max_workers=max(1, min(jobs, len(sources)))) as pool:
        return list(pool.map(one, sources))


def worst_exit(outcomes: list[Outcome]) -> int:
    return max((o.exit_code() for o in outcomes), default=EXIT_PASS)


class Progress:
    """`[12/100] source` redrawn on stderr, only when stderr is a terminal."""

    def __init__(self) -> None:
        self.on = sys.stderr.isatty()
        self.width = 0

    def __call__(self, done: int, total: int, source: str) -> None:
        if not self.on:
            return
        line = f"[{done}/{total}] {source}"[:100]
        sys.stderr.write("\r" + line.ljust(self.width))
        sys.stderr.flush()
        self.width = len(line)

    def close(self) -> None:
        if self.on and self.width:
            sys.stderr.write("\r" + " " * self.width + "\r")
            sys.stderr.flush()
