"""Seed roc-validator's HTTP cache with the RO-Crate JSON-LD context, offline.

Run with the validator's own Python (``.venv-roc/bin/python tools/roc_cache.py CACHE``): the
context document shipped inside the ``rocrate`` package (its newest, whose terms include
every term of RO-Crate 1.1) is stored as the answer for the 1.1 context URL, so that
``rocrate-validator validate --offline --cache-path CACHE`` needs no network.
"""

import importlib.resources
import io
import sys

from requests.adapters import HTTPAdapter
from requests_cache import CachedSession
from urllib3.response import HTTPResponse

URLS = ("https://w3id.org/ro/crate/1.1/context",)


class _Local(HTTPAdapter):
    """Answers every request with the context document: nothing goes to the network."""

    def __init__(self, body: bytes) -> None:
        super().__init__()
        self.body = body

    def send(self, request, **_kwargs):  # type: ignore[no-untyped-def, override]
        raw = HTTPResponse(body=io.BytesIO(self.body), status=200, preload_content=False,
                           headers={"Content-Type": "application/ld+json"},
                           request_url=request.url)
        return self.build_response(request, raw)


def main(cache_path: str) -> None:
    body = importlib.resources.files("rocrate").joinpath("data/ro-crate.jsonld").read_bytes()
    session = CachedSession(cache_name=cache_path, backend="sqlite", expire_after=-1,
                            allowable_methods=("GET",), allowable_codes=(200, 302, 404))
    session.mount("https://", _Local(body))
    session.mount("http://", _Local(body))
    for url in URLS:
        for accept in ("application/ld+json, application/json", None):
            headers = {"Accept": accept} if accept else {}
            session.get(url, headers=headers).raise_for_status()
    session.close()


if __name__ == "__main__":
    main(sys.argv[1])
