"""The MEmoR release readers and the per-annotation assembly (jaxaffect.families.amer
release_format / release_examples) on tiny releases written with release_writer, against
hand-computed expectations and a plain-loop reference of the spec."""

from __future__ import annotations

import json

import numpy as np
import pytest

from jaxaffect.data.splits import in_hash_fraction
from jaxaffect.families.amer import release_examples as rx
from jaxaffect.families.amer import release_format as rf
from jaxaffect.families.amer import release_writer as rw

FPS = 23.976
DIMS = {"audio": 3, "text": 2, "face": 4, "object": 2, "environment": 3}
# Clip names by where their SHA-256 falls (validation takes the first 10% of the range).
VAL_NAMES = [f"c{n:03d}" for n in range(400) if in_hash_fraction(f"c{n:03d}", 0.1)]
TRAIN_NAMES = [f"c{n:03d}" for n in range(400) if not in_hash_fraction(f"c{n:03d}", 0.1)]


def _clip(name, bounds, speakers, on, *, start=0.0, faces=(), n_frames=200, seg_ori_ind=None,
          audio=None, text=None, seed=0) -> rw.ReleaseClip:
    rng = np.random.default_rng(seed)
    s = len(bounds)
    vec = lambda d: rng.normal(size=d).astype(np.float32)
    return rw.ReleaseClip(
        clip=name, start=start, seg_start=[start + a for a, _ in bounds],
        seg_end=[start + b for _, b in bounds], seg_ori_ind=list(seg_ori_ind or range(s)),
        speakers=list(speakers), on_character=list(on),
        audio={j: vec(DIMS["audio"]) for j in (range(s) if audio is None else audio)},
        text={j: vec(DIMS["text"]) for j in (range(s) if text is None else text)},
        faces=[(f, c, vec(DIMS["face"])) for f, c in faces],
        objects=rng.normal(size=(n_frames, DIMS["object"])).astype(np.float32),
        environment=rng.normal(size=(n_frames, DIMS["environment"])).astype(np.float32))


def _write(tmp_path, clips, annotations, train, test, personality=None):
    root = tmp_path / "release"
    if personality is None:
        personality = np.arange(8 * 5, dtype=np.float64).reshape(8, 5) - 7.0
    rw.write_release(root, clips=clips, annotations=annotations, train_ids=train,
                     test_ids=test, personality=personality)
    return root


def _info(bounds, start=0.0, speakers=None, on=()):
    s = len(bounds)
    return rf.ClipInfo("x", start, tuple(start + a for a, _ in bounds),
                       tuple(start + b for _, b in bounds), tuple(range(s)),
                       tuple(speakers or [0] * s), tuple(on))


# ----------------------------------------------------------------------------- readers
def test_writer_and_readers_agree(tmp_path):
    clip = _clip("c1", [(0, 1), (1, 2)], [4, 0], [0], seg_ori_ind=[7, 9],
                 faces=[(3, 0), (12, 4), (12, 7)])
    root = _write(tmp_path, [clip], [rw.Annotation("c1", 6, 0.5, "trust", "serenity")], [0], [])
    (a,) = rf.read_annotations(root)
    assert (a.clip, a.character, a.moment) == ("c1", 6, 0.5)
    assert (rf.PRIMARY[a.primary], rf.FINE[a.fine]) == ("trust", "serenity")
    audio, d_audio = rf.read_vectors(root / rf.AUDIO_FILE)
    text, d_text = rf.read_vectors(root / rf.TEXT_FILE)
    assert sorted(audio) == ["c1+7", "c1+9"] and sorted(text) == ["c1+0", "c1+1"]
    assert (d_audio, d_text) == (3, 2)
    np.testing.assert_array_equal(audio["c1+9"], clip.audio[1])
    np.testing.assert_array_equal(text["c1+1"], clip.text[1])
    names_file = root / rf.FACE_NAMES_DIR / "c1.txt"
    assert names_file.read_text() == "3_Sheldon.jpg\t12_Penny.jpg\t12_Others.jpg\n"
    assert rf.read_face_names(names_file) == [(3, "sheldon"), (12, "penny"), (12, "others")]
    faces = rf.read_tensor(rf.tensor_path(root, "face", "c1"))
    np.testing.assert_array_equal(faces, np.stack([f for _, _, f in clip.faces]))
    info = rf.read_clips(root)["c1"]
    assert info.seg_ori_ind == (7, 9) and info.speakers == (4, 0) and info.on_character == (0,)
    np.testing.assert_array_equal(rf.read_personality(root),
                                  np.arange(40.0).reshape(8, 5) - 7.0)


