"""LIReC release layout: readers vs writers, webvtt edge cases, overlaps, candidate pairs."""

import itertools

import numpy as np
import pytest

from jaxaffect.families.lirec import release_format as lf
from jaxaffect.families.lirec import release_labels as rl
from tfds_builders.moviegraphs_lirec import lirec_examples as le
from tfds_builders.moviegraphs_lirec import lirec_release as lr


def test_round_trips(tmp_path):
    split = {"train": ["tt1", "tt2"], "val": ["tt3"], "test": ["tt4"]}
    rl.write_split(tmp_path / "s.json", split)
    assert rl.read_split(tmp_path / "s.json") == split
    rl.write_merged_interactions(tmp_path / "m.txt", [("talks to", ["talks", "chats"]),
                                                      ("hugs", [])])
    names, to = rl.read_merged_interactions(tmp_path / "m.txt")
    assert names == ["talks to", "hugs"] and to["chats"] == "talks to" and to["hugs"] == "hugs"
    rel = {"best friend": "friend", "father": "parent", "friend": "friend"}
    rl.write_relationship_map(tmp_path / "r.txt", rel)
    assert rl.read_relationship_map(tmp_path / "r.txt") == rel
    assert rl.relationship_names(rel) == ["parent", "friend"]
    rl.write_relationship_opposites(tmp_path / "o.txt", {"parent": "child"})
    assert rl.read_relationship_opposites(tmp_path / "o.txt") == {"parent": "child"}
    rl.write_org_res(tmp_path / "res.txt", {"tt1": (360, 640)})
    assert rl.read_org_res(tmp_path / "res.txt") == {"tt1": (360, 640)}
    times = np.arange(40) / 16
    lf.write_frame2time(tmp_path / "f.matidx", times)
    np.testing.assert_allclose(lf.read_frame2time(tmp_path / "f.matidx"), times, atol=1e-3)
    vis = np.random.default_rng(0).normal(size=(3, 4, 2, 2)).astype(np.float32)
    lf.write_visual(tmp_path / "v.npy", vis)
    np.testing.assert_array_equal(lf.read_visual(tmp_path / "v.npy"), vis)
    scene = "scene-007.ss-0001.es-0002"
    feats, toks = np.ones((3, 5), np.float32), ["[CLS]", "hi", "[SEP]"]
    lf.write_bert(tmp_path, "tt1", scene, feats, toks)
    assert lf.bert_paths(tmp_path, "tt1", scene)["tokens"].name == "tt1_007.token2idx"
    got, got_toks = lf.read_bert(tmp_path, "tt1", scene)
    np.testing.assert_array_equal(got, feats)
    assert got_toks == toks
    track = lf.FaceTrack(np.array([0, 8]), np.array([0.0, 0.5]),
                         np.array([[1, 2, 3, 4], [5, 6, 7, 8]], np.float32))
    lf.write_ftracks(tmp_path / "t.json", [track])
    (back,) = lf.read_ftracks(tmp_path / "t.json")
    np.testing.assert_array_equal(back.boxes, track.boxes)
    np.testing.assert_array_equal(back.frames, track.frames)
    lf.write_ftrack_ids(tmp_path / "ids.json", {scene: ["Ada", None]})
    assert lf.read_ftrack_ids(tmp_path / "ids.json") == {scene: ["ada", None]}
    lf.write_intersections(tmp_path / "i.csv", {"talks to": ["hugs", "a, b"]})
    assert lf.read_intersections(tmp_path / "i.csv") == {"talks to": ["hugs", "a, b"]}
    labels = rl.MovieLabels("tt1", (rl.InteractionRecord(
        "x", scene, 1.0, 2.5, "hugs", ("ada", "ben"), (("ada", "ben"), ("ben", None))),),
        (rl.RelationshipRecord(scene, "ada", "ben", "friend"),))
    rl.write_movie_labels(lf.labels_path(tmp_path, "tt1"), labels)
    assert rl.read_movie_labels(lf.labels_path(tmp_path, "tt1")) == labels
    cues = [lf.Cue(1.0, 2.5, ("- Hi.", "- Hello.")), lf.Cue(3661.25, 3662.0, ("Bye.",))]
    lf.write_webvtt(tmp_path / "d.webvtt", cues)
    assert lf.read_dialogs(tmp_path / "d.webvtt") == cues


