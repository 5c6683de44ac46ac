"""Issue 20 item 8: parity gaps found with DataLad's own tests (containers-add --url file://
registers the URL; a subdataset whose origin is an absolute path survives a move)."""

from __future__ import annotations

import os
import shutil

import pytest

from .conftest import annex, git, rr


@pytest.mark.slow
def test_containers_add_file_url_registers_it_and_a_clone_gets_the_image_from_it(ds,
                                                                                  tmp_path):
    image = tmp_path / "img.sif"
    image.write_bytes(os.urandom(5000))
    rr("containers-add", "c1", "--url", image.as_uri(), cwd=ds)
    rel = ".datalad/environments/c1/image"
    assert image.as_uri() in annex("whereis", rel, cwd=ds)
    clone = tmp_path / "clone"
    rr("clone", str(ds), str(clone), cwd=tmp_path)
    shutil.rmtree(ds, onerror=lambda f, p, e: (os.chmod(os.path.dirname(p), 0o755), f(p)))
    git("config", "annex.security.allowed-url-schemes", "http https ftp file", cwd=clone)
    rr("get", rel, cwd=clone)
    assert (clone / rel).read_bytes() == image.read_bytes()