def test_personality_is_l2_normalised_per_column():
    raw = np.zeros((8, 3))
    raw[0, 0], raw[1, 0] = 3.0, 4.0  # column norm 5
    raw[:, 1] = 2.0  # norm sqrt(32)
    got = rf.normalise_personality(raw)
    np.testing.assert_allclose(got[:2, 0], [0.6, 0.8], rtol=1e-6)
    np.testing.assert_allclose(got[:, 1], 2.0 / np.sqrt(32.0), rtol=1e-6)
    assert not got[:, 2].any()  # zero column stays zero (norm floored, no NaN)
    assert got.dtype == np.float32


@pytest.mark.parametrize("text,error", [
    ('{"a+0": [1, 2], "a+1": [1]}', r"\['a\+1'\]: vector of length 1, the first entry"),
    ('{"a+0": [1, 2], "a+0": [3, 4]}', r"\['a\+0'\]: duplicate key"),
    ('{"a+0": [1, true]}', r"\['a\+0'\]: expected a list of numbers"),
    ('{"a+0": [[1], [2]]}', r"\['a\+0'\]: expected a list of numbers"),
    ('{"a+0": ["1.5"]}', r"\['a\+0'\]: expected a list of numbers"),
    ('{"a+0": [1, NaN]}', r"NaN is not a JSON number"),
    ('{"a+0": [1e999]}', r"\['a\+0'\] holds NaN or inf"),
    ('{"a+0": [1, 2]', r":1:\d+: not valid JSON"),
    ('{"a+0": [1, 2]} x', r":1:17: not valid JSON \(extra data\)"),
    ('[1, 2]', r":1:1: not valid JSON \(expected '\{'"),
])
def test_vector_files_are_checked_entry_by_entry(tmp_path, text, error):
    path = tmp_path / "v.json"
    path.write_text(text)
    with pytest.raises(rf.MemorFormatError, match=error):
        rf.read_vectors(path)


def test_vector_files_tolerate_whitespace_and_empty_objects(tmp_path):
    path = tmp_path / "v.json"
    path.write_text(' {\n "a+0" :\n [1, 2.5e-1 ,-3] ,\t"b+1":[0,0,0]\n}\n')
    vecs, dim = rf.read_vectors(path)
    assert dim == 3 and list(vecs) == ["a+0", "b+1"]
    np.testing.assert_array_equal(vecs["a+0"], np.float32([1, 0.25, -3]))
    path.write_text("{ }")
    assert rf.read_vectors(path) == ({}, None)


# ----------------------------------------------------------------------------- rules
def test_target_segment_inside_several_and_nearest():
    info = _info([(0, 2), (2, 5), (4, 6)])
    assert rx.target_segment(info, 1.0) == (0, "inside")
    assert rx.target_segment(info, 2.0) == (1, "inside")  # [start, end): 2.0 is not in seg 0
    assert rx.target_segment(info, 4.5) == (1, "several")  # segments 1 and 2 overlap
    assert rx.target_segment(info, 6.0) == (2, "nearest")  # seg_end is excluded
    assert rx.target_segment(info, 9.0) == (2, "nearest")
    assert rx.target_segment(info, -1.0) == (0, "nearest")
    gap = _info([(0, 1), (3, 4), (7, 8)])
    assert rx.target_segment(gap, 2.0) == (0, "nearest")  # tie (1 s each side): the earlier
    assert rx.target_segment(gap, 2.1) == (1, "nearest")
    assert rx.target_segment(gap, 5.9) == (2, "nearest")


def test_frame_window_truncates_like_int():
    info = _info([(0, 1), (1, 2.5)], start=10.0)
    assert rx.frame_window(info, 0) == (0, 23)  # int(23.976)
    assert rx.frame_window(info, 1) == (23, 59)  # int(59.94)
    early = _info([(-1, 0.5)], start=10.0)  # a segment starting before the clip
    assert rx.frame_window(early, 0) == (-23, 11)


def _names(*groups):
    """[(frame, name)] from (character, frames) groups, in order."""
    return [(f, rf.SPEAKERS[c]) for c, frames in groups for f in frames]


