"""git, and the only code in rr that starts it.  Arranged by git concept:

- ``_runner``: the private runner (builds the argv, starts git through :mod:`recorder.proc`)
- ``refs``: the repository, HEAD, branches, tags, ref transactions
- ``history``: logs, ancestry, rr's notes
- ``notes``: many notes written as one notes commit
- ``objects``: trees, blobs, diffs, commits written without a checkout
- ``index``: status, listing, staging, checkout and reset of the work tree
- ``commit``: committing the index, and the checks around it
- ``worktrees``: linked worktrees
- ``submodules``: .gitmodules, gitlinks
- ``config``: git's configuration
- ``remotes``: clone, fetch, push, merge, cherry-pick (typed outcomes)

``from recorder import gitrepo; gitrepo.head_sha(root)``: every public name is here.
"""

from __future__ import annotations

from ._runner import PathLike, git_dir, nul_paths
from .commit import (commit, commit_amend, deferred_maintenance, ensure_no_index_lock,
                     stripspace, write_commit_editmsg)
from .config import (config_file_list, config_get, config_list, config_parses,
                     config_remove_section, config_set, config_unset_all, upstream)
from .history import (NOTES_REF, NOTES_REFS, NOTES_SIDE, VERIFY_NOTES_REF, LogEntry,
                      add_note, append_notes, commit_message, commits_only_here, notes_side,
                      describe, first_parent_chain, head_commit_time, ignored_paths, is_ancestor,
                      iter_log, iter_log_raw, iter_run_log, last_commit_touching, merge_notes,
                      read_blobs, read_log, rev_list, rev_list_trees, unpushed_commits,
                      RawLogEntry,
                      SourcedLogEntry)
from .index import (StatusEntry, abort_sequencer, add, checkout, checkout_branch,
                    checkout_tracking,
                    checkout_paths, clean_untracked, forget, iter_status, ls_files,
                    ls_files_stage, ls_files_symlinks, read_tree_update, reset_hard, rm,
                    sequencer_in_progress, set_branch_and_checkout, staged_paths, unmerged_paths,
                    unstage, unstaged_paths, untracked_paths)
from .notes import add_notes
from .objects import (NULL_SHA, DiffEntry, cat_file_batch, changed_files, commit_tree,
                      diff_raw_many,
                      diff_names, diff_tree_commits, empty_tree, fast_import, hash_files_raw,
                      glob_files, iter_diff_raw, object_infos, object_types, parse_tree,
                      small_blobs, tree_entries, tree_files)
from .refs import (RefTransactions, branch_exists, check_ref_format_tag, current_branch,
                   has_refs, head_sha,
                   newest_remote_branch,
                   init, init_shared, object_id, ref_names, refs_by_commit, refs_under,
                   resolve_commit, tag,
                   update_ref, update_refs)
from .remotes import (FetchOutcome, GitStatus, MergeOutcome, PushOutcome,
                      cherry_pick_commit, clone, fetch, fetch_branch, fetch_commit, fetch_notes,
                      merge_commits, merge_into_head, push, remote_add, remote_remove, remotes,
                      remotes_containing, tracking_remote)
from .submodules import (bad_submodule_url, gitlink, gitlinks,
                         register_submodule, submodule_add, submodule_paths,
                         submodule_properties)
from .worktrees import (main_worktree, worktree_add, worktree_prune, worktree_remove,
                        worktree_reset)

__all__ = [
    "PathLike", "git_dir", "nul_paths", "RefTransactions",
    "commit", "commit_amend", "deferred_maintenance", "ensure_no_index_lock", "stripspace",
    "write_commit_editmsg",
    "config_get", "config_list", "config_parses", "config_remove_section", "config_set",
    "config_unset_all", "upstream", "config_file_list",
    "NOTES_REF", "NOTES_REFS", "NOTES_SIDE", "VERIFY_NOTES_REF", "LogEntry", "add_note",
    "append_notes", "commit_message", "commits_only_here", "notes_side", "describe",
    "first_parent_chain", "head_commit_time", "ignored_paths", "is_ancestor", "iter_log",
    "iter_log_raw", "iter_run_log", "last_commit_touching", "merge_notes", "RawLogEntry",
    "SourcedLogEntry", "read_blobs", "read_log", "rev_list", "rev_list_trees",
    "unpushed_commits", "add_notes",
    "StatusEntry", "abort_sequencer", "add", "checkout", "checkout_branch", "checkout_paths",
    "checkout_tracking", "newest_remote_branch",
    "clean_untracked", "forget", "iter_status", "ls_files", "ls_files_stage",
    "ls_files_symlinks", "read_tree_update", "reset_hard", "rm", "sequencer_in_progress",
    "set_branch_and_checkout", "staged_paths", "unmerged_paths", "unstage", "unstaged_paths",
    "untracked_paths",
    "NULL_SHA", "DiffEntry", "cat_file_batch", "changed_files", "commit_tree", "diff_raw_many",
    "diff_names",
    "diff_tree_commits", "empty_tree", "fast_import", "hash_files_raw", "iter_diff_raw",
    "object_infos", "object_types", "small_blobs", "tree_entries", "tree_files",
    "glob_files", "parse_tree",
    "branch_exists", "check_ref_format_tag", "current_branch", "has_refs", "head_sha", "init",
    "init_shared",
    "object_id", "ref_names", "refs_by_commit", "refs_under", "resolve_commit", "tag",
    "update_ref", "update_refs",
    "FetchOutcome", "GitStatus", "MergeOutcome", "PushOutcome",
    "cherry_pick_commit", "clone", "fetch", "fetch_branch", "fetch_commit", "fetch_notes",
    "merge_commits", "merge_into_head", "push", "remote_add", "remote_remove", "remotes",
    "remotes_containing", "tracking_remote",
    "bad_submodule_url", "gitlink", "gitlinks", "register_submodule",
    "submodule_add", "submodule_paths", "submodule_properties",
    "main_worktree", "worktree_add", "worktree_prune", "worktree_remove", "worktree_reset",
]
