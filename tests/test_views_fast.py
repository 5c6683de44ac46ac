"""The history views' fast paths (issue #22 item 3) decide exactly as the paths they
short-cut: a record checked in a few C-level steps is one the field-by-field check accepts,
a record scanned in place is the record of the slice, a commit's tree names its files."""

import json

import pytest

from recorder import gitrepo, history
from recorder import record as records
from recorder.errors import RecordError

from .conftest import git

_RECORDS = [
    {"cmd": "x"}, {"cmd": "x", "pwd": ".", "exit": 0, "inputs": ["a", "b"], "chain": []},
    {"cmd": "x", "exit": None, "inputs": None, "outputs": None, "chain": None, "dsid": None},
    {"cmd": "x", "rr": None}, {"cmd": "x", "rr": {"duration": 1.5, "explicit": True}},
    {"cmd": "x", "inputs": ["a" * 63]}, {"cmd": "x", "inputs": ["a" * 64]},
    {"cmd": "x", "inputs": ["a" * 40, "b" * 40]}, {"cmd": "x", "inputs": ["a" * 300]},
    {"cmd": "x", "inputs": ["d/" + "a" * 250 + "/b"]}, {"cmd": "x", "outputs": ["a\0b"]},
    {"cmd": "x", "chain": ["a\0b", "c" * 500]}, {"cmd": "x", "extra_inputs": ["/" * 5000]},
    {"cmd": "a\0b"}, {"cmd": "x" * (128 * 1024)}, {"cmd": "é" * 40000}, {"cmd": 5},
    {"pwd": "."}, {"cmd": "x", "pwd": None}, {"cmd": "x", "pwd": "a\0"},
    {"cmd": "x", "pwd": "p" * 5000}, {"cmd": "x", "exit": True}, {"cmd": "x", "exit": 1.0},
    {"cmd": "x", "exit": -3}, {"cmd": "x", "inputs": "a"}, {"cmd": "x", "inputs": [1]},
    {"cmd": "x", "inputs": ["a", None]}, {"cmd": "x", "chain": [3]}, {"cmd": "x", "dsid": 4},
    {"cmd": "x", "rr": []}, {"cmd": "x", "rr": {"duration": "x"}}, {"cmd": 5, "rr": []},
    {"cmd": "x", "rr": {"container": {"name": 3}}}, {"cmd": "x", "inputs": [], "other": [1]},
]


def _outcome(check, record):
    try:
        return "ok", check(None if record is None else dict(record))
    except RecordError as exc:
        return "error", exc.message


@pytest.mark.parametrize("record", _RECORDS)
def test_quick_check_accepts_only_what_the_full_check_accepts(record):
    assert _outcome(records.validate, record) == _outcome(records._validate_fields, record)
    if _outcome(records._plain, record) == ("ok", True):
        assert _outcome(records._validate_fields, record)[0] == "ok"


_BODIES = ['{"cmd": "x"}', ' {"cmd": "x"} ', '{"cmd": "x"}\n\n', '{"cmd": "x"} x',
           '{"cmd": "x"}{}', '{"cmd": "x"', '{"cmd": "x\n"}', '{"cmd": 1e999}', '{"cmd": 1',
           "[1]", '"abc"', '"zz"', "", "  ", "{}", '{"cmd": "x", "pwd": "."}\t\r\n ',
           '{"a": ' * 100000 + "1" + "}" * 100000, '{"cmd": "\\u00e9"}', "nul\0l"]


@pytest.mark.parametrize("body", _BODIES)
def test_record_scanned_in_place_is_the_record_of_the_slice(body):
    text = f"{records.TAG}subject\n\n{records.BELOW}\n{body}\n{records.ABOVE}\nafter"
    begin = text.rfind(records._BELOW_LINE) + len(records._BELOW_LINE)
    end = text.rfind(records._ABOVE_LINE)

    def slow():
        try:
            return records._json_value(text[begin:end])
        except (ValueError, RecursionError) as exc:
            raise RecordError("run record is not valid JSON") from exc

    assert _outcome(lambda _: records._json_in(text, begin, end), None) == \
        _outcome(lambda _: slow(), None)


def test_rev_list_trees_names_each_commit_and_its_tree(ds):
    for i in range(3):
        (ds / "m.json").write_text(json.dumps({"i": i}))
        git("add", "m.json", cwd=ds)
        git("commit", "-q", "-m", f"c{i}", cwd=ds)
    got = list(gitrepo.rev_list_trees(ds, ["--reverse", "HEAD"]))
    want = git("log", "--reverse", "--format=%H %T", "HEAD", cwd=ds).split()
    assert [x for pair in got for x in pair] == want
    blobs = list(gitrepo.read_blobs(ds, [f"{tree}:m.json" for _, tree in got[-3:]]))
    assert [json.loads(b[1]) for b in blobs if b] == [{"i": 0}, {"i": 1}, {"i": 2}]


_NOTES = ["", '{"duration": 1.5}', '{"duration": 1e999}\n{"duration": 2}', "[1]\nnull\n3",
          '{"duration": -1}\n{"duration": true}\n{"duration": "x"}\n{"duration": 0}',
          '{"verdict": "identical", "date": "2"}\n{"verdict": "differs", "date": "1"}\nx',
          '{"verdict": 3}\n{"duration": 4, "verdict": "failed"}\n{"duration": NaN}',
          '{"verdict": "odd"}\r\n{"duration": 5}\u2028{"date": 1, "verdict": "a"}']