def test_visual_window_and_threshold_by_hand():
    info = _info([(0, 1), (1, 2.5)], start=10.0)  # windows [0, 23] and [23, 59]
    names = _names((0, range(0, 11)),  # sheldon: 11 faces, all in segment 0
                   (4, range(23, 35)),  # penny: frame 23 in both windows, 12 in segment 1
                   (1, range(40, 50)))  # leonard: exactly 10 faces: not enough
    rng = np.random.default_rng(0)
    faces = rng.normal(size=(len(names), 4))
    objects, env = rng.normal(size=(80, 2)), rng.normal(size=(80, 3))
    out = {c: rx.visual_rows(info, names, faces, objects, env, c, 9) for c in (0, 4, 1, 5)}
    vec, present, empty = out[0]
    assert present.tolist() == [True, False] and empty == []
    want = np.concatenate([faces[0:11].mean(0), objects[0:23].mean(0), env[0:23].mean(0)])
    np.testing.assert_allclose(vec[0], want, rtol=1e-6)
    assert not vec[1].any()
    vec, present, _ = out[4]
    assert present.tolist() == [False, True]  # 1 face in segment 0, 12 in segment 1
    want = np.concatenate([faces[11:23].mean(0), objects[23:59].mean(0), env[23:59].mean(0)])
    np.testing.assert_allclose(vec[1], want, rtol=1e-6)
    assert not out[1][1].any() and not out[5][1].any()  # 10 faces; no faces


def test_visual_needs_more_than_ten_face_names_in_the_clip():
    info = _info([(0, 5)])
    names = _names((0, range(10)))
    vec, present, empty = rx.visual_rows(info, names, None, None, None, 0, 9)
    assert vec.shape == (1, 9) and not vec.any() and not present.any() and empty == []


def test_visual_slices_clamp_negative_starts_and_report_empty_ones():
    info = _info([(-1, 0.5), (0.5, 3)], start=10.0)  # windows [-23, 11] and [11, 71]
    names = _names((2, range(0, 11)), (2, range(30, 45)))
    rng = np.random.default_rng(1)
    faces = rng.normal(size=(len(names), 4))
    objects, env = rng.normal(size=(20, 2)), rng.normal(size=(20, 3))
    vec, present, empty = rx.visual_rows(info, names, faces, objects, env, 2, 9)
    # segment 0: rows 0:11 (not -23:11, which would count from the end)
    np.testing.assert_allclose(vec[0, 4:6], objects[0:11].mean(0), rtol=1e-6)
    assert present.tolist() == [True, True] and empty == []
    short = objects[:5], env[:5]  # segment 1's slice 11:71 of 5 frames is empty
    vec, present, empty = rx.visual_rows(info, names, faces, *short, 2, 9)
    assert present.tolist() == [True, False] and empty == [1] and not vec[1].any()


# ----------------------------------------------------------------------------- examples
def test_example_by_hand(tmp_path):
    # Segments spoken by penny (4), sheldon (0), others (7); amy (6) is the target and is
    # neither on screen nor speaking; segment 1's audio key is missing.
    clip = _clip("c1", [(0, 1), (1, 2), (2, 3)], [4, 0, 7], [4, 0], seg_ori_ind=[5, 6, 8],
                 audio=[0, 2], text=[0, 1], faces=[(f, 4) for f in range(0, 12)])
    annos = [rw.Annotation("c1", 6, 1.5, "fear", "anticipation"),
             rw.Annotation("c1", 0, 1.2, "joy", "joy")]
    root = _write(tmp_path, [clip], annos, [0, 1], [])
    release = rx.read_release(root)
    visual = rx.ClipVisual(release, "c1")
    ex = rx.annotation_example(release, 0, visual)
    assert ex["id"] == "c1#0" and ex["persons"].tolist() == [0, 4, 6]
    assert ex["target_person"] == 2 and ex["target_segment"] == 1
    assert ex["segment_speaker"].tolist() == [4, 0, 7]
    np.testing.assert_allclose(ex["segment_start"], [0, 1, 2])
    assert ex["audio_present"].tolist() == [[False] * 3, [True, False, False], [False] * 3]
    assert ex["text_present"].tolist() == [[False, True, False], [True, False, False],
                                           [False] * 3]
    np.testing.assert_array_equal(ex["audio"][1, 0], clip.audio[0])
    np.testing.assert_array_equal(ex["text"][0, 1], clip.text[1])
    assert not ex["audio"][0].any() and not ex["text"][2].any()
    assert ex["visual_present"].tolist() == [[False] * 3, [True, False, False], [False] * 3]
    want = np.concatenate([np.mean([f for _, _, f in clip.faces], 0),
                           clip.objects[0:23].mean(0), clip.environment[0:23].mean(0)])
    np.testing.assert_allclose(ex["visual"][1, 0], want, rtol=1e-6, atol=1e-7)
    norm = rf.normalise_personality(np.arange(40.0).reshape(8, 5) - 7.0)
    np.testing.assert_array_equal(ex["personality"], norm[[0, 4, 6]])
    assert (ex["label_primary"], ex["label_fine"]) == (rf.PRIMARY.index("fear"),
                                                        rf.FINE.index("anticipation"))
    assert not ex["speaks_in_segment"] and not ex["speaks_in_clip"]
    ex1 = rx.annotation_example(release, 1, visual)
    assert ex1["persons"].tolist() == [0, 4]  # amy of annotation 0 does not carry over
    assert ex1["speaks_in_segment"] and ex1["speaks_in_clip"]
    assert release.dims == {"audio": 3, "text": 2, "visual": 9, "face": 4, "object": 2,
                            "environment": 3, "personality": 5}


