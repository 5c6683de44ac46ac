"""The git boundary, checked by reading rr's source (as ruff's TID251 checks the process
boundary): git is started only from recorder/gitrepo/, git-annex only from annex.py (and the
special remote, archive_remote.py), and the runner inside gitrepo is used by no one else."""

from __future__ import annotations

import ast
import subprocess
from pathlib import Path

import pytest

from recorder import gitrepo
from tests.conftest import git

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "recorder"

GIT_HOME = "recorder/gitrepo/"
ANNEX_HOMES = {"recorder/annex.py", "recorder/archive_remote.py"}
RUNNER_NAMES = ("call_git", "call_git_lines", "call_git_optional", "call_git_success",
                "call_git_z", "_runner")


def _argv_head(node: ast.AST) -> list[str]:
    """The leading string constants of a list or tuple display (``["git", "annex", *x]``)."""
    if not isinstance(node, (ast.List, ast.Tuple)):
        return []
    head: list[str] = []
    for elt in node.elts:
        if not (isinstance(elt, ast.Constant) and isinstance(elt.value, str)):
            break
        head.append(elt.value)
    return head


def _is_gitrepo(node: ast.AST) -> bool:
    """``gitrepo`` or ``recorder.gitrepo`` / ``..gitrepo`` as an attribute base."""
    return (isinstance(node, ast.Name) and node.id == "gitrepo") or \
        (isinstance(node, ast.Attribute) and node.attr == "gitrepo")


def violations(source: str, rel: str) -> list[str]:
    """Where the module ``rel`` (``recorder/x.py``) crosses the git boundary."""
    if rel.startswith(GIT_HOME):
        return []
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        line = getattr(node, "lineno", 0)
        head = _argv_head(node)
        if head[:1] == ["git-annex"] or head[:2] == ["git", "annex"]:
            if rel not in ANNEX_HOMES:
                found.append(f"{rel}:{line}: git-annex started outside annex.py")
        elif head[:1] == ["git"]:
            found.append(f"{rel}:{line}: a git argv outside recorder/gitrepo/")
        elif isinstance(node, ast.Attribute) and _is_gitrepo(node.value) and (
                node.attr in RUNNER_NAMES or node.attr.startswith("_")):
            found.append(f"{rel}:{line}: gitrepo.{node.attr} (private to recorder/gitrepo/)")
        elif isinstance(node, ast.ImportFrom) and "gitrepo" in (node.module or "") and (
                "_runner" in (node.module or "") or
                any(a.name in RUNNER_NAMES or a.name.startswith("_") for a in node.names)):
            found.append(f"{rel}:{line}: imports gitrepo's runner")
    return found


def _modules() -> list[tuple[str, str]]:
    return [(p.relative_to(ROOT).as_posix(), p.read_text(encoding="utf-8"))
            for p in sorted(PACKAGE.rglob("*.py"))]


def test_git_is_started_only_from_gitrepo():
    offenders = [v for rel, src in _modules()
                 for v in violations(src, rel)]
    assert not offenders, "\n".join(offenders)


@pytest.mark.parametrize("rel, source", [
    ("recorder/x.py", "proc.capture(['git', 'status'], cwd=root)"),
    ("recorder/x.py", "argv = ['git', *args]\nproc.capture(argv)"),
    ("recorder/x.py", "proc.popen_lines(('git', 'log'), cwd=root)"),
    ("recorder/x.py", "gitrepo.call_git(['status'], root)"),
    ("recorder/x.py", "gitrepo.call_git_optional(['config', 'x'], root)"),
    ("recorder/x.py", "from .gitrepo import call_git_z"),
    ("recorder/x.py", "from .gitrepo._runner import run"),
    ("recorder/x.py", "from recorder.gitrepo import _runner"),
    ("recorder/x.py", "gitrepo._bad_submodule_url(url)"),
    ("recorder/containers/x.py", "from .. import gitrepo\ngitrepo.call_git_lines(['x'], r)"),
    ("recorder/x.py", "proc.capture(['git', 'annex', 'get'], cwd=root)"),
    ("recorder/gitrepo.py", "proc.capture(['git-annex', 'version'])"),
    ("recorder/annex.py", "proc.capture(['git', 'config', 'x'], cwd=root)"),
])
def test_the_checker_finds_a_planted_violation(rel, source):
    assert violations(source, rel)


