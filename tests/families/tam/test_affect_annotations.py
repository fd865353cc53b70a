"""Readers for VE8 / EK6 split lists and LIRIS-ACCEDE annotations, on the real fixture files."""

from __future__ import annotations

import collections
import hashlib
import pathlib
import re

import numpy as np
import pytest

from jaxaffect.families.tam import annotations as aa

FIX = pathlib.Path(__file__).resolve().parents[2] / "fixtures" / "affect"


def _raw_lines(path: pathlib.Path) -> list[str]:
    return [ln for ln in path.read_text().splitlines() if ln.strip()]


def _folder_counts(path: pathlib.Path) -> collections.Counter:
    return collections.Counter(ln.split("/", 1)[0] for ln in _raw_lines(path))


def test_fixture_checksums_match_source_md():
    text = (FIX / "SOURCE.md").read_text()
    entries = [ln.split() for ln in text.splitlines() if len(ln.split()) == 2 and "/" in ln]
    assert len(entries) == 8
    for digest, rel in entries:
        assert hashlib.sha256((FIX / rel).read_bytes()).hexdigest() == digest, rel


@pytest.mark.parametrize(
    "name,classes",
    [
        ("ve8", ["Anger", "Anticipation", "Disgust", "Fear", "Joy", "Sadness", "Surprise",
                 "Trust"]),
        ("ek6", ["anger", "disgust", "fear", "joy", "sadness", "surprise"]),
    ],
)
def test_class_index(name, classes):
    assert aa.read_class_index(FIX / name / "classInd.txt") == classes


@pytest.mark.parametrize(
    "rel,total",
    [("ve8/trainlist01.txt", 732), ("ve8/testlist01.txt", 367),
     ("ek6/trainlist01.txt", 819), ("ek6/testlist01.txt", 818)],
)
def test_split_list_counts(rel, total):
    path = FIX / rel
    classes = aa.read_class_index(path.parent / "classInd.txt")
    videos = aa.read_split_list(path, classes)
    assert len(videos) == total == len(_raw_lines(path))
    got = collections.Counter(v.class_name for v in videos)
    assert got == _folder_counts(path)
    for v in videos:
        assert classes[v.label_id] == v.class_name == v.video_id.split("/")[0]
    # labelled lists: the parsed 0-based label is the file's 1-based label minus one
    raw = _raw_lines(path)
    if len(raw[0].split()) == 2:
        assert [v.label_id for v in videos] == [int(ln.split()[-1]) - 1 for ln in raw]


def test_known_per_class_counts():
    ve8 = aa.read_split_list(FIX / "ve8/trainlist01.txt",
                             aa.read_class_index(FIX / "ve8/classInd.txt"))
    c = collections.Counter(v.class_name for v in ve8)
    assert c == {"Anger": 74, "Anticipation": 64, "Disgust": 76, "Fear": 113, "Joy": 114,
                 "Sadness": 64, "Surprise": 166, "Trust": 61}
    ek_classes = aa.read_class_index(FIX / "ek6/classInd.txt")
    ek = aa.read_split_list(FIX / "ek6/trainlist01.txt", ek_classes) + aa.read_split_list(
        FIX / "ek6/testlist01.txt", ek_classes)
    assert len(ek) == 1637 and len({v.video_id for v in ek}) == 1637


def _write(tmp_path, text, name="list.txt"):
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    "text,line,msg",
    [
        ("Anger/a 1\nAnger/b 1 2\n", 2, "expected"),
        ("Anger/a 1\nJoy/b 5\n", 2, "unknown class"),
        ("Anger/a 1\n\nFear/b 1\n", 3, "disagrees"),
        ("Anger/a 1\nAnger/a 1\n", 2, "duplicate"),
        ("Anger/a x\n", 1, "not an integer"),
        ("Anger/a 9\n", 1, "outside"),
        ("Angera 1\n", 1, "expected"),
        ("Anger/a 1\nFear/b\n", 2, "1 field\\(s\\) but line 1 has 2"),
        ("Anger/a\nFear/b 2\n", 2, "2 field\\(s\\) but line 1 has 1"),
        ("Anger/../../x 1\n", 1, "not a plain 'Class/video' path"),
        ("Anger/./x 1\n", 1, "not a plain"),
        ("Anger/a ²\n", 1, "not an integer"),  # isdigit() but not a decimal
        ("Anger/a ٢\n", 1, "not an integer"),  # int() would read 2
    ],
)
def test_split_list_errors_name_file_and_line(tmp_path, text, line, msg):
    p = _write(tmp_path, text)
    with pytest.raises(aa.AnnotationError, match=msg) as e:
        aa.read_split_list(p, ["Anger", "Fear"])
    assert f"{p}:{line}:" in str(e.value)


@pytest.mark.parametrize("text", ["", "\n  \r\n\t\n"])
def test_empty_split_list_is_refused(tmp_path, text):
    p = _write(tmp_path, text)
    with pytest.raises(aa.AnnotationError, match=re.escape(f"{p}: no videos listed")):
        aa.read_split_list(p, ["Anger"])