def test_text_of_a_person_speaking_must_exist_and_others_need_none(tmp_path):
    clip = _clip("c1", [(0, 1), (1, 2)], [0, 7], [0], text=[0])  # no text for "others"
    annos = [rw.Annotation("c1", 0, 0.5, "joy", "joy"),
             rw.Annotation("c1", 7, 1.5, "joy", "joy")]
    root = _write(tmp_path, [clip], annos, [0], [])
    rx.read_release(root)  # "others" (7) is in no listed annotation's persons
    (root / rf.ID_FILES["test"]).write_text("1\n")
    with pytest.raises(rf.MemorFormatError,
                       match=r"text_features\.json: missing key 'c1\+1' \(segment 1 of clip "
                             r"'c1', spoken by others; annotation 1 \(test_id\.txt:1\)\)"):
        rx.read_release(root)


def test_pt_files_are_read_once_per_clip(tmp_path, monkeypatch):
    faces = [(f, c) for c in (0, 1) for f in range(5, 20)]
    clips = [_clip("c1", [(0, 1), (1, 2)], [0, 1], [0, 1], faces=faces),
             _clip("c2", [(0, 1)], [2], [2], faces=faces[:10])]  # <= 10 faces: never read
    annos = [rw.Annotation("c1", c, m, "joy", "joy") for c in (0, 1, 2) for m in (0.5, 1.5)]
    annos.append(rw.Annotation("c2", 2, 0.5, "joy", "joy"))
    root = _write(tmp_path, clips, annos, list(range(7)), [])
    release = rx.read_release(root)
    calls = []
    read = rf.read_tensor
    monkeypatch.setattr(rf, "read_tensor", lambda p: calls.append(p.name) or read(p))
    for clip, indices in (("c1", range(6)), ("c2", [6])):
        visual = rx.ClipVisual(release, clip)
        for i in indices:
            rx.annotation_example(release, i, visual)
    assert calls == ["c1.pt"] * 3


def _reference_example(root, index):
    """The spec, read literally: loops over persons, segments and face names."""
    anno = json.loads((root / "anno.json").read_text())
    data = json.loads((root / "data.json").read_text())
    audio = json.loads((root / rf.AUDIO_FILE).read_text())
    text = json.loads((root / rf.TEXT_FILE).read_text())
    a = anno["primary"][index]
    d = data[a["clip"]]
    persons = sorted(set(d["on_character"]) | {a["character"]})
    names = (root / rf.FACE_NAMES_DIR / f"{a['clip']}.txt").read_text().strip().split("\t")
    names = [n for n in names if n]
    big = len(names) > 10
    if big:
        faces, objs, envs = (rf.read_tensor(rf.tensor_path(root, p, a["clip"]))
                             for p in rf.VISUAL_PARTS)
    s = len(d["seg_start"])
    out = {m: np.zeros((len(persons), s, DIMS_V[m])) for m in ("audio", "text", "visual")}
    pres = {m: np.zeros((len(persons), s), bool) for m in out}
    for p, c in enumerate(persons):
        for j in range(s):
            if d["speakers"][j] == c:
                key = f"{a['clip']}+{d['seg_ori_ind'][j]}"
                if key in audio:
                    out["audio"][p, j], pres["audio"][p, j] = audio[key], True
                out["text"][p, j], pres["text"][p, j] = text[f"{a['clip']}+{j}"], True
            if not big:
                continue
            b = int((d["seg_start"][j] - d["start"]) * FPS)
            e = int((d["seg_end"][j] - d["start"]) * FPS)
            rows = []
            for i, n in enumerate(names):
                frame, name = n[:-4].split("_")
                if b <= int(frame) <= e and name.lower() == rf.SPEAKERS[c]:
                    rows.append(faces[i])
            if len(rows) > 10 and len(objs[max(b, 0):max(e, 0)]):
                out["visual"][p, j] = np.concatenate([
                    np.mean(rows, 0), objs[max(b, 0):max(e, 0)].mean(0),
                    envs[max(b, 0):max(e, 0)].mean(0)])
                pres["visual"][p, j] = True
    return persons, out, pres


