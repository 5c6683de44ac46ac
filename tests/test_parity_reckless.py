"""rr clone --reckless auto|ephemeral|shared-MODE, as DataLad's, and what a reckless clone
may do: an ephemeral clone's annex is its origin's, so nothing there is ever dropped."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from tests.conftest import annex, git, needs_datalad, one_error_line, rr, rr_in


def _binary(path: Path, n: int = 3000, seed: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(bytes((i * 7 + seed) % 251 for i in range(n)))


@pytest.fixture
def origin(ds):
    """A dataset with one annexed file whose only copy is its own."""
    _binary(ds / "big.bin")
    rr("save", "-m", "big", cwd=ds)
    return ds


def _config(root: Path, key: str) -> str:
    return subprocess.run(["git", "config", "--get", key], cwd=root, capture_output=True,
                          text=True).stdout.strip()


def _trust_here(root: Path) -> str:
    out = annex("info", "--fast", "here", cwd=root)
    return next(line.split(":", 1)[1].strip() for line in out.splitlines()
                if line.startswith("trust:"))


def _origin_intact(origin: Path) -> None:
    data = (origin / "big.bin").read_bytes()
    assert len(data) == 3000
    assert "fsck big.bin ok" in annex("fsck", "--fast", "big.bin", cwd=origin).replace("\n", " ")


@pytest.mark.slow
def test_ephemeral_clone_links_the_origins_annex_private_and_dead(origin, tmp_path):
    res = rr("clone", "--reckless", "ephemeral", "--json", str(origin), str(tmp_path / "eph"))
    assert '"reckless": "ephemeral"' in res.stdout
    eph = tmp_path / "eph"
    link = eph / ".git" / "annex"
    # as DataLad's test_ephemeral checks a clone: the whole annex is the origin's
    assert link.is_symlink() and link.resolve().samefile(origin / ".git" / "annex")
    assert _config(eph, "annex.private") == "true"
    assert _config(eph, "datalad.clone.reckless") == "ephemeral"
    assert _config(eph, "remote.origin.annex-ignore") == "true"
    assert (eph / "big.bin").read_bytes() == (origin / "big.bin").read_bytes()
    assert _trust_here(eph) == "dead"  # never counted as a copy, by anyone
    # the origin knows nothing of it
    assert _config(eph, "annex.uuid") not in git("cat-file", "blob", "git-annex:uuid.log",
                                                 cwd=origin)
    # DataLad's test_ephemeral, case 2: a file:// URL is local too
    rr("clone", "--reckless", "ephemeral", f"file://{origin}", str(tmp_path / "eph2"))
    assert (tmp_path / "eph2" / ".git" / "annex").resolve().samefile(origin / ".git" / "annex")


@pytest.mark.slow
def test_ephemeral_clone_never_drops_the_origins_copy(origin, tmp_path):
    eph = tmp_path / "eph"
    rr("clone", "--reckless", "ephemeral", str(origin), str(eph))
    for args in (["big.bin"], ["--force", "big.bin"], ["--reckless", "kill", "big.bin"],
                 ["--reckless", "availability", "."], ["--what", "allkeys"],
                 ["-r", "."], ["--json", "big.bin"]):
        res = rr_in("drop", *args, cwd=eph)
        assert res.exit_code == 1, (args, res.output)
        line = one_error_line(res.stderr)
        assert "refusing to drop content" in line and "ephemeral clone" in line
        assert "nothing was dropped" in line
    _origin_intact(origin)


@pytest.mark.slow
def test_ephemeral_subdataset_uninstalled_or_removed_keeps_the_origins_content(origin, tmp_path):
    sup = tmp_path / "sup"
    rr("create", str(sup))
    rr("clone", "-d", ".", "--reckless", "ephemeral", str(origin), "e1", cwd=sup)
    rr("clone", "-d", ".", "--reckless", "ephemeral", str(origin), "e2", cwd=sup)
    # a drop that would reach into one is refused before anything is dropped
    res = rr_in("drop", "e1/big.bin", cwd=sup)
    assert res.exit_code == 1 and "e1" in one_error_line(res.stderr)
    rr("drop", "--what", "datasets", "e1", cwd=sup)
    assert not (sup / "e1" / ".git").exists()
    _origin_intact(origin)
    rr("remove", "e2", cwd=sup)
    assert not (sup / "e2").exists()
    _origin_intact(origin)


@pytest.mark.slow
def test_run_in_an_ephemeral_clone_rewrites_an_annexed_output_origin_untouched(origin, tmp_path):
    eph = tmp_path / "eph"
    rr("clone", "--reckless", "ephemeral", str(origin), str(eph))
    rr("run", "-o", "big.bin", "head -c 100 /dev/zero > big.bin", cwd=eph)
    assert (eph / "big.bin").read_bytes() == b"\0" * 100
    _origin_intact(origin)
    assert git("status", "--porcelain", cwd=eph) == ""


def test_ephemeral_needs_a_local_non_bare_origin(origin, tmp_path):
    res = rr_in("clone", "--reckless", "ephemeral", "https://example.invalid/ds.git",
                str(tmp_path / "a"))
    assert res.exit_code == 1
    assert "cannot make an ephemeral clone" in one_error_line(res.stderr)
    assert "not local" in res.stderr
    bare = tmp_path / "bare.git"
    git("clone", "-q", "--bare", str(origin), str(bare), cwd=tmp_path)
    res = rr_in("clone", "--reckless", "ephemeral", str(bare), str(tmp_path / "b"))
    assert res.exit_code == 1 and "bare repository" in one_error_line(res.stderr)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_unknown_reckless_mode_is_a_usage_error(origin, tmp_path):
    for mode in ("sloppy", "shared-nobody", "shared-", ""):
        res = rr_in("clone", "--reckless", mode, str(origin), str(tmp_path / "x"))
        assert res.exit_code == 2, (mode, res.output)
        assert "--reckless must be auto, ephemeral or shared-MODE" in one_error_line(res.stderr)
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_reckless_auto_hardlinks_content_and_untrusts_the_clone(origin, tmp_path):
    clone = tmp_path / "auto"
    rr("clone", "--reckless", "auto", str(origin), str(clone))
    assert _config(clone, "annex.hardlink") == "true"
    assert _config(clone, "datalad.clone.reckless") == "auto"
    assert _trust_here(clone) == "untrusted"
    rr("get", "big.bin", cwd=clone)
    assert os.stat(clone / "big.bin").st_ino == os.stat(origin / "big.bin").st_ino
    # an untrusted copy is no copy: the origin still cannot drop its own
    res = rr_in("drop", "big.bin", cwd=origin)
    assert res.exit_code == 1
    _origin_intact(origin)


@pytest.mark.slow
def test_reckless_shared_group(origin, tmp_path):
    clone = tmp_path / "shared"
    rr("clone", "--reckless", "shared-group", str(origin), str(clone))
    assert _config(clone, "core.sharedRepository") in ("1", "group")
    assert _config(clone, "datalad.clone.reckless") == "shared-group"
    assert _trust_here(clone) == "untrusted"
    assert os.stat(clone / ".git").st_mode & 0o2070 == 0o2070  # setgid, g+rwx
    # DataLad's test_reckless: git-annex's files are group-writable too
    assert os.stat(clone / ".git" / "annex" / "index.lck").st_mode & stat.S_IWGRP


@pytest.mark.slow
def test_subdatasets_installed_later_inherit_the_mode(origin, tmp_path):
    sup = tmp_path / "sup"
    rr("create", str(sup))
    rr("clone", "-d", ".", str(origin), "data", cwd=sup)
    eph = tmp_path / "sup-eph"
    rr("clone", "--reckless", "ephemeral", str(sup), str(eph))
    rr("get", "data/big.bin", cwd=eph)
    link = eph / "data" / ".git" / "annex"
    assert link.is_symlink() and link.resolve().samefile(origin / ".git" / "annex")
    assert _config(eph / "data", "datalad.clone.reckless") == "ephemeral"
    assert _trust_here(eph / "data") == "dead"
    auto = tmp_path / "sup-auto"
    rr("clone", "--reckless", "auto", str(sup), str(auto))
    rr("get", "-n", "data", cwd=auto)
    assert _config(auto / "data", "annex.hardlink") == "true"
    assert _trust_here(auto / "data") == "untrusted"
    # -d without --reckless: the clone follows the superdataset it is registered in
    rr("clone", "-d", ".", str(origin), "more", cwd=eph)
    assert (eph / "more" / ".git" / "annex").is_symlink()


@pytest.mark.slow
def test_a_committed_reckless_setting_is_not_followed(origin, tmp_path):
    """A dataset does not choose how it is set up on this machine: only .git/config counts."""
    sup = tmp_path / "sup"
    rr("create", str(sup))
    rr("clone", "-d", ".", str(origin), "data", cwd=sup)
    rr("clone", "-d", ".", str(origin), "data2", cwd=sup)
    git("config", "-f", ".datalad/config", "datalad.clone.reckless", "ephemeral", cwd=sup)
    rr("save", "-m", "hostile", cwd=sup)
    clone = tmp_path / "clone"
    rr("clone", str(sup), str(clone))
    rr("get", "-n", "data", cwd=clone)
    assert not (clone / "data" / ".git" / "annex").is_symlink()
    assert _config(clone / "data", "datalad.clone.reckless") == ""
    # the user's own setting (.git/config) is followed
    git("config", "datalad.clone.reckless", "auto", cwd=clone)
    rr("get", "-n", "data2", cwd=clone)
    assert _config(clone / "data2", "annex.hardlink") == "true"
    git("config", "datalad.clone.reckless", "careless", cwd=clone)
    res = rr_in("clone", "-d", ".", str(origin), "data3", cwd=clone)
    assert res.exit_code == 1 and "not a reckless mode" in one_error_line(res.stderr)


@needs_datalad
@pytest.mark.slow
def test_mixed_with_datalad_both_ways(origin, tmp_path):
    # rr's ephemeral clone: DataLad refuses to drop there too, and saves into it
    eph = tmp_path / "rr-eph"
    rr("clone", "--reckless", "ephemeral", str(origin), str(eph))
    done = subprocess.run(["datalad", "drop", "big.bin"], cwd=eph, capture_output=True,
                          text=True)
    assert done.returncode != 0 and "symlinked annex" in done.stdout + done.stderr
    _binary(eph / "new.bin", seed=3)
    subprocess.run(["datalad", "save", "-m", "new"], cwd=eph, check=True, capture_output=True)
    assert (eph / "new.bin").read_bytes()[:3] == bytes([3, 10, 17])
    # push back: the clone's availability is not propagated (private, as DataLad's test)
    git("config", "receive.denyCurrentBranch", "updateInstead", cwd=origin)
    rr("push", "--to", "origin", "--data", "nothing", cwd=eph)
    assert _config(eph, "annex.uuid") not in git("cat-file", "blob", "git-annex:uuid.log",
                                                 cwd=origin)
    assert (origin / "new.bin").read_bytes() == (eph / "new.bin").read_bytes()
    # DataLad's ephemeral clone: rr refuses to drop there, and rr run works in it
    dl = tmp_path / "dl-eph"
    subprocess.run(["datalad", "clone", "--reckless", "ephemeral", str(origin), str(dl)],
                   check=True, capture_output=True)
    res = rr_in("drop", "big.bin", cwd=dl)
    assert res.exit_code == 1 and "ephemeral clone" in one_error_line(res.stderr)
    rr("run", "-o", "big.bin", "head -c 10 /dev/zero > big.bin", cwd=dl)
    _origin_intact(origin)


@pytest.mark.slow
def test_get_reckless_sets_up_the_subdatasets_it_installs(origin, tmp_path):
    sup = tmp_path / "sup"
    rr("create", str(sup))
    rr("clone", "-d", ".", str(origin), "data", cwd=sup)
    clone = tmp_path / "clone"
    rr("clone", str(sup), str(clone))
    res = rr_in("get", "--reckless", "careless", "data", cwd=clone)
    assert res.exit_code == 2 and "--reckless must be" in one_error_line(res.stderr)
    assert not (clone / "data" / ".git").exists()
    rr("get", "--reckless", "ephemeral", "data/big.bin", cwd=clone)
    link = clone / "data" / ".git" / "annex"
    assert link.is_symlink() and link.resolve().samefile(origin / ".git" / "annex")
    assert _config(clone, "datalad.clone.reckless") == ""  # the superdataset stays as it was
    res = rr_in("drop", "-r", ".", cwd=clone)
    assert res.exit_code == 1 and "data" in one_error_line(res.stderr)
    _origin_intact(origin)


@needs_datalad
@pytest.mark.slow
def test_datalad_installs_by_rrs_setting_and_rr_by_datalads(origin, tmp_path):
    sup = tmp_path / "sup"
    rr("create", str(sup))
    rr("clone", "-d", ".", str(origin), "data", cwd=sup)
    eph = tmp_path / "rr-eph"
    rr("clone", "--reckless", "ephemeral", str(sup), str(eph))
    subprocess.run(["datalad", "get", "-n", "data"], cwd=eph, check=True, capture_output=True)
    assert (eph / "data" / ".git" / "annex").resolve().samefile(origin / ".git" / "annex")
    auto = tmp_path / "dl-auto"
    subprocess.run(["datalad", "clone", "--reckless", "auto", str(sup), str(auto)], check=True,
                   capture_output=True)
    rr("get", "-n", "data", cwd=auto)
    assert _config(auto / "data", "annex.hardlink") == "true"
    assert _trust_here(auto / "data") == "untrusted"


@pytest.mark.slow
def test_an_annex_whose_objects_are_linked_elsewhere_never_drops(origin, tmp_path):
    """The other layout (only .git/annex/objects a symlink, as some tools make it): the same."""
    clone = tmp_path / "clone"
    rr("clone", str(origin), str(clone))
    objects = clone / ".git" / "annex" / "objects"
    if objects.exists():
        objects.rmdir()
    objects.symlink_to(origin / ".git" / "annex" / "objects", target_is_directory=True)
    assert (clone / "big.bin").exists()
    res = rr_in("drop", "--force", "big.bin", cwd=clone)
    assert res.exit_code == 1 and "refusing to drop content" in one_error_line(res.stderr)
    _origin_intact(origin)
