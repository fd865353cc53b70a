"""The generative process of the synthetic MEmoR-layout corpus (no file I/O here).

A corpus-wide `World` holds the class prototypes of every stream, the characters' identities
and personalities, and each character's emotion bias and susceptibility (linear functions of
its personality vector). `draw_clip` draws one clip: a cast of 2-4 of the 8 characters over 2-5
contiguous segments, a speaker per segment, a latent fine-grained emotion per (character,
segment) that persists across segments (intra-personal), is taken over from the segment's
speaker by listeners (inter-personal; how readily depends on the listener's personality) and is
otherwise drawn from the character's personality-biased prior (external knowledge); then the
features the release holds (speaker-only audio and text, face rows of visible persons,
per-frame object and environment rows) and the annotated moments. The latent states travel
with the clip (`ClipDraw.emotions`) so tests can check every annotation.
docs/synthetic_memor.md documents the process and its parameters.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from jaxaffect.families.amer.release_examples import FACE_THRESHOLD, FPS
from jaxaffect.families.amer.release_format import FINE, PRIMARY, SPEAKERS

# Plutchik's wheel: each added fine-grained emotion is a milder intensity of one primary.
FINE_TO_PRIMARY: dict[str, str] = {
    **{p: p for p in PRIMARY}, "serenity": "joy", "interest": "anticipation",
    "annoyance": "anger", "boredom": "disgust", "distraction": "surprise"}
PRIMARY_OF: np.ndarray = np.asarray([PRIMARY.index(FINE_TO_PRIMARY[f]) for f in FINE])

DEFAULT_DIMS: dict[str, int] = {"audio": 32, "text": 24, "face": 16, "object": 8,
                                "environment": 8, "personality": 118}

# Class prior of the fine-grained emotions (our choice: neutral and joy frequent, a long tail,
# the shape of the paper's Fig. 3a, not its numbers).
FINE_PRIOR: dict[str, float] = {
    "neutral": 0.20, "joy": 0.15, "anger": 0.07, "disgust": 0.03, "sadness": 0.05,
    "surprise": 0.10, "fear": 0.04, "anticipation": 0.05, "trust": 0.03, "serenity": 0.05,
    "interest": 0.07, "annoyance": 0.08, "boredom": 0.04, "distraction": 0.04}
# How often each character is cast (main characters more than "others").
CAST_WEIGHTS: tuple[float, ...] = (1.3, 1.3, 1.0, 1.0, 1.3, 0.8, 0.8, 0.5)

PROCESS: dict[str, float] = {
    # clip shape
    "min_segments": 2, "max_segments": 5, "min_cast": 2, "max_cast": 4,
    "min_segment_seconds": 2.0, "max_segment_seconds": 7.0,
    "same_speaker_prob": 0.3,  # the next segment keeps its speaker
    "offscreen_target_prob": 0.1,  # a silent cast member left out of on_character
    # latent emotions
    "persist_prob": 0.7,  # intra-personal: keep the previous segment's emotion
    "propagate_prob": 0.7,  # inter-personal: a listener takes the speaker's emotion (mean)
    "susceptibility_scale": 1.5,  # std (logit) of a character's propagate prob (personality)
    "personality_scale": 3.0,  # std of a character's log-prior bias (from its personality)
    "listener_neutral_logit": 0.3,  # listeners lean neutral when drawing from their prior
    # modalities
    "missing_audio_prob": 0.1,  # a speaker segment whose audio key is absent
    "visual_clip_prob": 0.65,  # the clip has face detections at all
    "speaker_visible_prob": 0.6, "listener_visible_prob": 0.35,
    "glimpse_prob": 0.3,  # an invisible entry still gets 1-10 faces (below the threshold)
    "min_faces": 11, "max_faces": 24,
    # features: amplitude (norm of a class prototype) and per-value noise std
    "text_amplitude": 1.3, "text_noise": 0.8,
    "audio_amplitude": 1.0, "audio_noise": 0.8,
    "face_amplitude": 1.2, "face_noise": 1.5,  # per face row (averaged over >10 rows)
    "object_amplitude": 0.5, "object_noise": 1.0,  # per frame; carries the speaker's emotion
    "environment_noise": 1.0, "location_std": 0.8, "num_locations": 6,
    "identity_std": 0.4,  # a character's offset in audio and face rows
    "fine_offset": 0.7,  # weight of a fine emotion's own direction on its primary's prototype
    # annotations
    "second_moment_prob": 0.1,  # a clip with two emotion moments
    "outside_moment_prob": 0.02,  # a moment just outside every segment (-> nearest segment)
}
ANNOTATIONS_PER_MOMENT: tuple[float, ...] = (0.6, 0.3, 0.1)  # P(1), P(2), P(3) characters
TALKERS: tuple[float, ...] = (0.2, 0.5, 0.3)  # P(1), P(2), P(3) speaking characters in a clip


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


@dataclasses.dataclass(frozen=True)
class World:
    """What every clip of a corpus shares (drawn from the seed)."""

    dims: dict[str, int]
    prototypes: dict[str, np.ndarray]  # stream -> [14, d] unit rows (audio, text, face, object)
    identity: dict[str, np.ndarray]  # stream -> [8, d] character offsets (audio, face)
    locations: dict[str, np.ndarray]  # stream -> [num_locations, d] (object, environment)
    personality: np.ndarray  # [8, Dp] raw personality vectors (the csv)
    bias: np.ndarray  # [8, 14] log-prior offsets, a linear function of `personality`
    susceptibility: np.ndarray  # [8] a listener's propagate prob, set by its personality
    log_prior: np.ndarray  # [14], with `bias` averaging to FINE_PRIOR over the characters


def make_world(seed: int, dims: dict[str, int]) -> World:
    rng = np.random.default_rng([seed, 0])
    n_fine, n_char = len(FINE), len(SPEAKERS)
    prototypes = {}
    for s in ("audio", "text", "face", "object"):
        primary = _unit(rng.normal(size=(len(PRIMARY), dims[s])))
        own = _unit(rng.normal(size=(n_fine, dims[s])))
        prototypes[s] = _unit(primary[PRIMARY_OF] + PROCESS["fine_offset"] * own)
    identity = {s: PROCESS["identity_std"] * rng.normal(size=(n_char, dims[s]))
                for s in ("audio", "face")}
    n_loc = int(PROCESS["num_locations"])
    locations = {s: PROCESS["location_std"] * rng.normal(size=(n_loc, dims[s]))
                 for s in ("object", "environment")}
    # Raw personality: per-column location and scale differ (the reader L2-normalises columns).
    personality = (rng.normal(size=(n_char, dims["personality"]))
                   * rng.uniform(0.5, 3.0, size=dims["personality"])
                   + rng.normal(0.0, 2.0, size=dims["personality"]))
    z = (personality - personality.mean(0)) / (personality.std(0) + 1e-9)
    mix = rng.normal(size=(dims["personality"], n_fine))
    bias = z @ mix
    bias = PROCESS["personality_scale"] * (bias - bias.mean(0)) / (bias.std(0) + 1e-9)
    s = z @ rng.normal(size=dims["personality"])
    s = PROCESS["susceptibility_scale"] * (s - s.mean()) / (s.std() + 1e-9)
    p0 = PROCESS["propagate_prob"]
    susceptibility = 1.0 / (1.0 + np.exp(-(np.log(p0 / (1.0 - p0)) + s)))
    # Per-class offsets so that the average over the characters of their biased priors is
    # FINE_PRIOR: personality decides who feels what, not how often an emotion occurs.
    target = np.log(np.asarray([FINE_PRIOR[f] for f in FINE]))
    log_prior = target.copy()
    for _ in range(100):
        z = log_prior + bias
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        log_prior += target - np.log(p.mean(0))
    return World(dict(dims), prototypes, identity, locations, personality, bias,
                 susceptibility, log_prior)


@dataclasses.dataclass(frozen=True)
class Target:
    """One annotation: a character at a moment, with the latent segment and emotion."""

    character: int
    moment: float
    segment: int  # the segment the reader should pick (nearest one for outside moments)
    fine: int  # FINE index; the latent emotion of `character` in `segment`
    outside: bool  # the moment lies outside every segment


@dataclasses.dataclass(frozen=True)
class ClipDraw:
    """A drawn clip: what the release holds plus the latent states behind it."""

    clip: str
    start: float
    seg_start: list[float]
    seg_end: list[float]
    seg_ori_ind: list[int]
    speakers: list[int]
    on_character: list[int]
    cast: list[int]  # sorted character ids, on_character plus an off-screen member if any
    emotions: np.ndarray  # [len(cast), S] FINE indices
    visible: np.ndarray  # [len(cast), S] bool: more than FACE_THRESHOLD faces in the window
    audio: dict[int, np.ndarray]  # segment index j -> vector (speaker segments with audio)
    text: dict[int, np.ndarray]  # segment index j -> vector (every segment)
    faces: list[tuple[int, int, np.ndarray]]  # (frame, character, vector)
    objects: np.ndarray  # [n_frames, Do]
    environment: np.ndarray  # [n_frames, De]
    targets: list[Target]


def frame_window(start: float, seg_start: float, seg_end: float) -> tuple[int, int]:
    """The reader's frame window [b, e] of a segment (faces: b <= frame <= e; rows: [b:e])."""
    return int((seg_start - start) * FPS), int((seg_end - start) * FPS)