def test_webvtt_edge_cases():
    text = ("\ufeffWEBVTT\n\nNOTE a comment\n\n1\n00:00:01.000 --> 00:00:02.500 align:start\n"
            "I was going...\n\n00:00:03.000 --> 00:00:04.000\nto say <i>hi</i>.\n\n"
            "00:05.5 --> 00:06,25\r\n[music]\r\n\r\n"
            "00:00:07.000 --> 00:00:08.000\nNo trailing blank line")
    cues = lf.parse_webvtt(text)
    assert cues == [lf.Cue(1.0, 4.0, ("I was going", "to say <i>hi</i>.")),
                    lf.Cue(5.5, 6.25, ("[music]",)),
                    lf.Cue(7.0, 8.0, ("No trailing blank line",))]
    assert lf.parse_webvtt("WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nend...") == [
        lf.Cue(1.0, 2.0, ("end",))]
    with pytest.raises(lf.LirecFormatError, match=r"x\.webvtt:3: bad cue timing"):
        lf.parse_webvtt("WEBVTT\n\n00:00:0x --> 00:00:02.000\n", "x.webvtt")
    with pytest.raises(lf.LirecFormatError, match="ends before it starts"):
        lf.parse_webvtt("00:00:03.000 --> 00:00:02.000\nhi\n")


def test_cue_token_alignment_skips_empty_cues():
    cues = [lf.Cue(0, 1, ("a b",)), lf.Cue(2, 3, ("[music]",)), lf.Cue(4, 5, ("c",))]
    tokens = ["[CLS]", "a", "b", "[SEP]", "[CLS]", "c", "[SEP]"]
    ranges = lr.cue_token_ranges(cues, tokens)
    assert ranges == [range(0, 4), range(0), range(4, 7)]
    assert le.clip_token_rows(cues, ranges, 1.0, 2.5) == [0, 1, 2, 3]
    assert lr.cue_token_ranges(cues, ["[CLS]", "x"]) is None


def test_bad_inputs_name_the_file(tmp_path):
    (tmp_path / "f.matidx").write_text("0 0.0\n2 0.1\n")
    with pytest.raises(lf.LirecFormatError, match=r"f\.matidx: frames must be numbered"):
        lf.read_frame2time(tmp_path / "f.matidx")
    (tmp_path / "t.token2idx").write_text("[CLS] 0\nhi 5\n")
    with pytest.raises(lf.LirecFormatError, match=r"t\.token2idx:2"):
        lf.read_token2idx(tmp_path / "t.token2idx")
    np.save(tmp_path / "v.npy", np.array([[np.nan]]))
    with pytest.raises(lf.LirecFormatError, match=r"v\.npy: array holds NaN"):
        lf.read_visual(tmp_path / "v.npy")
    (tmp_path / "s.json").write_text('{"train": ["a"], "test": ["a"]}')
    with pytest.raises(lf.LirecFormatError, match=r"s\.json: movie 'a' is in both"):
        rl.read_split(tmp_path / "s.json")
    with pytest.raises(lf.LirecFormatError, match=r"nope\.json: file not found"):
        rl.read_movie_labels(tmp_path / "nope.json")
    (tmp_path / "l.json").write_text('{"movie_id": "tt1", "interactions": [{"id": 1}]}')
    with pytest.raises(lf.LirecFormatError,
                       match=r"l\.json: interactions\[0\]: missing key 'scene'"):
        rl.read_movie_labels(tmp_path / "l.json")