@pytest.mark.parametrize("rel, source", [
    ("recorder/gitrepo/refs.py", "call_git(['rev-parse', 'HEAD'], root)"),
    ("recorder/gitrepo/_runner.py", "proc.capture(['git', *args], cwd=cwd)"),
    ("recorder/annex.py", "proc.capture(['git', 'annex', 'init'], cwd=root)"),
    ("recorder/archive_remote.py", "proc.capture(['git', 'annex', *args])"),
    ("recorder/x.py", "gitrepo.head_sha(root)\nfrom .gitrepo import StatusEntry"),
    ("recorder/x.py", "if argv[0] == 'git': pass\nnames = ['gitignore', 'git-lfs']"),
])
def test_the_checker_lets_the_rule_s_own_uses_pass(rel, source):
    assert not violations(source, rel)


# --- what crosses the boundary: typed outcomes, git's line picked inside gitrepo -------------


def _repo(path: Path, text: str = "base\n") -> Path:
    path.mkdir()
    git("init", "-q", "-b", "main", cwd=path)
    (path / "f.txt").write_text(text)
    git("add", "f.txt", cwd=path)
    git("commit", "-q", "-m", "base", cwd=path)
    return path


def _commit(path: Path, text: str, message: str) -> str:
    (path / "f.txt").write_text(text)
    git("commit", "-q", "-am", message, cwd=path)
    return git("rev-parse", "HEAD", cwd=path).strip()


def test_push_outcome_names_the_refused_ref(tmp_path):
    origin = tmp_path / "origin.git"
    git("init", "-q", "--bare", "-b", "main", str(origin), cwd=tmp_path)
    one = _repo(tmp_path / "one")
    git("remote", "add", "origin", str(origin), cwd=one)
    assert gitrepo.push(one, "origin", ["refs/heads/main:refs/heads/main"]).ok
    git("clone", "-q", str(origin), "two", cwd=tmp_path)
    _commit(tmp_path / "two", "theirs\n", "theirs")
    git("push", "-q", "origin", "main", cwd=tmp_path / "two")
    _commit(one, "ours\n", "ours")
    outcome = gitrepo.push(one, "origin", ["refs/heads/main:refs/heads/main"])
    assert outcome.status is gitrepo.GitStatus.REJECTED
    assert outcome.refused("refs/heads/main") and not outcome.refused("refs/heads/git-annex")
    assert not isinstance(outcome, subprocess.CompletedProcess)


def test_fetch_outcome_carries_git_s_last_line(tmp_path):
    repo = _repo(tmp_path / "repo")
    git("remote", "add", "gone", str(tmp_path / "nowhere"), cwd=repo)
    outcome = gitrepo.fetch(repo, "gone")
    assert outcome.status is gitrepo.GitStatus.FAILED
    assert outcome.why and "\n" not in outcome.why  # the one line rr update shows


def test_merge_and_cherry_pick_outcomes_name_the_conflicts(tmp_path):
    repo = _repo(tmp_path / "repo")
    git("checkout", "-q", "-b", "side", cwd=repo)
    theirs = _commit(repo, "side\n", "side")
    git("checkout", "-q", "main", cwd=repo)
    _commit(repo, "main\n", "main")
    merged = gitrepo.merge_into_head(repo, "side", ff_only=False)
    assert merged.status is gitrepo.GitStatus.CONFLICT
    assert merged.conflicts == ("f.txt",) and merged.why
    git("merge", "--abort", cwd=repo)
    picked = gitrepo.cherry_pick_commit(repo, theirs)
    assert picked.status is gitrepo.GitStatus.CONFLICT and picked.conflicts == ("f.txt",)
    assert picked.first_line
    gitrepo.abort_sequencer(repo)
    assert not gitrepo.sequencer_in_progress(repo)
    assert gitrepo.merge_into_head(repo, "main", ff_only=True).ok  # already there


def test_no_raw_process_result_leaves_gitrepo():
    raw = set()
    for name in gitrepo.__all__:
        obj = getattr(gitrepo, name)
        if callable(obj) and "CompletedProcess" in str(getattr(obj, "__annotations__", {})
                                                        .get("return", "")):
            raw.add(name)
    assert not raw, raw
