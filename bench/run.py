"""Benchmarks for registry-gate (a script, not a test): `.venv/bin/python bench/run.py [--quick]`.

Starts the real registry fixture (tests/registry.py) behind a loopback proxy that adds a fixed delay to every
request (tests/faultproxy.py; 100 ms by default: a CI runner talking to a registry in another region), then
measures, side by side in one run:

1. a 16-entry index: the serial shell loop users write today, the two-call floor, `registry-gate check` cold and
   warm (and how many requests reach the registry when warm);
2. evaluation of 100 / 1,000 / 10,000-entry indexes (saved file, in-process, no start-up) under every built-in
   profile, as CPU time (the least of several runs: it is CPU-bound, and other processes add wall-clock noise),
   as Python function calls, and with --instructions as instructions counted by valgrind (callgrind), which
   other tenants of a shared machine cannot disturb;
3. start-up: `registry-gate --version` against `python -c "import typer"`;
4. `registry-gate audit --jobs 1` against `--jobs 8` on 100 references behind the proxy.

Other times are medians of several runs (wall clock). Ratios are printed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import factory as f  # noqa: E402
from faultproxy import FaultProxy  # noqa: E402
from registry import Registry  # noqa: E402

VENV = ROOT / ".venv" / "bin"
GATE = str(VENV / "registry-gate")
PYTHON = str(VENV / "python")


def cpu_time(fn: Callable[[], object], runs: int) -> float:
    """The least CPU time of `runs` calls: for in-process work, where other processes on the machine add noise."""
    best = float("inf")
    for _ in range(runs):
        started = time.process_time()
        fn()
        best = min(best, time.process_time() - started)
    return best


def calls(fn: Callable[[], object]) -> int:
    """Python function calls made by `fn`: a measure of work that other processes cannot disturb."""
    import cProfile
    import pstats

    profile = cProfile.Profile()
    profile.enable()
    fn()
    profile.disable()
    return int(pstats.Stats(profile).total_calls)


def median_time(fn: Callable[[], object], runs: int, setup: Callable[[], object] | None = None) -> float:
    times = []
    for _ in range(runs):
        if setup is not None:
            setup()
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def run(argv: list[str], env: dict[str, str] | None = None, ok: tuple[int, ...] = (0,)) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    if proc.returncode not in ok:
        raise SystemExit(f"bench: {' '.join(argv)} exited {proc.returncode}: {proc.stderr.strip()}")
    return proc.stdout


def sh(script: str) -> None:
    subprocess.run(["bash", "-c", script], check=True, capture_output=True)


def wide_index(entries: int) -> bytes:
    """An OCI index of `entries` distinct image entries (only the index: evaluated as a saved file)."""
    manifests = [
        {
            "mediaType": f.OCI_MANIFEST,
            "digest": "sha256:" + f.sha256(str(i).encode()).removeprefix("sha256:"),
            "size": 1000 + i,
            "platform": {"os": "linux", "architecture": "amd64", "variant": f"v{i}"},
        }
        for i in range(entries)
    ]
    return f.to_json({"schemaVersion": 2, "mediaType": f.OCI_INDEX, "manifests": manifests})


def index_with_children(entries: int, folder: Path) -> bytes:
    """An OCI index of `entries` distinct image manifests, each saved in `folder` as HEX.json."""
    folder.mkdir(parents=True, exist_ok=True)
    config = {"mediaType": f.OCI_CONFIG, "digest": f.sha256(b"{}"), "size": 2}
    manifests = []
    for i in range(entries):
        layer = {"mediaType": f.OCI_LAYER_GZIP, "digest": f.sha256(str(i).encode()), "size": 100 + i}
        child = f.to_json({"schemaVersion": 2, "mediaType": f.OCI_MANIFEST, "config": config, "layers": [layer]})
        (folder / f"{f.sha256(child).split(':')[1]}.json").write_bytes(child)
        platform = {"os": "linux", "architecture": "amd64", "variant": f"v{i}"}
        manifests.append(
            {"mediaType": f.OCI_MANIFEST, "digest": f.sha256(child), "size": len(child), "platform": platform}
        )
    return f.to_json({"schemaVersion": 2, "mediaType": f.OCI_INDEX, "manifests": manifests})


def evaluate_once(entries: int, evaluate_it: bool) -> None:
    """One process's worth of evaluation (run under valgrind by `instructions`): everything but the evaluation
    itself (start-up, policies, building the index) also runs with `evaluate_it` False, to be subtracted."""
    sys.path.insert(0, str(ROOT))
    from gate.engine import Target, evaluate
    from gate.policy import Registry as Policies
    from gate.sources import open_source

    policies = Policies()
    folder = Path(tempfile.mkdtemp(prefix="registry-gate-bench-once-"))
    path = folder / "index.json"
    path.write_bytes(wide_index(entries))
    if evaluate_it:
        image = open_source(str(path))
        for name in sorted(policies.profiles):
            evaluate(image, Target(None, None, name, None, "--profile"), policies)
    shutil.rmtree(folder)


def instructions(entries: int) -> int:
    """Instructions the evaluation of an `entries`-entry index under every profile executes (valgrind's count:
    the same for the same program and input whatever else the machine is doing)."""
    valgrind = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
    counts = []
    for mode in ("evaluate", "setup-only"):
        proc = subprocess.run(
            [*valgrind, PYTHON, __file__, "--evaluate-once", str(entries), mode],
            capture_output=True,
            text=True,
            check=True,
        )
        counts.append(int(re.search(r"Collected : (\d+)", proc.stderr).group(1)))  # type: ignore[union-attr]
    return counts[0] - counts[1]


def sixteen_platforms() -> f.Tree:
    archs = ["amd64", "arm64", "arm", "386", "ppc64le", "s390x", "riscv64", "mips64le"]
    images = [
        f.image(f.Platform(os_, a), layers=[f.layer(f"{os_}-{a}")]) for os_ in ("linux", "freebsd") for a in archs
    ]
    return f.index(images)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--delay", type=float, default=0.1, help="seconds the proxy adds to every request")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="fewer runs and 30 references instead of 100")
    parser.add_argument("--offline", action="store_true", help="only what needs no registry: evaluation, start-up")
    parser.add_argument(
        "--instructions",
        action="store_true",
        help="also count the evaluation's instructions under valgrind (callgrind): about 6 more minutes",
    )
    parser.add_argument("--evaluate-once", nargs=2, metavar=("ENTRIES", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.evaluate_once:
        evaluate_once(int(args.evaluate_once[0]), args.evaluate_once[1] == "evaluate")
        return
    runs = 2 if args.quick else args.runs
    refs_count = 30 if args.quick else 100
    figures: dict[str, float] = {}
    load = os.getloadavg()[0]
    cache_home = Path(tempfile.mkdtemp(prefix="registry-gate-bench-"))
    env = dict(os.environ, XDG_CACHE_HOME=str(cache_home))

    def cold() -> None:
        shutil.rmtree(cache_home / "registry-gate", ignore_errors=True)

    if not args.offline:
        with Registry() as reg, FaultProxy(reg.url, delay=args.delay, max_active=128) as proxy:
            # -- 1. one 16-entry index ------------------------------------------------------------------------------
            tree = sixteen_platforms()
            f.push(reg, "bench/app", "1", tree)
            ref = f"{proxy.host}/bench/app:1"
            pinned = f"{proxy.host}/bench/app@{tree.digest}"
            child = tree.json()["manifests"][0]["digest"]
            skopeo = "skopeo inspect --raw --tls-verify=false"
            serial = (
                f"for d in $({skopeo} docker://{ref} | jq -r '.manifests[].digest'); do "
                f"{skopeo} docker://{proxy.host}/bench/app@$d >/dev/null; done"
            )
            two_calls = (
                f"{skopeo} docker://{ref} >/dev/null && {skopeo} docker://{proxy.host}/bench/app@{child} >/dev/null"
            )
            parallel = (
                f"for d in $({skopeo} docker://{ref} | jq -r '.manifests[].digest'); do "
                f"{skopeo} docker://{proxy.host}/bench/app@$d >/dev/null & done; wait"
            )
            check = [GATE, "check", f"docker://{ref}", "--no-tls-verify"]
            figures["serial loop"] = median_time(lambda: sh(serial), runs)
            figures["two-call floor"] = median_time(lambda: sh(two_calls), runs)
            figures["index + 16 children in parallel (shell)"] = median_time(lambda: sh(parallel), runs)
            figures["check cold (tag)"] = median_time(lambda: run(check, env), runs, setup=cold)
            figures["check cold (tag) --jobs 8"] = median_time(
                lambda: run([*check, "--jobs", "8"], env), runs, setup=cold
            )
            run([GATE, "check", f"docker://{pinned}", "--no-tls-verify"], env)
            proxy.clear()
            figures["check warm (digest-pinned)"] = median_time(
                lambda: run([GATE, "check", f"docker://{pinned}", "--no-tls-verify"], env), runs
            )
            figures["requests to the registry, warm"] = len(proxy.seen)
            figures["check warm (tag)"] = median_time(lambda: run(check, env), runs)

            # -- 4. --jobs 1 vs --jobs 8 on many references ---------------------------------------------------------
            listing = cache_home / "refs.txt"
            lines = []
            for i in range(refs_count):
                small = f.index([f.image(f.Platform("linux", "amd64"), layers=[f.layer(f"ref {i}")])])
                f.push(reg, f"bench/many{i}", "1", small)
                lines.append(f"docker://{proxy.host}/bench/many{i}:1")
            listing.write_text("\n".join(lines) + "\n")
            for jobs in (1, 8):
                audit = [
                    GATE,
                    "audit",
                    "--from-file",
                    str(listing),
                    "--no-tls-verify",
                    "--jobs",
                    str(jobs),
                    "-f",
                    "json",
                ]
                figures[f"audit {refs_count} refs --jobs {jobs}"] = median_time(
                    lambda audit=audit: run(audit, env), 1 if args.quick else 2, setup=cold
                )

    # -- 2. evaluation, in process ----------------------------------------------------------------------------
    sys.path.insert(0, str(ROOT))
    from gate.engine import Target, evaluate
    from gate.policy import Registry as Policies
    from gate.sources import open_source

    policies = Policies()
    profiles = sorted(policies.profiles)
    folder = Path(tempfile.mkdtemp(prefix="registry-gate-bench-eval-"))
    for entries in (100, 1_000, 10_000):
        path = folder / f"index-{entries}.json"
        path.write_bytes(wide_index(entries))

        def evaluate_all(path: Path = path) -> None:
            image = open_source(str(path))
            for name in profiles:
                evaluate(image, Target(None, None, name, None, "--profile"), policies)

        figures[f"evaluate {entries} entries x {len(profiles)} profiles (CPU)"] = cpu_time(evaluate_all, max(runs, 3))
        figures[f"evaluate {entries} entries: Python function calls"] = calls(evaluate_all)

        # with every child read from a folder (saved file + --children): the whole resolve path, no network
        kids = folder / f"children-{entries}"
        path = folder / f"index-{entries}-children.json"
        path.write_bytes(index_with_children(entries, kids))

        def resolve_all(path: Path = path, kids: Path = kids) -> None:
            image = open_source(str(path), children=str(kids))
            for name in profiles:
                evaluate(image, Target(None, None, name, None, "--profile"), policies)

        figures[f"resolve + evaluate {entries} children (CPU)"] = cpu_time(resolve_all, max(runs, 3))

    if args.instructions:
        for entries in (1_000, 10_000):
            figures[f"evaluate {entries} entries: instructions"] = instructions(entries)

    # -- 3. start-up --------------------------------------------------------------------------------------------
    run([GATE, "--version"], env)  # the skopeo version is cached after the first run
    figures["registry-gate --version"] = median_time(lambda: run([GATE, "--version"], env), 20)
    figures["python -c 'import typer'"] = median_time(lambda: run([PYTHON, "-c", "import typer"]), 20)
    figures["skopeo --version"] = median_time(lambda: run(["skopeo", "--version"]), 20)

    shutil.rmtree(cache_home, ignore_errors=True)
    shutil.rmtree(folder, ignore_errors=True)

    print(
        f"delay per request {args.delay * 1000:.0f} ms, {runs} runs each (median), {os.cpu_count()} CPUs, "
        f"load average at start {load:.1f}, at end {os.getloadavg()[0]:.1f}"
    )
    for name, value in figures.items():
        if name.startswith("requests") or name.endswith(("calls", "instructions")):
            print(f"  {name:<48} {value:8.0f}")
        else:
            print(f"  {name:<48} {value:8.3f} s")
    each = f"x {len(profiles)} profiles (CPU)"
    pairs = {
        "check cold / two-call floor": ("check cold (tag)", "two-call floor"),
        "shell, index + 16 children in parallel / two-call floor": (
            "index + 16 children in parallel (shell)",
            "two-call floor",
        ),
        "check cold --jobs 8 / two-call floor": ("check cold (tag) --jobs 8", "two-call floor"),
        "serial loop / check cold": ("serial loop", "check cold (tag)"),
        "serial loop / check cold --jobs 8": ("serial loop", "check cold (tag) --jobs 8"),
        "--version / import typer": ("registry-gate --version", "python -c 'import typer'"),
        "evaluate 1,000 / 100": (f"evaluate 1000 entries {each}", f"evaluate 100 entries {each}"),
        "evaluate 10,000 / 1,000": (f"evaluate 10000 entries {each}", f"evaluate 1000 entries {each}"),
        "evaluate 10,000 / 1,000 (function calls)": (
            "evaluate 10000 entries: Python function calls",
            "evaluate 1000 entries: Python function calls",
        ),
        "evaluate 10,000 / 1,000 (instructions)": (
            "evaluate 10000 entries: instructions",
            "evaluate 1000 entries: instructions",
        ),
        "resolve + evaluate 10,000 / 1,000 children": (
            "resolve + evaluate 10000 children (CPU)",
            "resolve + evaluate 1000 children (CPU)",
        ),
        "audit --jobs 1 / --jobs 8": (f"audit {refs_count} refs --jobs 1", f"audit {refs_count} refs --jobs 8"),
    }
    ratios = {name: figures[a] / figures[b] for name, (a, b) in pairs.items() if a in figures and b in figures}
    print("ratios")
    for name, value in ratios.items():
        print(f"  {name:<48} {value:8.2f}x")
    print(json.dumps({"figures": figures, "ratios": ratios}))


if __name__ == "__main__":
    main()
