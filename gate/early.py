"""The import-light half of the skopeo adapter: how a skopeo process is started, waited for and stopped, with the
standard modules os, select and _thread only.

`registry-gate check docker://HOST/REPO:TAG` knows its first skopeo call from the command line alone. Starting it
here, 20 ms after Python starts, instead of after typer, dataclasses, re and subprocess have loaded (80 ms, more
on a busy machine), lets the registry answer while they load. `gate/skopeo.py`, which decides every skopeo call,
takes the started process over when it makes the call with the same argv (`take`), and starts every other call
through `Started` as well, so that the end of a run, however it ends, can stop them all (`stop_all`). The flags
and environment of a call are built here, so that both halves build them alike.
"""

from __future__ import annotations

import _thread
import os
import select

SHORT_CALLS = ("inspect", "list-tags", "--version")
USERNAME_ENV = "REGISTRY_GATE_USERNAME"
PASSWORD_ENV = "REGISTRY_GATE_PASSWORD"
"""Credentials from the environment: gate/skopeo.py hands them to skopeo through a private auth file."""


def registry_flags(tls_verify: bool | None, authfile: str | None, cert_dir: str | None, prefix: str = "") -> list[str]:
    """`--tls-verify`, `--authfile`, `--cert-dir` for one side (`src-`/`dest-` in copy)."""
    flags: list[str] = []
    if tls_verify is not None:
        flags.append(f"--{prefix}tls-verify={'true' if tls_verify else 'false'}")
    if authfile:
        flags.append(f"--{prefix}authfile={authfile}")
    if cert_dir:
        flags.append(f"--{prefix}cert-dir={cert_dir}")
    return flags


def inspect_argv(ref: str, flags: list[str], binary: str = "skopeo") -> list[str]:
    """The argv of `skopeo inspect --raw docker://REF`."""
    return [binary, "inspect", "--raw", *flags, f"docker://{ref}"]


def go_env(argv: list[str]) -> dict[str, str] | None:
    """The environment for one call: short metadata calls run on one Go thread without the garbage collector.

    A cold check starts one `skopeo inspect --raw` per child, 16 at once on two CPUs, where CPU time is the limit.
    Each spends much of it collecting garbage its own start-up made and in idle threads looking for work: 16
    calls at once took 372 ms of CPU as they come, 357 ms with GOGC=off and 305 ms with GOMAXPROCS=1 as well
    (skopeo 1.9.3, `perf stat -r 8`). Such a call holds one manifest (the gate refuses more than 4.5 MiB), so its
    heap stays small; GOMEMLIMIT (Go 1.19+) brings the collector back should it not. `copy` moves layers and keeps
    the defaults, as does any GOGC or GOMAXPROCS the user set.
    """
    if len(argv) < 2 or argv[1] not in SHORT_CALLS or "GOGC" in os.environ or "GOMAXPROCS" in os.environ:
        return None
    return {**os.environ, "GOGC": "off", "GOMAXPROCS": "1", "GOMEMLIMIT": os.environ.get("GOMEMLIMIT", "256MiB")}


_SIGKILL = 9
_SIGPIPE = 13  # the same numbers on every Linux architecture; the signal module costs 5 ms to load
_LOCK = _thread.allocate_lock()
_LIVE: set[Started] = set()
"""Every skopeo process started and not yet reaped, so that the end of a run can stop them all (`stop_all`)."""
_ending = False


def _inherited_fds() -> list[int]:
    """Descriptors above 2 that a child would inherit: posix_spawn has no close_fds before Python 3.13, and a
    caller's pipe held open by a skopeo process would keep that caller waiting."""
    fds: list[int] = []
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return fds  # no /proc: nothing to go by
    for name in names:
        fd = int(name)
        try:
            if fd > 2 and os.get_inheritable(fd):
                fds.append(fd)
        except OSError:
            continue  # the listing's own descriptor, closed by now
    return fds