def _segments(rng: np.random.Generator) -> tuple[float, list[float], list[float]]:
    n = int(rng.integers(PROCESS["min_segments"], PROCESS["max_segments"] + 1))
    start = round(float(rng.uniform(10.0, 1200.0)), 2)
    lengths = rng.uniform(PROCESS["min_segment_seconds"], PROCESS["max_segment_seconds"], n)
    edges = np.round(start + np.concatenate([[0.0], np.cumsum(lengths)]), 2)
    return start, edges[:-1].tolist(), edges[1:].tolist()


def _speakers(rng: np.random.Generator, on_character: list[int], n_seg: int) -> list[int]:
    """The speaker of each segment, among 1-3 "talkers" of the clip (the others only listen)."""
    w = np.asarray(TALKERS[:len(on_character)])
    k = int(rng.choice(len(w), p=w / w.sum())) + 1
    talkers = sorted(rng.choice(on_character, size=k, replace=False).tolist())
    out = [int(rng.choice(talkers))]
    for _ in range(1, n_seg):
        if k == 1 or rng.random() < PROCESS["same_speaker_prob"]:
            out.append(out[-1])
        else:
            out.append(int(rng.choice([c for c in talkers if c != out[-1]])))
    return out


def sample_emotions(rng: np.random.Generator, world: World, cast: list[int],
                    speakers: list[int]) -> np.ndarray:
    """[len(cast), S] latent emotions. Per segment the speaker goes first: it keeps its previous
    emotion (persist_prob) or draws from its personality-biased prior; each listener keeps its
    previous emotion (persist_prob), else takes the speaker's (with its susceptibility, a
    probability set by its personality around propagate_prob), else draws from its prior with
    neutral favoured."""
    n_seg = len(speakers)
    e = np.full((len(cast), n_seg), -1, np.int64)
    neutral = np.eye(len(FINE))[FINE.index("neutral")] * PROCESS["listener_neutral_logit"]
    for j in range(n_seg):
        sp = cast.index(speakers[j])
        for p in [sp] + [q for q in range(len(cast)) if q != sp]:
            if j > 0 and rng.random() < PROCESS["persist_prob"]:
                e[p, j] = e[p, j - 1]
            elif p != sp and rng.random() < world.susceptibility[cast[p]]:
                e[p, j] = e[sp, j]
            else:
                logits = world.log_prior + world.bias[cast[p]] + (neutral if p != sp else 0.0)
                prob = np.exp(logits - logits.max())
                e[p, j] = int(rng.choice(len(FINE), p=prob / prob.sum()))
    return e


