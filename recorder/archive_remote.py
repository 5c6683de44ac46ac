"""``git-annex-remote-rrarchive``: a git-annex external special remote that serves files
extracted from an archive that is itself in the annex (``rr download-url --archive``).

Each extracted file has the URL ``rr-archive:<archive key>#<member>`` registered; to retrieve
it the remote gets the archive's content (downloading it again from its own URL if needed)
and extracts the member.  Read-only: it never stores or removes anything.
"""

from __future__ import annotations

import os
import re
import sys
import tarfile
import zipfile
from urllib.parse import quote, unquote

from . import proc

PREFIX = "rr-archive:"


def member_url(archive_key: str, member: str) -> str:
    return f"{PREFIX}{archive_key}#{quote(member)}"


class Remote:
    def __init__(self) -> None:
        self.inp = sys.stdin
        self.out = sys.stdout

    def send(self, *words: str) -> None:
        self.out.write(" ".join(words) + "\n")
        self.out.flush()

    def ask(self, *words: str) -> str:
        self.send(*words)
        return self.inp.readline().rstrip("\n")

    def urls(self, key: str) -> list[str]:
        self.send("GETURLS", key, PREFIX)
        found = []
        while True:
            line = self.inp.readline().rstrip("\n")
            if not line.startswith("VALUE"):
                break
            value = line[6:] if len(line) > 6 else ""
            if not value:
                break
            found.append(value)
        return found

    def retrieve(self, key: str, dest: str) -> None:
        for url in self.urls(key):
            archive_key, _, member = url[len(PREFIX):].partition("#")
            path = _content(archive_key)
            if path is None:
                continue
            _extract_member(path, unquote(member), dest)
            return
        raise RuntimeError("no archive holding this file could be obtained")

    def loop(self) -> None:
        self.send("VERSION", "1")
        for raw in self.inp:
            words = raw.rstrip("\n").split(" ")
            cmd = words[0]
            try:
                if cmd == "INITREMOTE":
                    self.send("INITREMOTE-SUCCESS")
                elif cmd == "PREPARE":
                    self.send("PREPARE-SUCCESS")
                elif cmd == "EXTENSIONS":
                    self.send("EXTENSIONS")
                elif cmd == "CLAIMURL":
                    self.send("CLAIMURL-SUCCESS" if words[1].startswith(PREFIX)
                              else "CLAIMURL-FAILURE")
                elif cmd == "CHECKURL":
                    self.send("CHECKURL-CONTENTS", "UNKNOWN")
                elif cmd == "TRANSFER" and words[1] == "RETRIEVE":
                    key, dest = words[2], " ".join(words[3:])
                    try:
                        self.retrieve(key, dest)
                        self.send("TRANSFER-SUCCESS", "RETRIEVE", key)
                    except Exception as exc:  # noqa: BLE001 - reported to git-annex
                        self.send("TRANSFER-FAILURE", "RETRIEVE", key, str(exc))
                elif cmd == "TRANSFER":
                    self.send("TRANSFER-FAILURE", words[1], words[2], "read-only remote")
                elif cmd == "CHECKPRESENT":
                    key = words[1]
                    self.send("CHECKPRESENT-SUCCESS" if self.urls(key) else
                              "CHECKPRESENT-FAILURE", key)
                elif cmd == "REMOVE":
                    self.send("REMOVE-FAILURE", words[1], "read-only remote")
                elif cmd == "GETAVAILABILITY":
                    self.send("AVAILABILITY", "LOCAL")
                elif cmd == "GETCOST":
                    self.send("COST", "500")
                else:
                    self.send("UNSUPPORTED-REQUEST")
            except BrokenPipeError:
                return


def _annex(*args: str) -> str:
    """stdout of ``git annex ARGS`` (run through proc: stdin is not git-annex's protocol pipe)."""
    result = proc.capture(["git", "annex", *args], check=False)
    return result.stdout.decode("utf-8", "surrogateescape")


_KEY_RE = re.compile(r"^[A-Za-z0-9]+-[A-Za-z0-9_.=+,-]*$")


def _content(key: str) -> str | None:
    # the key comes from a URL in the git-annex branch (a cloned dataset's say-so): it must
    # look like a git-annex key, never like an option or a path
    if not _KEY_RE.match(key) or "--" not in key:
        return None
    loc = _annex("contentlocation", key).strip()
    if not loc:
        _annex("get", "--key", key)
        loc = _annex("contentlocation", key).strip()
    return os.path.abspath(loc) if loc else None


def _extract_member(archive: str, member: str, dest: str) -> None:
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zf, zf.open(member) as src, open(dest, "wb") as out:
            out.write(src.read())
        return
    with tarfile.open(archive) as tf:
        member_file = tf.extractfile(member)
        if member_file is None:
            raise RuntimeError(f"{member} is not a file in the archive")
        with member_file as src, open(dest, "wb") as out:
            out.write(src.read())


def main() -> None:
    # git-annex stops a remote with SIGTERM: let it unwind, so that proc stops a nested
    # `git annex get` of the archive (it runs in a process group of its own) on the way out
    proc.interrupt_on_termination()
    try:
        Remote().loop()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