@pytest.mark.parametrize("note", _NOTES)
def test_note_read_once_says_what_reading_it_twice_says(note):
    assert history._note_facts(note) == (history._note_duration(note),
                                         history._note_verifications(note))


@pytest.mark.parametrize("text", [*_BODIES, '{"a": 1}\n', '[1, 2] ', '{"a": 1} x', "{} {}",
                                  '{"duration": 0.5}', "[", "{]", '["\\ud800"]'])
def test_loads_is_json_loads(text):
    def outcome(load):
        try:
            return "ok", load(text)
        except ValueError as exc:
            return "error", str(exc)
        except RecursionError:
            return "deep", None

    assert outcome(records.loads) == outcome(json.loads)


def test_table_rows_read_back_as_kept():
    """metrics' table keeps its rows' values in one list, their keys once a run of rows:
    every row reads back as the dict it was, by index, slice and iteration."""
    from recorder.metrics import _Rows

    shapes = [("a", "b"), ("a", "b", "c"), (), ("x",), ("a", "b")]
    kept, rows = [], _Rows()
    for i in range(300):
        keys = shapes[(i // 7 + i % 3) % len(shapes)] if i % 4 == 0 else tuple(kept[-1] or ())
        row = {k: f"{k}{i}" for k in keys}
        kept.append(row)
        rows.append(row)
    assert len(rows) == len(kept) and list(rows) == kept
    assert [rows[i] for i in range(len(kept))] == kept
    assert [rows[-i] for i in range(1, len(kept) + 1)] == kept[::-1]
    assert rows[5:200:9] == kept[5:200:9] and rows[::-1] == kept[::-1]
    with pytest.raises(IndexError):
        rows[len(kept)]


@pytest.mark.parametrize("values", [{}, {"a": 1, "b.c": 2.5}, {"note": 3}, {"revision": 1},
                                    {"commit": None, "x": 1}, {"file": "f", "y": 2}])
@pytest.mark.parametrize("file", [None, "m.json"])
@pytest.mark.parametrize("notes", [[], ["m.json: missing", "x"]])
def test_metrics_row_shape_is_its_flat_dict(values, file, notes):
    from recorder.metrics import MetricsRow

    for revision, commit in (("abcdef12", "abcdef1234" * 4), ("v1", "0" * 40), ("ws", None)):
        row = MetricsRow(revision, commit, dict(values), list(notes), file)
        keys, cells = row.shape()
        flat = row.flat()
        assert keys == tuple(flat) and cells == tuple(flat.values())


_VALUES = [
    {"a": 1, "b": [1, 2.5, None, True, False], "c": {"d": "é\n\"\\\x00\u2028"}}, "text", 3,
    1.0e300, -0.0, None, [], {}, [[[]]], (1, 2), {1: "int key", 2.5: "x", None: 1, True: 2},
    {"nan": float("nan")}, [float("inf")], 10 ** 40, "\udcff", {"k\udcfe": "v"},
    {"x": {1, 2}}, object(), [b"bytes"],
]


@pytest.mark.parametrize("value", _VALUES)
def test_json_text_is_json_dumps(value):
    """render.json_text's one encoder made once writes what json.dumps writes, with json.dumps'
    errors, and its own promises (no NaN, UTF-8 output) on top."""
    from recorder.cli.render import _finite, json_text

    try:
        expected = json.dumps(value, ensure_ascii=False, allow_nan=False)
    except TypeError as exc:
        with pytest.raises(TypeError, match=str(exc)):
            json_text(value)
        return
    except ValueError:  # a non-finite number: null
        expected = json.dumps(_finite(value), ensure_ascii=False, allow_nan=False)
    try:
        expected.encode("utf-8")
    except UnicodeEncodeError:  # not UTF-8: escaped
        expected = json.dumps(_finite(value), allow_nan=False)
    assert json_text(value) == expected


def _aligned(columns, rows):
    """The aligned table as it was written before its fast path: a cell per column from
    each row's dict, every cell padded to its column's widest, trailing space stripped."""
    def cell(v):
        return "-" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)

    grid = [list(columns)] + [[cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(line[i]) for line in grid) for i in range(len(columns))]
    return "".join("  ".join(v.ljust(w) for v, w in zip(line, widths)).rstrip() + "\n"
                   for line in grid)


def test_aligned_table_writes_what_it_wrote_cell_by_cell():
    """The aligned table reads metrics' rows without a dict each and pads with one format
    operation: the text is the cell-by-cell text, for rows of varying keys, rows without a
    column, cells holding the separator it keeps rows with, numbers, None and wide text."""
    from recorder.cli.render import render_table
    from recorder.metrics import Table, _Rows

    odd = ["x\x1fy", "é" * 12, "", "%s %d", " lead", "trail ", 1.0e-7, 12345678.9, 3, True,
           None, [1, 2], "a" * 40]
    shapes = [("revision", "commit", "acc", "note"), ("revision", "commit", "note"),
              ("revision", "commit", "loss", "acc", "note"), (), ("revision",)]
    kept, rows = [], _Rows()
    for i in range(200):
        keys = shapes[(i // 5 + i % 3) % len(shapes)]
        row = {k: odd[(i * 7 + j) % len(odd)] for j, k in enumerate(keys)}
        kept.append(row)
        rows.append(row)
    columns = ["revision", "commit", "acc", "loss", "note"]
    for cols in (columns, columns[:1], [], ["missing"]):
        expected = _aligned(cols, kept)
        assert render_table(Table(cols, rows)) == expected  # metrics' rows
        assert render_table(Table(cols, kept)) == expected  # any rows as dicts
    assert render_table(Table(columns, _Rows())) == _aligned(columns, [])
