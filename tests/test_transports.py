"""download-url against a local HTTP server, and sharing over SSH to 127.0.0.1."""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import socket
import subprocess
import tarfile
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import annex, git, rr


@pytest.fixture
def web(tmp_path):
    """An HTTP server on 127.0.0.1 serving a text file and a .tgz archive."""
    root = tmp_path / "www"
    (root / "pkg").mkdir(parents=True)
    (root / "hello.txt").write_text("hello web\n")
    (root / "pkg" / "a.txt").write_text("a\n")
    (root / "pkg" / "b.txt").write_text("b\n")
    with tarfile.open(root / "pkg.tgz", "w:gz") as tf:
        tf.add(root / "pkg", arcname="pkg")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", root
    server.shutdown()


def test_download_url_registers_source(ds, web):
    base, _ = web
    rr("download-url", "-m", "Get greeting", f"{base}/hello.txt", cwd=ds)
    assert (ds / "hello.txt").read_text() == "hello web\n"
    assert git("log", "-1", "--format=%s", cwd=ds).strip() == "Get greeting"
    assert f"{base}/hello.txt" in annex("whereis", "hello.txt", cwd=ds)
    annex("drop", "hello.txt", cwd=ds)  # the web is a copy: drop is allowed
    rr("get", "hello.txt", cwd=ds)
    assert (ds / "hello.txt").read_text() == "hello web\n"


def test_download_archive_is_source_of_extracted_files(ds, web):
    base, _ = web
    rr("download-url", "--archive", "--path", "data/", f"{base}/pkg.tgz", cwd=ds)
    a = ds / "data" / "pkg" / "pkg" / "a.txt"
    assert a.read_text() == "a\n" and (ds / "data" / "pkg.tgz").is_symlink()
    assert git("status", "--porcelain", cwd=ds) == ""
    annex("drop", "data/pkg.tgz", "data/pkg/pkg/a.txt", cwd=ds)
    assert not a.exists()
    rr("get", "data/pkg/pkg/a.txt", cwd=ds)  # the archive is fetched again and unpacked
    assert a.read_text() == "a\n"


def test_download_errors_leave_dataset_clean(ds, web):
    base, _ = web
    proc = rr("download-url", f"{base}/missing.txt", cwd=ds, check=False)
    assert proc.returncode == 1 and proc.stderr.startswith("rr: error: download of")
    assert git("status", "--porcelain", cwd=ds) == ""
    proc = rr("download-url", "gopher://x/y", cwd=ds, check=False)
    assert proc.returncode == 2 and "not a downloadable URL" in proc.stderr


# --- SSH ------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    """sshd on 127.0.0.1 only, root login by a key made for the test."""
    sshd_bin = shutil.which("sshd") or "/usr/sbin/sshd"
    if not os.path.exists(sshd_bin):
        pytest.skip("openssh-server is not installed (tools/setup.sh installs it)")
    if os.getuid() != 0:
        pytest.skip("sshd for root login needs root")
    d = tmp_path_factory.mktemp("sshd")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "host")],
                   check=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / "client")],
                   check=True)
    (d / "authorized_keys").write_text((d / "client.pub").read_text())
    os.chmod(d, 0o700)
    port = _free_port()
    bindir = str(Path(shutil.which("git-annex") or "/usr/bin/git-annex").parent)
    (d / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d / 'host'}\n"
        f"AuthorizedKeysFile {d / 'authorized_keys'}\nPermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\nStrictModes no\nUsePAM no\n"
        f"PidFile {d / 'sshd.pid'}\nSetEnv PATH={bindir}:/usr/local/bin:/usr/bin:/bin\n")
    os.makedirs("/run/sshd", exist_ok=True)
    proc = subprocess.Popen([sshd_bin, "-D", "-e", "-f", str(d / "sshd_config")],
                            stderr=open(d / "sshd.log", "w"))
    ssh_cmd = (f"ssh -p {port} -i {d / 'client'} -o StrictHostKeyChecking=no "
               f"-o UserKnownHostsFile=/dev/null -o BatchMode=yes -o LogLevel=ERROR")
    env = {"GIT_SSH_COMMAND": ssh_cmd}
    for _ in range(50):
        ok = subprocess.run([*ssh_cmd.split(), "root@127.0.0.1", "true"],
                            capture_output=True).returncode == 0
        if ok:
            break
        time.sleep(0.1)
    else:
        proc.terminate()
        pytest.skip("sshd did not start: " + (d / "sshd.log").read_text()[-300:])
    old = os.environ.get("GIT_SSH_COMMAND")
    os.environ.update(env)
    # git-annex runs ssh itself (with connection caching): it takes its options from config
    opts = ssh_cmd.split(" ", 1)[1].replace(f"-p {port} ", "")
    subprocess.run(["git", "config", "--global", "annex.ssh-options", opts], check=True)
    yield port
    subprocess.run(["git", "config", "--global", "--unset", "annex.ssh-options"])
    if old is None:
        os.environ.pop("GIT_SSH_COMMAND", None)
    else:
        os.environ["GIT_SSH_COMMAND"] = old
    proc.terminate()


@pytest.mark.slow
def test_clone_get_push_over_ssh(sshd, tmp_path):
    src = tmp_path / "src"
    rr("create", str(src))
    (src / "big.dat").write_bytes(b"over ssh" * 500)
    rr("save", "-m", "data", cwd=src)
    url = f"ssh://root@127.0.0.1:{sshd}{src}"
    rr("clone", url, str(tmp_path / "viassh"))
    clone = tmp_path / "viassh"
    rr("get", "big.dat", cwd=clone)
    assert (clone / "big.dat").read_bytes() == b"over ssh" * 500
    store = tmp_path / "store.git"
    subprocess.run(["git", "init", "-q", "--bare", str(store)], check=True)
    subprocess.run(["git", "annex", "init", "-q"], cwd=store, check=True)
    rr("siblings", "add", "remote", f"ssh://root@127.0.0.1:{sshd}{store}", cwd=clone)
    (clone / "more.dat").write_bytes(b"pushed" * 300)
    rr("save", "-m", "more", cwd=clone)
    rr("push", "--to", "remote", cwd=clone)
    assert "more" in git("log", "-1", "--format=%s", cwd=store)
    assert "remote" in annex("whereis", "more.dat", cwd=clone)