class Started:
    """A skopeo process with its stdout and stderr on pipes: `os.posix_spawnp` (no shell, no fork), stdin from
    /dev/null, only descriptors 0-2 inherited, SIGPIPE back to its default."""

    def __init__(self, argv: list[str]) -> None:
        if _ending:
            raise OSError("the run is ending: no new skopeo process")
        out_r, out_w = os.pipe()  # all four close-on-exec; the child gets its stdout and stderr through dup2
        err_r, err_w = os.pipe()
        actions: list[tuple[int, ...] | tuple[int, int, str, int, int]] = [
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_DUP2, out_w, 1),
            (os.POSIX_SPAWN_DUP2, err_w, 2),
        ]
        actions += [(os.POSIX_SPAWN_CLOSE, fd) for fd in _inherited_fds()]
        try:
            with _LOCK:
                self.pid = os.posix_spawnp(
                    argv[0], argv, go_env(argv) or os.environ, file_actions=actions, setsigdef=(_SIGPIPE,)
                )
                _LIVE.add(self)
        except OSError:
            os.close(out_r)
            os.close(err_r)
            raise
        finally:
            os.close(out_w)
            os.close(err_w)
        self.fds = [out_r, err_r]
        self.read: dict[int, bytearray] = {out_r: bytearray(), err_r: bytearray()}

    def wait(self, timeout: float) -> tuple[int, bytes, bytes] | None:
        """(exit status, stdout, stderr), or None when `timeout` seconds pass first (the process is then killed)."""
        import time

        deadline = time.monotonic() + timeout
        poll = select.poll()
        for fd in self.fds:
            poll.register(fd, select.POLLIN)
        reading = set(self.fds)
        while reading:
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                return None
            for fd, _ in poll.poll(left * 1000):
                chunk = os.read(fd, 65536)
                if chunk:
                    self.read[fd] += chunk
                else:
                    poll.unregister(fd)
                    reading.discard(fd)
        out, err = (bytes(self.read[fd]) for fd in self.fds)
        self._close()
        pause = 0.001
        while (status := self._reap(os.WNOHANG)) is None:  # it closed its output: it is about to exit, or hangs
            if time.monotonic() >= deadline:
                self.kill()
                return None
            time.sleep(pause)
            pause = min(pause * 2, 0.05)
        return os.waitstatus_to_exitcode(status), out, err

    def kill(self) -> None:
        """Kill and reap it (from the thread that owns it)."""
        with _LOCK:
            if self in _LIVE:  # not reaped yet: the pid is still ours
                os.kill(self.pid, _SIGKILL)
        self._reap(0)
        self._close()

    def _reap(self, flags: int) -> int | None:
        with _LOCK:
            if self not in _LIVE:  # reaped already
                return None if flags else 0
            pid, status = os.waitpid(self.pid, flags)
            if pid == 0:
                return None
            _LIVE.discard(self)
            return status

    def _close(self) -> None:
        while self.fds:
            os.close(self.fds.pop())


_STARTED: dict[tuple[str, ...], Started] = {}


def start(argv: list[str]) -> None:
    """Start `argv` now for a call the run is about to make. Failing to start is not an error here: the real call
    will meet the same failure and report it."""
    try:
        _STARTED[tuple(argv)] = Started(argv)
    except OSError:
        return


def take(argv: list[str]) -> Started | None:
    """The process started for exactly this argv, if any (each is taken once)."""
    return _STARTED.pop(tuple(argv), None) if _STARTED else None


def stop_all() -> None:
    """The run is over (done, failed, or signalled): start no more skopeo processes and kill those still running.

    A call nobody took is killed and reaped here; one a thread is waiting for is only killed, and that thread reaps
    it and closes its pipes (its wait returns at once, with the kill as exit status).
    """
    global _ending
    _ending = True
    while _STARTED:
        _STARTED.popitem()[1].kill()
    with _LOCK:
        for proc in _LIVE:
            os.kill(proc.pid, _SIGKILL)


def stop_on_signals() -> None:
    """On SIGTERM or SIGHUP, stop every skopeo process before dying of the signal, as the run would have."""
    import signal

    def stop(signum: int, _frame: object) -> None:
        stop_all()
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, stop)
