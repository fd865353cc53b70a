"""Regenerates this dummy manual_dir (deterministic): python make_dummy_data.py

English comments for the `custom` config (lexicon.tsv here), tiny random features:

* av1001: 100 s (50 segments x 2 s) -> K = 3; one bad `p` line, comments dropped by every
  filter stage, an audio mask with absent segments.
* av1002: 45 s (15 x 3 s) -> K = 2; one comment after the end of the features.
* av1003: truncated XML -> a problem with file and line, no comments -> skipped.
* av1004: good comments, no feature file -> skipped.
* av1005: good comments, image features of another size than the first video -> skipped.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from jaxaffect.families.tam.video_features import write_video

ROOT = Path(__file__).parent
DIMS = {"image": 4, "motion": 3, "audio": 2}  # distinct: shape mix-ups show
HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n<i><chatserver>chat.bilibili.com</chatserver>\n'
LEXICON = [("happy", "joy"), ("love", "joy"), ("great", "good"), ("sad", "sadness"),
           ("scary", "fear"), ("angry", "anger"), ("wow", "surprise"), ("love", "good")]

COMMENTS = {
    "av1001": [
        (5.0, "so happy to see this"),
        (5.5, "so happy to see this"),  # duplicate within 1 s: dropped
        (8.25, "Happy, happy day!"),
        (12.0, "this part is scary"),
        (13.0, "nothing to feel here"),  # no lexicon word: dropped
        (20.0, "so happy"),  # 2 words: dropped by the length stage
        (40.5, "I love this song"),
        (44.0, "what a great shot"),
        (46.0, "wow 666 great"),  # digits: dropped
        (50.0, "sad ending for him ^_^"),  # special characters: dropped
        (52.0, "this is so sad"),
        (75.0, "wow that was scary"),
        (80.0, "Why so angry now?"),
        (95.5, "love love love it"),
    ],
    "av1002": [
        (2.0, "great start love it"),
        (10.0, "that is sad really"),
        (30.0, "wow wow so great"),
        (40.0, "I am happy again"),
        (47.0, "happy after the end"),  # after 45 s of features: dropped
    ],
    "av1004": [(3.0, "happy with no features"), (9.0, "sad with no features")],
    "av1005": [(3.0, "happy but wrong sizes"), (9.0, "sad but wrong sizes")],
}


def _d(t: float, text: str, row: int) -> str:
    return f'<d p="{t},1,25,16777215,{1600000000 + row},0,9f8e7d6c,{row}">{text}</d>\n'


def _xml(comments: list[tuple[float, str]], bad_line_after: int | None = None) -> str:
    body = HEAD
    for i, (t, text) in enumerate(comments):
        body += _d(t, text, 1000 + i)
        if i == bad_line_after:
            body += '<d p="later,1,25,16777215,1600000000,0,9f8e7d6c,7">happy but bad p</d>\n'
    return body + "</i>\n"


def main() -> None:
    rng = np.random.default_rng(20220610)
    (ROOT / "lexicon.tsv").write_text(
        "# word<TAB>category\n" + "".join(f"{w}\t{c}\n" for w, c in LEXICON), encoding="utf-8")
    danmaku = ROOT / "danmaku"
    danmaku.mkdir(exist_ok=True)
    (danmaku / "av1001.xml").write_text(_xml(COMMENTS["av1001"], bad_line_after=3), "utf-8")
    for vid in ("av1002", "av1004", "av1005"):
        (danmaku / f"{vid}.xml").write_text(_xml(COMMENTS[vid]), "utf-8")
    truncated = _xml([(1.0, "happy happy happy"), (2.0, "sad sad sad")])
    (danmaku / "av1003.xml").write_text(truncated[: truncated.rindex("</d>") - 3], "utf-8")

    def features(steps: int, dims: dict[str, int]) -> dict[str, np.ndarray]:
        return {s: rng.normal(size=(steps, d)).astype(np.float16).astype(np.float32)
                for s, d in dims.items()}

    feats = features(50, DIMS)
    masks = {s: np.ones(50, bool) for s in DIMS}
    masks["audio"][10:13] = False
    feats["audio"][10:13] = 0.0
    _write(ROOT / "features" / "av1001.npz", feats, masks, 2.0)
    _write(ROOT / "features" / "av1002.npz", features(15, DIMS), None, 3.0)
    _write(ROOT / "features" / "av1005.npz", features(6, {**DIMS, "image": 5}), None, 2.0)


def _write(path: Path, feats, masks, segment_seconds: float) -> None:
    """affect_video.write_video plus the scalar `segment_seconds`."""
    write_video(path, feats, masks)
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    with path.open("wb") as f:
        np.savez(f, **arrays, segment_seconds=np.float32(segment_seconds))


if __name__ == "__main__":
    main()
