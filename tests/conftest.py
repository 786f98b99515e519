"""Session-wide real registries. Nothing is skipped: a missing docker-registry is an error."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # `import registry, factory` in any import mode

from registry import Registry, unique_repo


def _serve(*, auth: bool = False, tls: bool = False) -> Iterator[Registry]:
    reg = Registry(auth=auth, tls=tls).start()
    try:
        yield reg
    finally:
        reg.stop()


@pytest.fixture(scope="session")
def registry() -> Iterator[Registry]:
    """Plain-HTTP distribution registry (skopeo needs --tls-verify=false)."""
    yield from _serve()


@pytest.fixture(scope="session")
def auth_registry() -> Iterator[Registry]:
    """htpasswd (bcrypt) basic-auth registry over plain HTTP; see .user / .password / .creds."""
    yield from _serve(auth=True)


@pytest.fixture(scope="session")
def tls_registry() -> Iterator[Registry]:
    """HTTPS registry with a self-signed cert for 127.0.0.1; trust it via .cert_dir / .cafile."""
    yield from _serve(tls=True)


@pytest.fixture
def repo() -> str:
    """A fresh repository name for this test (registries are shared across the session)."""
    return unique_repo()


@pytest.fixture
def new_repo() -> Callable[[str], str]:
    """Factory for several fresh repository names in one test: new_repo("mirror")."""
    return unique_repo
