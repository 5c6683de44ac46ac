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


@pytest.mark.slow
def test_an_installed_subdataset_with_an_absolute_origin_gets_and_installs_after_a_move(
        tmp_path):
    old = tmp_path / "X"
    old.mkdir()
    src = old / "src"
    rr("create", str(src), cwd=old)
    (src / "d.dat").write_text("data\n")
    rr("create", str(src / "inner"), cwd=src)
    (src / "inner" / "i.dat").write_text("inner\n")
    rr("save", "-m", "content", cwd=src)
    rr("create", str(old / "super"), cwd=old)
    rr("clone", "-d", ".", "../src", "sub", cwd=old / "super")
    assert git("remote", "get-url", "origin", cwd=old / "super" / "sub").strip() == str(src)
    new = tmp_path / "Y"
    old.rename(new)  # the project moved: the subdataset's absolute origin is gone
    sup = new / "super"
    rr("get", "sub/d.dat", cwd=sup)
    assert (sup / "sub" / "d.dat").read_text() == "data\n"
    rr("get", "-r", ".", cwd=sup)
    assert (sup / "sub" / "inner" / "i.dat").read_text() == "inner\n"