def _visual(rng: np.random.Generator, world: World, cast: list[int], on_character: list[int],
            speakers: list[int], emotions: np.ndarray, start: float, seg_start: list[float],
            seg_end: list[float]) -> tuple[np.ndarray, list[tuple[int, int, np.ndarray]]]:
    """Which entries are visible, and their face rows (frames strictly inside the window)."""
    n_seg = len(speakers)
    visible = np.zeros((len(cast), n_seg), bool)
    faces: list[tuple[int, int, np.ndarray]] = []
    has_visual = rng.random() < PROCESS["visual_clip_prob"]
    glimpses_left = int(rng.integers(0, FACE_THRESHOLD + 1))  # clips without visual: <= 10
    for p, c in enumerate(cast):
        if c not in on_character:
            continue  # the off-screen member is never seen
        for j in range(n_seg):
            b, e = frame_window(start, seg_start[j], seg_end[j])
            vis_prob = PROCESS["speaker_visible_prob" if speakers[j] == c
                               else "listener_visible_prob"]
            if has_visual and rng.random() < vis_prob:
                n = int(rng.integers(PROCESS["min_faces"], PROCESS["max_faces"] + 1))
                visible[p, j] = True
            elif rng.random() < PROCESS["glimpse_prob"]:
                n = int(rng.integers(1, FACE_THRESHOLD + 1))
                if not has_visual:
                    n = min(n, glimpses_left)
                    glimpses_left -= n
            else:
                n = 0
            frames = np.sort(rng.choice(np.arange(b + 1, e), size=n, replace=False))
            rows = (PROCESS["face_amplitude"] * world.prototypes["face"][emotions[p, j]]
                    + world.identity["face"][c]
                    + PROCESS["face_noise"] * rng.normal(size=(n, world.dims["face"])))
            faces += [(int(f), c, r) for f, r in zip(frames, rows.astype(np.float32))]
    faces.sort(key=lambda t: (t[0], t[1]))
    return visible, faces


