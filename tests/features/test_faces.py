"""jaxaffect.features.faces: IoU tracking on synthetic boxes, main-track choice, crops, and the
Haar detector on a real photograph (matplotlib's public-domain sample `grace_hopper.jpg`)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from PIL import Image

from jaxaffect.errors import FormatError
from jaxaffect.features import faces


def _box(x: float, y: float, side: float) -> np.ndarray:
    return np.array([x, y, x + side, y + side], np.float32)


def _per_frame(*tracks: dict[int, np.ndarray], n: int) -> list[np.ndarray]:
    """Boxes of each frame from {frame: box} maps, sorted as the detector sorts them."""
    out = []
    for t in range(n):
        found = [tr[t] for tr in tracks if t in tr]
        out.append(faces._sorted_boxes(np.array(found, np.float32).reshape(-1, 4)))
    return out


def _iou_loop(a, b) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - iw * ih
    return iw * ih / union if union > 0 else 0.0


def test_iou_matches_loop_reference():
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 50, (9, 2))
    a = np.concatenate([xy, xy + rng.uniform(1, 30, (9, 2))], axis=1)
    b = a[rng.permutation(9)[:5]] + rng.uniform(-5, 5, (5, 4))
    b[0] = [10, 10, 10, 20]  # zero area
    got = faces.iou(a, b)
    expected = [[_iou_loop(p, q) for q in b] for p in a]
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert faces.iou(a, np.zeros((0, 4))).shape == (9, 0)


def test_crossing_boxes_of_different_sizes_keep_identity():
    n = 40
    big = {t: _box(3 * t, 50, 40) for t in range(n)}
    small = {t: _box(150 - 3 * t, 62, 24) for t in range(n)}  # passes through the big one
    tracks = faces.track_faces(_per_frame(big, small, n=n))
    assert len(tracks) == 2
    by_start_x = sorted(tracks, key=lambda tr: tr.boxes[0, 0])
    for track, truth in zip(by_start_x, (big, small)):
        np.testing.assert_array_equal(track.frames, np.arange(n))
        np.testing.assert_array_equal(track.boxes, np.stack([truth[t] for t in range(n)]))
    assert tracks[0].boxes[0, 0] == 0  # created in box order: x0 = 0 before x0 = 150


def test_gap_shorter_and_longer_than_max_gap():
    n = 30
    short_gap = {t: _box(2 * t, 10, 30) for t in range(n) if not 10 <= t < 13}
    tracks = faces.track_faces(_per_frame(short_gap, n=n), max_gap=5)
    assert len(tracks) == 1 and len(tracks[0]) == n - 3
    np.testing.assert_allclose(tracks[0].box_at(11), _box(22, 10, 30))  # interpolated
    np.testing.assert_array_equal(tracks[0].box_at(9), short_gap[9])
    assert tracks[0].box_at(-1) is None and tracks[0].box_at(n) is None
    long_gap = {t: _box(0.5 * t, 10, 30) for t in range(n) if not 10 <= t < 17}
    tracks = faces.track_faces(_per_frame(long_gap, n=n), max_gap=5)
    assert [(tr.start, tr.end) for tr in tracks] == [(0, 10), (17, n)]
    assert len(faces.track_faces(_per_frame(long_gap, n=n), max_gap=7)) == 1


def test_spurious_detection_is_its_own_short_track():
    n = 20
    a = {t: _box(10, 10, 30) for t in range(n)}
    b = {t: _box(100, 20, 28) for t in range(3, n)}
    spurious = {7: _box(60, 60, 10)}
    tracks = faces.track_faces(_per_frame(a, b, spurious, n=n))
    assert [(tr.start, len(tr)) for tr in tracks] == [(0, n), (3, n - 3), (7, 1)]
    chosen = faces.main_tracks(tracks, k=2)
    assert [tr.start for tr in chosen] == [0, 3]
    assert faces.track_faces([np.zeros((0, 4))] * 3) == []


def test_greedy_takes_highest_iou_first():
    # Frame 1 has one box that overlaps both tracks; the closer track gets it.
    frames = [np.array([[0, 0, 10, 10], [6, 0, 16, 10]], np.float32),
              np.array([[5, 0, 15, 10]], np.float32)]
    tracks = faces.track_faces(frames, iou_threshold=0.1)
    assert [list(tr.frames) for tr in tracks] == [[0], [0, 1]]


def _track(start: int, n: int) -> faces.Track:
    frames = np.arange(start, start + n)
    return faces.Track(frames, np.tile(_box(0, 0, 10), (n, 1)))


def test_main_tracks_ranking_and_order():
    tracks = [_track(0, 3), _track(5, 10), _track(2, 10), _track(1, 1), _track(4, 10)]
    chosen = faces.main_tracks(tracks, k=2)
    assert [(tr.start, len(tr)) for tr in chosen] == [(2, 10), (4, 10)]  # ties: earlier start
    assert [tr.start for tr in faces.main_tracks(tracks, k=10)] == [0, 1, 2, 4, 5]
    assert faces.main_tracks([], k=2) == []


def _frame() -> np.ndarray:
    y, x = np.mgrid[:60, :80]
    return np.stack([x * 3, y * 4, (x + y) * 2], -1).astype(np.uint8)


def test_crop_inside_matches_pil_reference():
    frame = _frame()
    got = faces.crop(frame, [20, 10, 40, 30], size=16, margin=0.2)  # 20 x 20 box: 4 px margin
    region = Image.fromarray(frame[6:34, 16:44])
    expected = np.asarray(region.resize((16, 16), Image.Resampling.BILINEAR))
    assert got.dtype == np.uint8 and got.shape == (16, 16, 3)
    np.testing.assert_array_equal(got, expected)
    fractional = faces.crop(frame, [20.5, 10.2, 39.7, 30], size=16, margin=0.0)
    ref = Image.fromarray(frame[10:30, 20:40]).resize((16, 16), Image.Resampling.BILINEAR)
    np.testing.assert_array_equal(fractional, np.asarray(ref))  # rounded outwards


def test_crop_edges():
    frame = _frame()
    corner = faces.crop(frame, [-10, -10, 10, 10], size=8, margin=0.5)
    ref = Image.fromarray(frame[0:20, 0:20]).resize((8, 8), Image.Resampling.BILINEAR)
    np.testing.assert_array_equal(corner, np.asarray(ref))
    whole = faces.crop(frame, [-100, -100, 500, 500], size=8)
    ref = Image.fromarray(frame).resize((8, 8), Image.Resampling.BILINEAR)
    np.testing.assert_array_equal(whole, np.asarray(ref))
    for outside in ([90, 10, 120, 40], [10, 10, 10, 10], [-30, -30, -5, -5]):
        with pytest.raises(ValueError, match="does not overlap"):
            faces.crop(frame, outside, margin=0.1)


def _grace_hopper(short_side: int = 224) -> np.ndarray:
    cbook = pytest.importorskip("matplotlib.cbook")
    with Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as image:
        w, h = image.size  # 512 x 600
        return np.asarray(image.convert("RGB").resize(
            (short_side, round(h * short_side / w)), Image.Resampling.BILINEAR))


def test_detector_finds_the_face_in_a_photograph():
    pytest.importorskip("cv2")
    image = _grace_hopper()
    detector = faces.FaceDetector()
    boxes = detector.detect(image)
    assert boxes.dtype == np.float32 and boxes.shape == (1, 4)
    x0, y0, x1, y1 = boxes[0]
    assert 50 < (x0 + x1) / 2 < 150 and 40 < (y0 + y1) / 2 < 130  # the face, upper middle
    assert 60 < x1 - x0 < 140
    np.testing.assert_array_equal(detector.detect(image), boxes)  # deterministic
    blank = detector.detect(np.full((120, 160, 3), 128, np.uint8))
    assert blank.shape == (0, 4) and blank.dtype == np.float32


class _FakeCascade:
    def detectMultiScale(self, grey, scaleFactor, minNeighbors, minSize):  # noqa: N802, N803
        self.min_size = minSize
        return np.array([[50, 5, 30, 30], [10, 20, 12, 12], [10, 4, 12, 12], [-2, 40, 10, 30]])


def test_detector_clips_and_sorts(monkeypatch):
    pytest.importorskip("cv2")
    detector = faces.FaceDetector(min_size_fraction=0.1)
    fake = _FakeCascade()
    monkeypatch.setattr(detector, "_cascade", fake)
    boxes = detector.detect(np.zeros((60, 70, 3), np.uint8))
    np.testing.assert_array_equal(boxes, [[0, 40, 8, 60], [10, 4, 22, 16], [10, 20, 22, 32],
                                          [50, 5, 70, 35]])
    assert fake.min_size == (6, 6)
    with pytest.raises(ValueError, match="uint8"):
        detector.detect(np.zeros((60, 70), np.uint8))


def test_missing_opencv_or_cascade_is_one_line(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "cv2", None)
    with pytest.raises(FormatError, match="opencv-python-headless") as info:
        faces.FaceDetector()
    assert "\n" not in str(info.value)
    monkeypatch.undo()
    pytest.importorskip("cv2")
    bad = tmp_path / "cascade.xml"
    bad.write_text("<opencv_storage></opencv_storage>")
    for path in (bad, tmp_path / "missing.xml"):
        with pytest.raises(faces.FaceDetectorError, match="not a readable Haar cascade"):
            faces.FaceDetector(cascade_path=path)


def test_face_descriptor_is_crop_colour_and_mean_geometry():
    from jaxaffect.features import visual

    rng = np.random.default_rng(5)
    frames = [rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for _ in range(3)]
    boxes = np.array([[8, 4, 24, 20], [10, 6, 30, 26], [40, 10, 60, 40]], np.float32)
    got = faces.face_descriptor(frames, boxes, size=16)
    assert got.shape == (faces.face_descriptor_dim(),) and got.dtype == np.float32
    crops = np.stack([faces.crop(f, b, size=16) for f, b in zip(frames, boxes)])
    np.testing.assert_array_equal(got[:visual.COLOUR_DIM], visual.colour_descriptor(crops))
    ref = np.mean([[(b[0] + b[2]) / 2 / 64, (b[1] + b[3]) / 2 / 48, (b[2] - b[0]) / 64,
                    (b[3] - b[1]) / 48] for b in boxes.astype(float)], axis=0)
    np.testing.assert_allclose(got[visual.COLOUR_DIM:], ref, rtol=1e-6)