def test_ids_paths_text_and_numbers_are_checked(tmp_path):
    for bad in ("", ".", "..", "a/b", "..\\x", "/abs", " tt1"):
        with pytest.raises(lf.LirecFormatError, match=r"s\.json: split 'train'"):
            lf.check_plain_name(bad, "s.json: split 'train'")
    assert lf.check_plain_name("tt0032138", "x") == "tt0032138"
    with pytest.raises(lf.LirecFormatError, match=r"leaves the release folder"):
        lf.release_path(tmp_path, "a/../../b", "x.json: key")
    assert lf.visual_path(tmp_path, "tt1", "scene-001.a") == (
        tmp_path / lf.VISUAL_DIR / "tt1" / "scene-001.a.npy")
    (tmp_path / "d.webvtt").write_bytes("WEBVTT\n\n00:01.000 --> 00:02.000\nOl\u00e9\n"
                                        .encode("latin-1"))
    with pytest.raises(lf.LirecEncodingError, match=r"d\.webvtt:4: not UTF-8"):
        lf.read_dialogs(tmp_path / "d.webvtt")
    (tmp_path / "n.json").write_text('{"a": [1, NaN]}')
    with pytest.raises(lf.LirecFormatError, match=r"n\.json: not valid JSON \(NaN"):
        lf.read_json(tmp_path / "n.json")
    for bad in ("1", None, True, float("inf")):
        with pytest.raises(lf.LirecFormatError, match=r"t\.json: ftracks\[0\]\[0\]\['x'\]"):
            lf.json_number(bad, "t.json: ftracks[0][0]['x']")
    with pytest.raises(lf.LirecFormatError, match="whole number"):
        lf.json_number(2.5, "f", integer=True)


def test_overlap_matrix_matches_a_loop():
    rng = np.random.default_rng(0)
    starts = rng.integers(0, 30, 40).astype(float)
    ends = starts + rng.integers(0, 10, 40)
    groups = rng.integers(0, 3, 40).tolist()
    got = le.overlap_matrix(starts, ends, groups)
    for i, j in itertools.product(range(40), repeat=2):
        iou = le.temporal_iou((starts[i], ends[i]), (starts[j], ends[j]))
        assert got[i, j] == (i == j or (groups[i] == groups[j] and iou > 0.2)), (i, j)
    assert le.temporal_iou((0, 10), (8, 12)) == pytest.approx(2 / 12)
    labels = rng.integers(0, 5, 40)
    lab = le.overlap_labels(got, labels, 5)
    for i in range(40):
        assert set(np.nonzero(lab[i])[0]) == {labels[j] for j in range(40) if got[i, j]}


def test_candidate_pairs_rule():
    pairs, t = le.candidate_pairs(["c", "a", "b"], ("b", "a"), {})
    assert pairs == list(itertools.permutations(["a", "b", "c"], 2)) and pairs[t] == ("b", "a")
    chars = [f"p{i}" for i in range(8)]
    presence = {c: float(i) for i, c in enumerate(chars)}
    pairs, t = le.candidate_pairs(chars, ("p0", "p1"), presence)
    kept = sorted({c for p in pairs for c in p})
    assert len(pairs) == 20 and kept == ["p0", "p1", "p5", "p6", "p7"]
    assert pairs[t] == ("p0", "p1")
    assert le.candidate_pairs(["a"], None, {}) == ([], -1)


def test_feature_steps_and_person_box():
    times = np.arange(64) / 16.0  # 4 steps of 16 frames
    np.testing.assert_array_equal(le.feature_steps(times, 1.0, 2.5, 4), [1, 2])
    np.testing.assert_array_equal(le.feature_steps(times, 1.0, 9.0, 3), [1, 2])
    # A face whose person box lies in the lower-right cell of a 2x2 grid over 360x640.
    face = 2 * np.array([320 + 40 + 0.35 * 200, 180 + 10 + 0.10 * 150, 60, 22.5])
    assert le.person_grid_box(face, (360, 640), (2, 2)) == (1, 2, 1, 2)