DIMS_V = {"audio": 3, "text": 2, "visual": 9}


def test_examples_match_a_plain_loop_reference_on_a_random_release(tmp_path):
    rng = np.random.default_rng(7)
    clips, annos = [], []
    for k in range(8):
        s = int(rng.integers(1, 5))
        edges = np.cumsum(rng.uniform(0.5, 2.5, size=s + 1))
        bounds = list(zip(edges[:-1] - edges[0], edges[1:] - edges[0]))
        speakers = rng.integers(0, 8, size=s).tolist()
        on = sorted(set(rng.integers(0, 8, size=int(rng.integers(0, 4))).tolist()))
        n_faces = int(rng.integers(0, 90))  # few characters, so that some pass the threshold
        faces = [(int(rng.integers(0, int(edges[-1] * FPS) + 3)), int(rng.integers(0, 3)))
                 for _ in range(n_faces)]
        audio = [j for j in range(s) if rng.random() < 0.7]
        clips.append(_clip(f"c{k}", bounds, speakers, on, start=float(rng.uniform(0, 50)),
                           faces=faces, audio=audio, seed=k,
                           n_frames=int(rng.integers(5, 120))))
        for _ in range(3):
            annos.append(rw.Annotation(f"c{k}", int(rng.integers(0, 4)),
                                       clips[-1].start + float(rng.uniform(-1, edges[-1])),
                                       "joy", "joy"))
    root = _write(tmp_path, clips, annos, list(range(0, len(annos), 2)),
                  list(range(1, len(annos), 2)))
    release = rx.read_release(root)
    seen = dict.fromkeys(("audio", "text", "visual"), 0)
    for i in release.listed:
        visual = rx.ClipVisual(release, annos[i].clip)
        ex = rx.annotation_example(release, i, visual)
        persons, out, pres = _reference_example(root, i)
        assert ex["persons"].tolist() == persons
        for m in out:
            assert ex[f"{m}_present"].tolist() == pres[m].tolist(), (i, m)
            np.testing.assert_allclose(ex[m], out[m], rtol=1e-5, atol=1e-6)
            seen[m] += int(pres[m].sum())
    assert min(seen.values()) > 0, seen  # every modality was present somewhere


# ----------------------------------------------------------------------------- splits
def _records(rows):
    return [rf.AnnoRecord(i, c, ch, m, 0, 0) for i, (c, ch, m) in enumerate(rows)]


def test_splits_and_overlap_by_hand():
    v, t1, t2 = VAL_NAMES[0], TRAIN_NAMES[0], TRAIN_NAMES[1]
    annos = _records([
        (v, 0, 1.0),  # 0 train (validation clip)
        (t1, 0, 2.0),  # 1 train, moment shared with 2
        (t1, 1, 2.0004),  # 2 test, same moment to 1 ms (2000)
        (t1, 2, 2.0006),  # 3 test, 2001 ms: another moment
        (t2, 0, 5.0),  # 4 train
        (t2, 1, 5.0),  # 5 train, same moment as 4, both in train: not shared
        (v, 3, 1.0),  # 6 test, shares the validation clip's moment with 0
        (t2, 4, 7.0),  # 7 in neither list
    ])
    ids = {"train": {0: 1, 1: 2, 4: 3, 5: 4}, "test": {2: 1, 3: 2, 6: 3}}
    assert rx.assign_splits(annos, ids, "official") == {
        "train": [1, 4, 5], "validation": [0], "test": [2, 3, 6]}
    assert rx.assign_splits(annos, ids, "moment_disjoint") == {
        "train": [4, 5], "validation": [], "test": [0, 1, 2, 3, 6]}
    overlap = rx.measure_overlap(annos, ids)
    # moments: (v,1000), (t1,2000), (t1,2001), (t2,5000) -> 4; shared: (v,1000), (t1,2000)
    assert {k: overlap[k] for k in ("moments", "shared_moments", "shared_clips",
                                    "affected_annotations")} == {
        "moments": 4, "shared_moments": 2, "shared_clips": 2, "affected_annotations": 4}
    assert overlap["examples"] == [{"clip": c, "moment_ms": ms}
                                   for c, ms in sorted([(t1, 2000), (v, 1000)])]
    counts = rx.class_counts(annos, {"train": [1, 4]})
    assert counts["train"]["primary"]["neutral"] == 2 and sum(counts["train"]["fine"].values()) == 2


def test_unknown_split_rule_is_refused():
    with pytest.raises(ValueError, match="unknown config"):
        rx.assign_splits([], {"train": {}, "test": {}}, "random")
