"""Array tables read as CSV/TSV are written; the output-overlap check, near-linear, agrees with
the pairwise one (issue 20, item 4)."""

from __future__ import annotations

import fnmatch
import glob
import itertools
import random

import pytest

from recorder import array
from recorder.errors import UsageError

from .conftest import git, one_error_line, rr


def rows(tmp_path, name: str, data: bytes) -> list[dict[str, str]]:
    path = tmp_path / name
    path.write_bytes(data)
    return array.expand_rows(table=str(path))


@pytest.mark.parametrize("sep", ["\f", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029",
                                 "\v"])
def test_line_separators_of_str_splitlines_stay_in_the_value(tmp_path, sep):
    got = rows(tmp_path, "t.csv", f"s,v\na{sep}b,1\nc,2\n".encode())
    assert got == [{"s": f"a{sep}b", "v": "1"}, {"s": "c", "v": "2"}]


@pytest.mark.parametrize("ext,delim", [(".csv", ","), (".tsv", "\t"), (".txt", "\t")])
def test_a_quoted_line_break_stays_in_the_value(tmp_path, ext, delim):
    got = rows(tmp_path, "t" + ext, f's{delim}v\n"two\nlines"{delim}1\n"x\r\ny"{delim}2\n'
               .encode())
    assert got == [{"s": "two\nlines", "v": "1"}, {"s": "x\r\ny", "v": "2"}]


def test_a_utf8_bom_is_not_part_of_the_first_header(tmp_path):
    assert rows(tmp_path, "t.csv", "\ufeffsubject,lr\n01,0.1\n".encode()) == \
        [{"subject": "01", "lr": "0.1"}]
    assert rows(tmp_path, "t.tsv", "\ufeffsubject\n01\n".encode()) == [{"subject": "01"}]


def test_crlf_tables(tmp_path):
    assert rows(tmp_path, "t.csv", b"s,v\r\n1,2\r\n3,4\r\n") == \
        [{"s": "1", "v": "2"}, {"s": "3", "v": "4"}]


@pytest.mark.parametrize("data,match", [
    (b"s,v\n\xff\xfe,1\n", "is not UTF-8 text"),
    ("s,v\n".encode("utf-16"), "is not UTF-8 text"),
    (b"s,v\nab,\"x\n", "cannot be read: unexpected end"),  # a quote left open at the end
    (b"s,v\n\"a\"b,1\n", "cannot be read"),  # text after a closing quote
    (b"s,v\n" + b"a" * 200_000 + b",1\n", "line 2 .* field larger than field limit"),
    (b"s,v\nx,1\na\0b,2\n", "line 3 of .* holds a NUL byte"),
])
def test_unreadable_tables_are_one_line(tmp_path, data, match):
    with pytest.raises(UsageError, match=match) as info:
        rows(tmp_path, "t.csv", data)
    assert "\n" not in info.value.message


def test_a_missing_value_names_the_line_it_is_on(tmp_path):
    with pytest.raises(UsageError, match="line 4 .* has no value for 'v'"):
        rows(tmp_path, "t.csv", b's,v\n"a\nb",1\nc,\n')


@pytest.mark.parametrize("param", ["v=a,", "v=,a", "v=a,,b", "v=,"])
def test_an_empty_param_value_is_refused(param):
    with pytest.raises(UsageError, match="has an empty value"):
        array.expand_rows([param])


def test_cli_refuses_bad_tables_in_one_line_before_anything_runs(ds):
    head = git("rev-parse", "HEAD", cwd=ds)
    (ds.parent / "bad.csv").write_bytes(b"s\n\xff\n")
    for args in (["--array", str(ds.parent / "bad.csv")], ["--param", "v=a,"]):
        r = rr("run", *args, "-o", "out/{v}" if "--param" in args else "out/{s}",
               "touch ran", cwd=ds, check=False)
        assert r.returncode != 0
        one_error_line(r.stderr)
        assert not (ds / "ran").exists()
    assert git("rev-parse", "HEAD", cwd=ds) == head


def test_table_values_with_line_breaks_run_and_are_recorded(ds):
    (ds.parent / "t.csv").write_bytes(b'name\n"a\nb"\nc\x0cd\n')
    rr("run", "--array", str(ds.parent / "t.csv"), "-o", "out/{name}",
       "mkdir -p out && printf %s {name} > out/{name}", cwd=ds)
    assert (ds / "out" / "a\nb").read_text() == "a\nb"
    assert (ds / "out" / "c\x0cd").read_text() == "c\x0cd"
    assert git("status", "--porcelain", cwd=ds) == ""


# --- the overlap check ------------------------------------------------------------------------


def job(i, outputs):
    return array.Job(i, {"k": str(i)}, "true", [], outputs, None)


def pairwise_clash(planned) -> bool:
    """The reference: every pair of jobs compared as the check defines overlap."""
    def fixed(g):
        return array._fixed(g)

    def meet(a, b):
        (pa, sa), (pb, sb) = fixed(a), fixed(b)
        return (pa.startswith(pb) or pb.startswith(pa)) and (sa.endswith(sb) or sb.endswith(sa))

    def prefixes(p):
        parts = p.split("/")
        return ["/".join(parts[:k]) for k in range(1, len(parts) + 1)]

    for a, b in itertools.combinations(planned, 2):
        for x in a.outputs:
            for y in b.outputs:
                gx, gy = glob.has_magic(x), glob.has_magic(y)
                if not gx and not gy:
                    if x == y or y.startswith(x + "/") or x.startswith(y + "/"):
                        return True
                elif gx and gy:
                    if meet(x, y):
                        return True
                else:
                    g, p = (x, y) if gx else (y, x)
                    if any(fnmatch.fnmatchcase(q, g) for q in prefixes(p)) or \
                            g.startswith(p + "/"):
                        return True
    return False


@pytest.mark.parametrize("seed", range(300))
def test_the_overlap_check_agrees_with_comparing_every_pair(seed):
    rnd = random.Random(seed)
    pieces = ["out", "a", "b", "ab", "x.txt", "1", "2", "*", "?", "[ab]", "*.txt", "a*", "*b"]
    planned = []
    for i in range(rnd.randint(2, 4)):
        outs = ["/".join(rnd.choice(pieces) for _ in range(rnd.randint(1, 3)))
                for _ in range(rnd.randint(1, 2))]
        planned.append(job(i, outs))
    expected = pairwise_clash(planned)
    try:
        array.check_overlaps(planned, ".")
        got = False
    except UsageError:
        got = True
    assert got == expected, [j.outputs for j in planned]


@pytest.mark.parametrize("outputs", [
    lambda i: [f"out/{i}/*.txt"], lambda i: [f"out/*_{i}.txt"], lambda i: [f"out/r{i}.*"],
    lambda i: [f"out/{i}.txt", f"log/{i}/*"], lambda i: [f"o/{i}/a", f"o/{i}/b*"],
])
def test_many_disjoint_glob_outputs_pass(outputs):
    array.check_overlaps([job(i, outputs(i)) for i in range(3000)], ".")


def test_a_clash_among_many_is_found():
    planned = [job(i, [f"out/*_{i}.txt"]) for i in range(3000)]
    planned.append(job(3000, ["out/a_17.txt"]))
    with pytest.raises(UsageError, match="job 17 .* and job 3000 .* overlap"):
        array.check_overlaps(planned, ".")
    planned[-1] = job(3000, ["out/*"])
    with pytest.raises(UsageError, match="overlap"):
        array.check_overlaps(planned, ".")