def test_non_utf8_list_names_file_and_line(tmp_path):
    p = tmp_path / "list.txt"
    p.write_bytes("Anger/a 1\nAnger/愤怒 1\n".encode("gbk"))
    with pytest.raises(aa.AnnotationError, match=re.escape(f"{p}:2: not UTF-8")):
        aa.read_split_list(p, ["Anger"])
    with pytest.raises(aa.AnnotationError, match=re.escape(f"{tmp_path / 'no.txt'}: cannot")):
        aa.read_split_list(tmp_path / "no.txt", ["Anger"])


def test_list_entries_remember_where_they_were_read(tmp_path):
    p = _write(tmp_path, "\nAnger/a 1\n\nFear/b 2\n")
    got = aa.read_split_list(p, ["Anger", "Fear"])
    assert [v.where for v in got] == [f"{p}:2", f"{p}:4"]
    assert got[0] == aa.VideoLabel("Anger/a", 0, "Anger")  # `where` is not compared


def test_split_list_crlf_and_no_final_newline(tmp_path):
    p = _write(tmp_path, "Anger/a 1\r\nFear/b 2")
    got = aa.read_split_list(p, ["Anger", "Fear"])
    assert [(v.video_id, v.label_id) for v in got] == [("Anger/a", 0), ("Fear/b", 1)]


def test_class_index_errors(tmp_path):
    with pytest.raises(aa.AnnotationError, match="not 1..N"):
        aa.read_class_index(_write(tmp_path, "1 a\n3 b\n"))
    p = _write(tmp_path, "1 a\n2\n")
    with pytest.raises(aa.AnnotationError, match=re.escape(f"{p}:2:")):
        aa.read_class_index(p)
    with pytest.raises(aa.AnnotationError, match=re.escape(f"{p}: no classes")):
        aa.read_class_index(_write(tmp_path, "\n"))
    p = _write(tmp_path, "1 a\n2 c\n")
    with pytest.raises(aa.AnnotationError, match=re.escape(f"{p}:2: class 2 is 'c', expected "
                                                           "'b'")):
        aa.read_class_index(p, expected=["a", "b"])
    with pytest.raises(aa.AnnotationError, match=re.escape(f"{p}: 2 classes, expected 3")):
        aa.read_class_index(p, expected=["a", "c", "d"])
    assert aa.read_class_index(p, expected=("a", "c")) == ["a", "c"]


def _ve8_all():
    classes = aa.read_class_index(FIX / "ve8/classInd.txt")
    return aa.read_split_list(FIX / "ve8/trainlist01.txt", classes) + aa.read_split_list(
        FIX / "ve8/testlist01.txt", classes)


def test_ve8_random_splits_protocol():
    videos = _ve8_all()
    assert len(videos) == 1099
    label = {v.video_id: v.label_id for v in videos}
    per_class = collections.Counter(label.values())
    splits = aa.ve8_random_splits(videos, seed=3)
    assert len(splits) == 10
    for train, test in splits:
        assert not set(train) & set(test)
        assert sorted(train + test) == sorted(label)
        tc = collections.Counter(label[i] for i in train)
        for c, n in per_class.items():
            assert tc[c] == round(2 / 3 * n)  # stratified per class
    assert len({tuple(t) for t, _ in splits}) == 10  # the 10 draws differ
    again = aa.ve8_random_splits(videos, seed=3)
    assert again == splits  # deterministic
    assert aa.ve8_random_splits(videos, seed=4) != splits


def test_carve_validation_stratified():
    videos = _ve8_all()
    ids = [v.video_id for v in videos]
    labels = [v.label_id for v in videos]
    train, val = aa.carve_validation(ids, labels, fraction=0.15, seed=1)
    assert not set(train) & set(val) and sorted(train + val) == sorted(ids)
    lab = dict(zip(ids, labels))
    vc = collections.Counter(lab[i] for i in val)
    for c, n in collections.Counter(labels).items():
        assert vc[c] == round(0.15 * n)
    assert aa.carve_validation(ids, labels, 0.15, seed=1) == (train, val)
    # a tiny class still keeps at least one item on each side
    tr, va = aa.carve_validation(["a", "b", "c"], [0, 0, 1], fraction=0.15)
    assert sorted(va) == ["a"] or sorted(va) == ["b"]
    assert "c" in tr


@pytest.fixture(scope="module")
def liris():
    return aa.read_liris(FIX / "liris_accede/ACCEDEranking.txt",
                         FIX / "liris_accede/ACCEDEsets.txt")