def _scene(rng: np.random.Generator, world: World, emotions: np.ndarray, cast: list[int],
           speakers: list[int], start: float, seg_start: list[float],
           seg_end: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame object rows (location + the speaker's emotion of the segment + noise) and
    environment rows (location + noise: no emotion signal)."""
    n_frames = frame_window(start, start, seg_end[-1])[1] + 1
    loc = int(rng.integers(PROCESS["num_locations"]))
    objects = (world.locations["object"][loc]
               + PROCESS["object_noise"] * rng.normal(size=(n_frames, world.dims["object"])))
    for j in range(len(speakers)):
        b = frame_window(start, seg_start[j], seg_end[j])[0]
        e = n_frames if j == len(speakers) - 1 else frame_window(start, seg_start[j + 1],
                                                                 seg_end[j + 1])[0]
        mood = emotions[cast.index(speakers[j]), j]
        objects[b:e] += PROCESS["object_amplitude"] * world.prototypes["object"][mood]
    environment = (world.locations["environment"][loc] + PROCESS["environment_noise"]
                   * rng.normal(size=(n_frames, world.dims["environment"])))
    return objects.astype(np.float32), environment.astype(np.float32)


def _targets(rng: np.random.Generator, cast: list[int], emotions: np.ndarray,
             seg_start: list[float], seg_end: list[float]) -> list[Target]:
    """Emotion moments (one, sometimes two) and 1-3 annotated cast members at each."""
    n_seg = len(seg_start)
    n_moments = 2 if n_seg > 1 and rng.random() < PROCESS["second_moment_prob"] else 1
    out = []
    for j in sorted(rng.choice(n_seg, size=n_moments, replace=False).tolist()):
        if rng.random() < PROCESS["outside_moment_prob"]:
            before = rng.random() < 0.5
            j = 0 if before else n_seg - 1
            gap = float(rng.uniform(0.1, 1.0))
            moment, outside = (seg_start[0] - gap if before else seg_end[-1] + gap), True
        else:
            moment, outside = float(rng.uniform(seg_start[j] + 0.05, seg_end[j] - 0.05)), False
        k = int(rng.choice(len(ANNOTATIONS_PER_MOMENT), p=ANNOTATIONS_PER_MOMENT)) + 1
        for p in sorted(rng.choice(len(cast), size=min(k, len(cast)), replace=False).tolist()):
            out.append(Target(cast[p], round(moment, 3), j, int(emotions[p, j]), outside))
    return out


def draw_clip(rng: np.random.Generator, world: World, clip: str) -> ClipDraw:
    """One clip (see the module docstring)."""
    start, seg_start, seg_end = _segments(rng)
    n_seg = len(seg_start)
    n_cast = int(rng.integers(PROCESS["min_cast"], PROCESS["max_cast"] + 1))
    w = np.asarray(CAST_WEIGHTS)
    cast = sorted(rng.choice(len(SPEAKERS), size=n_cast, replace=False, p=w / w.sum()).tolist())
    on_character = list(cast)
    if n_cast > 2 and rng.random() < PROCESS["offscreen_target_prob"]:
        on_character.remove(cast[int(rng.integers(n_cast))])
    speakers = _speakers(rng, on_character, n_seg)
    emotions = sample_emotions(rng, world, cast, speakers)
    base = int(rng.integers(0, 5000))
    seg_ori_ind = list(range(base, base + n_seg))
    d = world.dims
    audio, text = {}, {}
    for j, s in enumerate(speakers):
        emo, c = emotions[cast.index(s), j], s
        text[j] = (PROCESS["text_amplitude"] * world.prototypes["text"][emo]
                   + PROCESS["text_noise"] * rng.normal(size=d["text"])).astype(np.float32)
        a = (PROCESS["audio_amplitude"] * world.prototypes["audio"][emo]
             + world.identity["audio"][c] + PROCESS["audio_noise"] * rng.normal(size=d["audio"]))
        if rng.random() >= PROCESS["missing_audio_prob"]:
            audio[j] = a.astype(np.float32)
    visible, faces = _visual(rng, world, cast, on_character, speakers, emotions, start,
                             seg_start, seg_end)
    objects, environment = _scene(rng, world, emotions, cast, speakers, start, seg_start,
                                  seg_end)
    targets = _targets(rng, cast, emotions, seg_start, seg_end)
    return ClipDraw(clip, start, seg_start, seg_end, seg_ori_ind, speakers, on_character, cast,
                    emotions, visible, audio, text, faces, objects, environment, targets)


def split_ids(rng: np.random.Generator, labels: np.ndarray, test_fraction: float
              ) -> tuple[list[int], list[int]]:
    """A random split of annotation indices, `test_fraction` of each fine class to test
    (rounded), as the release keeps the label distributions alike. Annotations of one moment
    fall on both sides by chance, as in the release."""
    test = []
    for k in range(len(FINE)):
        idx = np.flatnonzero(labels == k)
        n = int(round(test_fraction * len(idx)))
        test += rng.choice(idx, size=n, replace=False).tolist()
    is_test = np.zeros(len(labels), bool)
    is_test[test] = True
    return np.flatnonzero(~is_test).tolist(), np.flatnonzero(is_test).tolist()
