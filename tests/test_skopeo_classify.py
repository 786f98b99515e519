"""skopeo's stderr is classified by its cause; numbers inside a tag or repository name are not HTTP statuses."""

from __future__ import annotations

import pytest

from gate.skopeo import classify


@pytest.mark.parametrize(
    ("stderr", "kind"),
    [
        ("reading manifest 1.403 in 127.0.0.1:5000/a/b: manifest unknown: manifest unknown", "not-found"),
        ("reading manifest 2.429 in 127.0.0.1:5000/a/b: manifest unknown: manifest unknown", "not-found"),
        (
            'pinging container registry 127.0.0.1:1: Get "https://127.0.0.1:1/v2/": dial tcp 127.0.0.1:1: '
            "connect: connection refused",
            "network",
        ),
        (
            "reading manifest 1 in 127.0.0.1:9/team/app-404: dial tcp 127.0.0.1:9: connect: connection refused",
            "network",
        ),
        ("invalid status code from registry 404 (Not Found)", "not-found"),
        ("Requesting bearer token: invalid status code from registry 403 (Forbidden)", "auth"),
        ("reading manifest t in h/a/b: unauthorized: authentication required", "auth"),
        ("reading manifest x in h/a: toomanyrequests: You have reached your pull rate limit", "rate-limit"),
        ("received unexpected HTTP status: 500 Internal Server Error", "server"),
        ("unknown: 502 Bad Gateway", "server"),
        ('Get "https://h/v2/": x509: certificate signed by unknown authority', "tls"),
        ('Error parsing image name "docker://-foo": invalid reference format', "bad-reference"),
        # the format string is in skopeo 1.9.3's binary (containers/image's 4 MiB manifest limit)
        ("reading manifest 1 in h/a/b: exceeded maximum allowed size of 4194304 bytes", "too-large"),
    ],
)
def test_classify(stderr: str, kind: str) -> None:
    assert classify(stderr)[0] == kind