def test_liris_records(liris):
    raw = _raw_lines(FIX / "liris_accede/ACCEDEranking.txt")[1:]
    assert len(liris) == len(raw) == 9800
    assert [r.id for r in liris] == list(range(9800))
    assert all(r.name == f"ACCEDE{r.id:05d}.mp4" for r in liris)
    first = raw[0].split("\t")
    assert liris[0].valence == float(first[4]) and liris[0].arousal_rank == int(first[3])
    for attr in ("valence_rank", "arousal_rank"):
        assert sorted(getattr(r, attr) for r in liris) == list(range(9800))
    for attr in ("valence", "arousal"):
        v = np.array([getattr(r, attr) for r in liris])
        assert v.min() >= 1.0 and v.max() <= 5.0
    # ranks order the values
    order = sorted(liris, key=lambda r: r.valence_rank)
    assert all(a.valence <= b.valence for a, b in zip(order, order[1:]))
    assert all(r.valence_variance > 0 and r.arousal_variance > 0 for r in liris)


def test_liris_sets(liris):
    raw = collections.Counter(
        ln.split("\t")[2] for ln in _raw_lines(FIX / "liris_accede/ACCEDEsets.txt")[1:])
    got = collections.Counter(r.set for r in liris)
    assert got == {0: 4900, 1: 2450, 2: 2450} == {int(k): v for k, v in raw.items()}
    assert {r.set_name for r in liris} == {"test", "train", "validation"}


def test_mediaeval_labels(liris):
    val = np.array([r.valence for r in liris])
    cls = aa.mediaeval2015_classes(val)
    assert collections.Counter(cls.tolist()) == {-1: 3267, 0: 3266, 1: 3267}
    lo, hi = aa.tertile_thresholds(val)
    ref = np.array([-1 if x < lo else (1 if x >= hi else 0) for x in val])
    np.testing.assert_array_equal(cls, ref)
    # tertiles match the file's ranks: class -1 are the lowest third of valence ranks
    ranks = np.array([r.valence_rank for r in liris])
    assert ranks[cls == -1].max() < ranks[cls == 0].min() <= ranks[cls == 0].max() < \
        ranks[cls == 1].min()
    # explicit thresholds, and thresholds taken from a reference set for a subset
    np.testing.assert_array_equal(aa.mediaeval2015_classes([1.0, 2.5, 3.0], (2.0, 3.0)),
                                  [-1, 0, 1])
    test_vals = val[[r.set == 0 for r in liris]]
    np.testing.assert_array_equal(aa.mediaeval2015_classes(test_vals, reference_values=val),
                                  cls[[r.set == 0 for r in liris]])
    tgt = aa.mediaeval2016_targets(liris)
    assert tgt.shape == (9800, 2)
    np.testing.assert_allclose(tgt[:, 1], [r.arousal for r in liris], rtol=1e-6)


def test_liris_malformed(tmp_path):
    head = "\t".join(aa.RANKING_HEADER) + "\n"
    body = "0\tA.mp4\t0\t0\t1.0\t2.0\t0.1\t0.1\n1\tB.mp4\t1\t1\tx\t2\t0.1\t0.1\n"
    p = _write(tmp_path, head + body, "rank.txt")
    with pytest.raises(aa.AnnotationError, match=re.escape(f"{p}:3: bad valenceValue")):
        aa.read_liris_ranking(p)
    p = _write(tmp_path, "id\tname\tset\n0\tA.mp4\t1\n1\tB.mp4\n", "sets.txt")
    with pytest.raises(aa.AnnotationError, match=re.escape(f"{p}:3: expected 3")):
        aa.read_liris_sets(p)
    p = _write(tmp_path, "id\tname\tset\n0\tA.mp4\t5\n", "sets2.txt")
    with pytest.raises(aa.AnnotationError, match=re.escape(f"{p}:2: set 5")):
        aa.read_liris_sets(p)
    p = _write(tmp_path, "id name set\n", "sets3.txt")
    with pytest.raises(aa.AnnotationError, match=re.escape(f"{p}:1: expected header")):
        aa.read_liris_sets(p)


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-Infinity", "1e400", "", "3,1", "0x2",
                                   "2_5", "٣.٠"])
def test_liris_values_must_be_finite_decimals(tmp_path, value):
    head = "\t".join(aa.RANKING_HEADER) + "\n"
    body = f"0\tA.mp4\t0\t0\t1.0\t2.0\t0.1\t0.1\n1\tB.mp4\t1\t1\t2.0\t{value}\t0.1\t0.1\n"
    p = _write(tmp_path, head + body, "rank.txt")
    with pytest.raises(aa.AnnotationError, match=re.escape(f"{p}:3: bad arousalValue {value!r}")):
        aa.read_liris_ranking(p)


@pytest.mark.parametrize("name", ["../x.mp4", "/abs.mp4", "..", "a/b.mp4", ""])
def test_liris_names_must_be_plain_file_names(tmp_path, name):
    p = _write(tmp_path, f"id\tname\tset\n0\tA.mp4\t1\n1\t{name}\t0\n", "sets.txt")
    with pytest.raises(aa.AnnotationError, match=re.escape(f"{p}:3: name {name!r} is not a")):
        aa.read_liris_sets(p)
