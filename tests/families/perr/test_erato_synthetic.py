r"""Tests of the synthetic ERATO-layout corpus, including the probes that calibrate its design.

The full-size calibration (an order-aware GRU against time-blind and single-stream controls)
takes a few minutes and runs only when asked:

    JAXAFFECT_SYNTHETIC_CALIBRATION=1 \
        pytest tests/families/perr/test_erato_synthetic.py -k calibration -s
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from jaxaffect.families.perr import erato_format as ef
from jaxaffect.families.perr import synthetic as es

NUM_CLASSES = len(ef.FINE_LABELS)


# ----------------------------------------------------------------------------- probe helpers
def macro_f1(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int = NUM_CLASSES) -> float:
    f1 = []
    for k in range(num_classes):
        tp = np.sum((y_pred == k) & (y_true == k))
        denom = np.sum(y_pred == k) + np.sum(y_true == k)
        f1.append(2.0 * tp / denom if denom else 0.0)
    return float(np.mean(f1))


def logistic_probe(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
                   steps: int = 300, lr: float = 0.1, l2: float = 1e-3) -> np.ndarray:
    """Class-balanced multinomial logistic regression (full-batch Adam); test predictions."""
    mu, sd = x_train.mean(0), x_train.std(0) + 1e-6
    xtr, xte = (x_train - mu) / sd, (x_test - mu) / sd
    xtr, xte = np.c_[xtr, np.ones(len(xtr))], np.c_[xte, np.ones(len(xte))]
    onehot = np.eye(NUM_CLASSES)[y_train]
    freq = np.maximum(onehot.sum(0), 1)
    weight = (len(y_train) / (NUM_CLASSES * freq))[y_train][:, None]
    w = np.zeros((xtr.shape[1], NUM_CLASSES))
    m = v = np.zeros_like(w)
    for i in range(1, steps + 1):
        z = xtr @ w
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        g = xtr.T @ (weight * (p - onehot)) / len(xtr) + l2 * w
        m, v = 0.9 * m + 0.1 * g, 0.999 * v + 0.001 * g * g
        w -= lr * (m / (1 - 0.9 ** i)) / (np.sqrt(v / (1 - 0.999 ** i)) + 1e-8)
    return np.argmax(xte @ w, axis=1)


def load_corpus(root: Path) -> tuple[list[ef.ClipFeatures], np.ndarray, np.ndarray]:
    rows = ef.read_annotations(root)
    clips = [ef.read_clip(ef.feature_path(root, r.clip_id)) for r in rows]
    return (clips, np.array([r.label_id for r in rows]),
            np.array([r.split == "test" for r in rows]))


def pooled(clip: ef.ClipFeatures, streams) -> np.ndarray:
    """Time-blind features: mean and max over steps, and the present fraction, per stream."""
    return np.concatenate([np.r_[clip.features[s].mean(0), clip.features[s].max(0),
                                 clip.masks[s].mean()] for s in streams])


def pattern_scores(clip: ef.ClipFeatures, world: es.World) -> np.ndarray:
    """[S, P, T] projections on each event pattern after removing the clip's stream mean."""
    out = []
    for s in ef.STREAMS:
        x, m = clip.features[s], clip.masks[s]
        centred = x - x[m].mean(0) if m.any() else x
        out.append(np.where(m, (centred @ world.patterns[s].T).T, -5.0))
    return np.stack(out)


def oracle_features(clip: ef.ClipFeatures, world: es.World, ordered: bool) -> np.ndarray:
    """Per stream pair, the evidence for a cue answered by a response: 1..4 steps later
    (ordered), or anywhere in the clip (time-blind); soft, as a min of two projections."""
    z = pattern_scores(clip, world)
    cue, resp = z[:, es.CUE], z[:, es.RESP]
    lo, hi = es.ANSWER_LAGS
    out = []
    for a in range(len(ef.STREAMS)):
        for b in range(len(ef.STREAMS)):
            if ordered:
                best = max((np.minimum(cue[a, :-lag], resp[b, lag:]).max()
                            for lag in range(lo, min(hi, cue.shape[1] - 1) + 1)), default=-5.0)
            else:
                best = min(cue[a].max(), resp[b].max())
            out.append(best)
    return np.asarray(out)


def run_probe(feats: np.ndarray, labels: np.ndarray, is_test: np.ndarray) -> float:
    pred = logistic_probe(feats[~is_test], labels[~is_test], feats[is_test])
    return macro_f1(labels[is_test], pred)


def tree_hashes(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def probe_corpus(tmp_path_factory):
    """600 clips, half to test so that the macro-F1 of the rare classes is less noisy."""
    root = tmp_path_factory.mktemp("probe") / "corpus"
    summary = es.generate_corpus(str(root), num_clips=600, seed=3, test_fraction=0.5)
    return root, summary, *load_corpus(root)


# ----------------------------------------------------------------------------- unit tests
def test_largest_remainder_matches_erato_priors():
    priors = [es.CLASS_PRIORS[c] for c in ef.FINE_LABELS]
    counts = es.largest_remainder(2000, priors)
    assert counts.tolist() == [91, 390, 255, 78, 1186]  # hostile tense mild intimate neutral
    for total in (1, 7, 99, 600, 31182):
        c = es.largest_remainder(total, priors)
        quota = total * np.asarray(priors) / sum(priors)
        assert c.sum() == total and np.all(np.abs(c - quota) < 1)
    assert es.largest_remainder(31182, priors).tolist() == [1422, 6087, 3969, 1210, 18494]


def test_clips_place_events_where_present_and_fire_only_their_template():
    world = es.make_world(0, es.resolve_dims(None))
    hits, false_alarms = [], []
    for i in range(150):
        label = i % NUM_CLASSES
        clip, info = es.generate_clip(world, label, np.random.default_rng([7, i]))
        ef.validate_clip(clip, f"clip {i}", world.dims)
        assert 5 <= clip.num_steps <= 35
        for s in ef.STREAMS:
            assert not clip.features[s][~clip.masks[s]].any()  # absent steps are zeros
        for s, _, t in info.events:
            assert clip.masks[ef.STREAMS[s]][t]
        assert len({(s, t) for s, _, t in info.events}) == len(info.events)
        # Plain loop over all cue/response pairs of every class template.
        fired = set()
        for k, c in enumerate(ef.FINE_LABELS[:4]):
            x, y = es.TEMPLATES[c]
            for s1, p1, t1 in info.events:
                for s2, p2, t2 in info.events:
                    if (ef.STREAMS[s1], p1, ef.STREAMS[s2], p2) == (x, es.CUE, y, es.RESP):
                        assert t2 != t1  # never on the same step
                        if 1 <= t2 - t1 <= 4:
                            fired.add(k)
        assert fired == ({label} if ef.FINE_LABELS[label] != "neutral" else set())
        assert fired == es.answered_templates(info.events)
        # The planted patterns are recoverable from the features at their steps.
        det = pattern_scores(clip, world) > es.PROCESS["amplitude"] / 2
        hits += [det[s, p, t] for s, p, t in info.events]
        planted = np.zeros_like(det)
        for s, p, t in info.events:
            planted[s, p, t] = True
        present = np.stack([clip.masks[s] for s in ef.STREAMS])[:, None, :]
        false_alarms += det[~planted & np.broadcast_to(present, det.shape)].tolist()
    assert np.mean(hits) > 0.8 and np.mean(false_alarms) < 0.15, (np.mean(hits),
                                                                   np.mean(false_alarms))


def test_corpus_layout_determinism_and_reuse(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    kw = dict(num_clips=60, seed=11, dims={"text": 16})
    summary = es.generate_corpus(str(a), **kw)
    b.mkdir()  # an existing empty folder is fine
    es.generate_corpus(str(b), **kw)
    ha = tree_hashes(a)
    assert ha == tree_hashes(b)  # byte-identical
    assert {"annotations.csv", es.CORPUS_FILE, es.README_FILE} <= set(ha)
    rows = ef.read_annotations(a)
    assert len(rows) == 60 and all(r.clip_id.startswith("synthetic_") for r in rows)
    dims = summary["parameters"]["dims"]
    for r in rows[:10]:
        clip = ef.read_clip(ef.feature_path(a, r.clip_id), expected_dims=dims)
        assert clip.dims()["text"] == 16 and clip.dims()["audio"] == 32
    counts = summary["class_counts"]
    for split in ef.SPLITS:
        for c in ef.FINE_LABELS:
            assert counts[split][c] == sum(r.split == split and r.label == c for r in rows)
    assert sum(counts["test"].values()) == 12
    assert "SYNTHETIC" in (a / es.README_FILE).read_text() and "NOT ERATO" in \
        (a / es.README_FILE).read_text()
    assert json.loads((a / es.CORPUS_FILE).read_text()) == summary
    # Same parameters again: nothing is rewritten, the stored summary comes back.
    mtimes = {p: p.stat().st_mtime_ns for p in a.rglob("*")}
    assert es.generate_corpus(str(a), **kw) == summary
    assert {p: p.stat().st_mtime_ns for p in a.rglob("*")} == mtimes
    # Other parameters, or a foreign folder: refused, naming the folder.
    with pytest.raises(FileExistsError, match=str(a)):
        es.generate_corpus(str(a), num_clips=60, seed=12)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match=str(foreign)):
        es.generate_corpus(str(foreign))
    assert (foreign / "notes.txt").read_text() == "mine"
    with pytest.raises(ValueError, match="dims"):
        es.generate_corpus(str(tmp_path / "c"), dims={"video": 8})


def test_split_is_stratified_and_statistics_are_erato_like(probe_corpus):
    _, summary, _, labels, is_test = probe_corpus
    counts = np.bincount(labels, minlength=NUM_CLASSES)
    assert counts.tolist() == es.largest_remainder(600, [es.CLASS_PRIORS[c]
                                                         for c in ef.FINE_LABELS]).tolist()
    test_counts = np.bincount(labels[is_test], minlength=NUM_CLASSES)
    assert np.all(np.abs(test_counts - 0.5 * counts) <= 1) and test_counts.sum() == 300
    assert 20 <= summary["steps"]["mean"] <= 28
    cov = summary["mean_coverage"]
    assert 0.45 <= cov["text"] <= 0.7 and cov["audio"] > 0.9 and cov["background"] > 0.85
    assert 0.4 <= cov["person_a"] <= 0.8 and 0.4 <= cov["person_b"] <= 0.8
    assert summary["mask_redraws_after_failed_placement"] <= 0.03 * 600


def test_event_counts_per_stream_do_not_depend_on_the_class():
    """Per-clip counts of every (stream, pattern): the class means agree within noise."""
    world = es.make_world(1, es.resolve_dims(None))
    n = 150
    counts = np.zeros((NUM_CLASSES, n, len(ef.STREAMS), len(es.PATTERNS)))
    for k in range(NUM_CLASSES):
        for i in range(n):
            _, info = es.generate_clip(world, k, np.random.default_rng([5, k, i]))
            for s, p, _ in info.events:
                counts[k, i, s, p] += 1
    mean, se = counts.mean(1), counts.std(1) / np.sqrt(n) + 1e-3
    z = (mean - mean.mean(0)) / se
    assert np.abs(z).max() < 4.5, z
    # A real class dependence would show: the template streams' events of the own class.
    assert np.all(mean[:4, :2, :2].sum((1, 2)) > 5)


def test_time_blind_probes_stay_at_chance_while_ordered_features_solve_it(probe_corpus):
    root, summary, clips, labels, is_test = probe_corpus
    majority = macro_f1(labels[is_test], np.full(is_test.sum(), ef.FINE_LABELS.index("neutral")))
    assert majority == pytest.approx(0.149, abs=0.01)
    scores = {}
    for s in ef.STREAMS:  # (a) one stream, time-blind
        scores[s] = run_probe(np.stack([pooled(c, [s]) for c in clips]), labels, is_test)
    # (b) all streams together, time-blind
    scores["all"] = run_probe(np.stack([pooled(c, ef.STREAMS) for c in clips]), labels, is_test)
    world = es.make_world(3, summary["parameters"]["dims"])
    # Oracle detections of the patterns: counted (time-blind) vs ordered across streams.
    scores["oracle_blind"] = run_probe(
        np.stack([oracle_features(c, world, ordered=False) for c in clips]), labels, is_test)
    scores["oracle_ordered"] = run_probe(
        np.stack([oracle_features(c, world, ordered=True) for c in clips]), labels, is_test)
    print(json.dumps(scores, indent=1))
    for name in [*ef.STREAMS, "all", "oracle_blind"]:
        assert scores[name] < 0.3, (name, scores)  # majority: 0.149
    assert scores["oracle_ordered"] > 0.8, scores


# ----------------------------------------------------------------------------- calibration
@pytest.mark.skipif(not os.environ.get("JAXAFFECT_SYNTHETIC_CALIBRATION"),
                    reason="full-size calibration; set JAXAFFECT_SYNTHETIC_CALIBRATION=1")
def test_calibration_order_aware_gru_beats_time_blind_and_single_stream(tmp_path):
    results = calibrate(tmp_path / "corpus", seconds=float(
        os.environ.get("JAXAFFECT_SYNTHETIC_CALIBRATION_SECONDS", 60)))
    print(json.dumps(results, indent=1))
    blind = max(v for k, v in results.items() if k.startswith("logreg"))
    assert results["gru_all_streams"] > blind + 0.25
    assert results["gru_all_streams"] > results["gru_steps_shuffled"] + 0.25


def calibrate(root: Path, seconds: float = 60.0, num_clips: int = 2000) -> dict[str, float]:
    es.generate_corpus(str(root), num_clips=num_clips, seed=0)
    clips, labels, is_test = load_corpus(root)
    out = {"majority": macro_f1(labels[is_test], np.full(is_test.sum(), NUM_CLASSES - 1))}
    for s in ef.STREAMS:
        out[f"logreg_{s}"] = run_probe(np.stack([pooled(c, [s]) for c in clips]), labels, is_test)
    out["logreg_all_streams"] = run_probe(np.stack([pooled(c, ef.STREAMS) for c in clips]),
                                          labels, is_test)
    out["gru_all_streams"] = gru_probe(clips, labels, is_test, ef.STREAMS, seconds)
    out["gru_steps_shuffled"] = gru_probe(clips, labels, is_test, ef.STREAMS, seconds,
                                          shuffle_steps=True)
    for s in ef.STREAMS:
        out[f"gru_{s}"] = gru_probe(clips, labels, is_test, [s], seconds / 2)
    return out


def gru_probe(clips, labels, is_test, streams, seconds: float, shuffle_steps: bool = False,
              hidden: int = 64, batch: int = 64, seed: int = 0, verbose: bool = False) -> float:
    """A GRU over the concatenated streams and masks, trained for `seconds`; test macro-F1."""
    import jax
    import jax.numpy as jnp
    import optax

    t_max = max(c.num_steps for c in clips)
    rng = np.random.default_rng(seed)
    xs, valid = [], np.zeros((len(clips), t_max), bool)
    for i, c in enumerate(clips):
        x = np.concatenate([np.c_[c.features[s], c.masks[s]] for s in streams], axis=1)
        if shuffle_steps:  # order destroyed, the bag of steps kept
            x = x[rng.permutation(len(x))]
        xs.append(np.pad(x, ((0, t_max - len(x)), (0, 0))))
        valid[i, :c.num_steps] = True
    x_all = np.stack(xs).astype(np.float32)
    d = x_all.shape[-1]
    k = jax.random.split(jax.random.key(seed), 4)
    params = {"w": jax.random.normal(k[0], (d, 3 * hidden)) / np.sqrt(d),
              "u": jax.random.normal(k[1], (hidden, 3 * hidden)) / np.sqrt(hidden),
              "b": jnp.zeros(3 * hidden),
              "o": jax.random.normal(k[2], (3 * hidden, NUM_CLASSES)) / np.sqrt(3 * hidden),
              "ob": jnp.zeros(NUM_CLASSES)}

    def logits_fn(p, x, m):
        xp = x @ p["w"] + p["b"]  # [B, T, 3H], projected outside the scan

        def step(h, inp):
            xt, mt = inp
            hu = h @ p["u"]
            r = jax.nn.sigmoid(xt[:, :hidden] + hu[:, :hidden])
            z = jax.nn.sigmoid(xt[:, hidden:2 * hidden] + hu[:, hidden:2 * hidden])
            n = jnp.tanh(xt[:, 2 * hidden:] + r * hu[:, 2 * hidden:])
            h_new = jnp.where(mt[:, None], (1 - z) * n + z * h, h)
            return h_new, h_new

        h0 = jnp.zeros((x.shape[0], hidden))
        h, hs = jax.lax.scan(step, h0, (xp.swapaxes(0, 1), m.swapaxes(0, 1)))
        hs, mf = hs.swapaxes(0, 1), m[..., None].astype(jnp.float32)
        mean = (hs * mf).sum(1) / mf.sum(1)
        mx = jnp.where(mf > 0, hs, -1e9).max(1)
        return jnp.concatenate([h, mean, mx], -1) @ p["o"] + p["ob"]

    freq = np.bincount(labels[~is_test], minlength=NUM_CLASSES)
    class_w = jnp.asarray(np.sqrt(freq.sum() / (NUM_CLASSES * np.maximum(freq, 1))), jnp.float32)
    opt = optax.adam(3e-3)

    @jax.jit
    def train_step(p, s, x, m, y):
        def loss_fn(p):
            lp = jax.nn.log_softmax(logits_fn(p, x, m))
            w = class_w[y]
            return -(w * jnp.take_along_axis(lp, y[:, None], 1)[:, 0]).sum() / w.sum()
        loss, g = jax.value_and_grad(loss_fn)(p)
        upd, s = opt.update(g, s, p)
        return optax.apply_updates(p, upd), s, loss

    predict = jax.jit(lambda p, x, m: jnp.argmax(logits_fn(p, x, m), -1))
    state = opt.init(params)
    train = np.flatnonzero(~is_test)
    start, epoch = time.time(), 0
    test = np.flatnonzero(is_test)
    while time.time() - start < seconds:
        order, losses = rng.permutation(train), []
        for j in range(0, len(order) - batch + 1, batch):
            idx = order[j:j + batch]
            params, state, loss = train_step(params, state, x_all[idx], valid[idx], labels[idx])
            losses.append(float(loss))
        epoch += 1
        if verbose:
            pred = np.asarray(predict(params, x_all[test], valid[test]))
            print(f"epoch {epoch} {time.time() - start:.0f}s loss {np.mean(losses):.3f} "
                  f"test macro-F1 {macro_f1(labels[test], pred):.3f}", flush=True)
    pred = np.asarray(predict(params, x_all[test], valid[test]))
    return macro_f1(labels[test], pred)
