"""README blocks of the scaling benchmarks: TAM's sharded memory, pod-sized memory and fit, and
the Beam build."""

from __future__ import annotations

from report_common import non_default_options, stamp

BEAM_BUILDS = {"in_process": "in process (the default)",
               "beam_1": "Beam DirectRunner, 1 worker process",
               "beam_2": "Beam DirectRunner, 2 worker processes"}


def render_beam_build(runs: list[dict]) -> str:
    """The newest run: one row per way of building, rates against the in-process build."""
    r = runs[-1]
    lines = ["| build | comments/s | videos/s | build (s) | rate x in process |",
             "|---|---|---|---|---|"]
    for kind, label in BEAM_BUILDS.items():
        ratio = 1.0 if kind == "in_process" else r["ratio_to_in_process"][kind]
        lines.append(f"| {label} | {r['comments_per_s'][kind]:,.0f} | "
                     f"{r['videos_per_s'][kind]:.1f} | {r['build_s'][kind]:.0f} | "
                     f"{ratio:.2f}x |")
    a = r["arguments"]
    written = (f"; `jaxaffect synthesize tsc` wrote them at {r['synthesize_videos_per_s']:.0f} "
               "videos/s" if r.get("synthesize_videos_per_s") else "")
    head = (f"`PYTHONPATH=. python benchmarks/beam_build.py --num_videos {a['num_videos']}` "
            f"({r['num_videos']:,} synthetic comment videos, {r['danmaku_rows']:,} danmaku rows "
            f"(comments), {r['examples']:,} examples{written}; `jaxaffect build bilibili_tsc "
            "--builder_config custom` to TFRecord, each build into a fresh folder, start-up "
            "included; the Beam builds run `--direct_running_mode=multi_processing`; median of "
            f"{a['rounds']} alternating round{'s' * (a['rounds'] != 1)} on "
            f"{r['cpus_available']} available cores; apache-beam {r['apache_beam']}; all builds "
            "gave the same metadata and dead-letter list). " + stamp(runs))
    return head + "\n\n" + "\n".join(lines) + "\n"


def _tam_mesh(row: dict) -> str:
    devices, fsdp = row["devices_count"], row["fsdp"]
    if devices == 1:
        return "1 device"
    if fsdp == 1:
        return f"{devices} devices, data {devices}"
    if fsdp == devices:
        return f"{devices} devices, fsdp {fsdp}"
    return f"{devices} devices, data {devices // fsdp} x fsdp {fsdp}"


def _tam_command(a: dict) -> tuple[str, str]:
    """(the options every configuration shares, the options choosing the configuration)."""
    common = f"python benchmarks/tam_sharded_memory.py --steps {a['steps']}"
    common += f" --vocab {a['vocab']}" if a["vocab"] != 21128 else ""
    common += " --remat" * bool(a["remat"]) + " --bf16" * bool(a["bf16"])
    common += " --small" * bool(a["small"])
    common += f" --timeout {a['timeout']:.0f}" if a.get("timeout") else ""
    chosen = f"--model {a['model']}" if a["model"] != "both" else ""
    chosen += f" --devices {a['devices']}" if a["devices"] != "both" else ""
    chosen += f" --fsdp {a['fsdp']}" if a.get("fsdp") is not None else ""
    return common, chosen.strip()


def render_tam_sharded_memory(runs: list[dict]) -> str:
    """The newest line per (model, devices, fsdp): one row per configuration; those that did not
    complete say so, with the exit status under the table."""
    newest = {(r["model"], r["devices_count"], r["fsdp"]): r for r in runs}
    order = {"finetune": 0, "pretrain": 1}
    rows = sorted(newest.values(), key=lambda r: (order.get(r["model"], 2), r["model"],
                                                  r["devices_count"], r["fsdp"]))
    params = {r["model"]: r["params"] for r in rows if "params" in r}
    single = {r["model"]: r for r in rows if "params" in r and r["devices_count"] == 1}

    def mib(n: int) -> str:
        return f"{n / 2**20:.1f} MiB"

    lines = ["| model | mesh | parameters | param + optimizer / device | XLA arguments | "
             "XLA temporaries | compile (s) | step (s) |", "|---|---|---|---|---|---|---|---|"]
    notes, ratios = [], []
    for r in rows:
        count = f"{params[r['model']] / 1e6:.1f} M" if r["model"] in params else "-"
        if "error" in r:
            lines.append(f"| {r['model']} | {_tam_mesh(r)} | {count} | did not complete | - | "
                         "- | - | - |")
            note = f"{r['model']}, {_tam_mesh(r)}: {r['error']}"
            one = single.get(r["model"])
            if "out-of-memory" in r["error"] and one and r["fsdp"] == 1:
                state = one["param_and_optimizer_bytes_per_device"] / 2**30
                note += (f"; {r['devices_count']} replicated copies of the 1-device row's "
                         f"{state:.1f} GiB of parameter + optimizer state alone are "
                         f"{r['devices_count'] * state:.1f} GiB, before temporaries, and all "
                         f"simulated devices share the host's {r['memory_gib']} GiB")
            notes.append(note)
            continue
        lines.append(f"| {r['model']} | {_tam_mesh(r)} | {count} | "
                     f"{mib(r['param_and_optimizer_bytes_per_device'])} | "
                     f"{mib(r['xla_argument_bytes'])} | {mib(r['xla_temp_bytes'])} | "
                     f"{r['compile_s']:.1f} | {r['step_s']:.1f} |")
        one = single.get(r["model"])
        if one and r["devices_count"] > 1 and r["fsdp"] == r["devices_count"]:
            a = one["param_and_optimizer_bytes_per_device"]
            b = r["param_and_optimizer_bytes_per_device"]
            ratios.append(f"{r['model']} {a / 2**20:.0f} -> {b / 2**20:.0f} MiB, "
                          f"{a / b:.1f}x with `mesh.fsdp={r['fsdp']}`")
    last = rows[-1]
    s = next((r["sizes"] for r in reversed(rows) if "sizes" in r), None)
    commands = list(dict.fromkeys(_tam_command(r["arguments"]) for r in rows))
    if len(commands) == 1:
        head = "`" + " ".join(commands[0]).strip() + "`"
    elif len({c for c, _ in commands}) == 1:
        head = (f"`{commands[0][0]}`, run once per configuration with "
                + ", ".join(f"`{x}`" for _, x in commands))
    else:
        head = "Run as " + ", ".join("`" + " ".join(c).strip() + "`" for c in commands)
    if s:
        f = s["features"]
        head += (f" (d = {s['width']}, {s['layers']} CTM layers, {s['heads']} heads, T = "
                 f"{s['segments']} segments x {len(f)} streams of "
                 + " / ".join(str(d) for d in f.values())
                 + f"-d features, batch {s['batch']}; pretrain adds the {s['decoder_layers']}"
                 f"-layer video-TSC decoder, {s['comments']} comments of {s['words']} words per "
                 f"video and a {s['vocab']:,}-word vocabulary; "
                 + ("bfloat16" if last.get("bf16") else "float32")
                 + (", remat" if last.get("remat") else ", no remat")
                 + f"; step time is the mean of {last['arguments']['steps']} "
                 + ("step" if last["arguments"]["steps"] == 1 else "steps")
                 + " after one warm-up step)")
    minutes = sum(r.get("wall_minutes", 0.0) for r in rows)
    head += f"; {minutes:.1f} min wall time in all. " + stamp(rows)
    out = head + "\n\n" + "\n".join(lines) + "\n"
    if ratios:
        out += ("\nParameter + optimizer bytes per device, 1 device -> fsdp: "
                + "; ".join(ratios) + ".\n")
    if notes:
        out += "\nDid not complete: " + "; ".join(notes) + ".\n"
    return out


def _gib(n: float | None) -> str:
    return "-" if n is None else f"{n / 2**30:,.2f}"


def _mesh(mesh: list[int]) -> str:
    return " x ".join(str(x) for x in mesh)


def _pod_command(a: dict) -> str:
    cmd = f"--part {a['part']} --devices {a['devices']}"
    cmd += non_default_options(a, {"vocab": 50000, "batch": 256})
    cmd += " --small" * bool(a["small"])
    cmd += f" --timeout {a['timeout']:.0f}" if a.get("timeout") else ""
    return cmd


def _pod_memory_table(memory: list[dict]) -> list[str]:
    lines = ["| devices | mesh (data x fsdp x model) | parameters / device (GiB) | optimizer "
             "state / device (GiB) | XLA temporaries: activations, workspace (GiB) | peak "
             "estimate / device (GiB) | compile (s) |", "|---|---|---|---|---|---|---|"]
    for r in memory:
        lines.append(f"| {r['devices_count']} | {_mesh(r['mesh'])} | "
                     f"{_gib(r['param_bytes_per_device'])} | "
                     f"{_gib(r['optimizer_bytes_per_device'])} | {_gib(r['xla_temp_bytes'])} | "
                     f"{_gib(r['peak_bytes_estimate'])} | {r['compile_s']:.0f} |")
    return lines


def _pod_fit_table(fit: list[dict]) -> list[str]:
    lines = ["| device memory | mesh (data x fsdp x model) | largest model that fits (layers x "
             "d) | its parameters | its peak / device (GiB) | next size's peak (GiB) |",
             "|---|---|---|---|---|---|"]
    for r in fit:
        best = r["largest_fitting"]
        what = ("none on the ladder" if best is None else
                f"{best['layers']} x {best['width']}")
        more = " (the ladder's largest)" if r["ladder_exhausted"] and best else ""
        lines.append(f"| {r['budget_bytes'] / 2**30:.0f} GiB | {_mesh(r['mesh'])} | {what}{more}"
                     f" | {'-' if best is None else format(best['params'] / 1e9, '.2f') + ' B'}"
                     f" | {_gib(None if best is None else best['peak_bytes_estimate'])} | "
                     f"{_gib(r['next_size_peak_bytes'])} |")
    return lines


def _pod_steps_table(steps: list[dict]) -> list[str]:
    lines = ["| mesh (data x fsdp x model) | step time / 1 device | param + optimizer / device "
             "(MiB, of unsharded) | leaves split N ways: per device / unsharded (1/N) | within "
             "1.2/N |", "|---|---|---|---|---|"]
    for r in steps:
        frac = r["sharded_parts_fraction"]
        ok = r["sharded_parts_within_1.2_over_n"]
        lines.append(f"| {_mesh(r['mesh'])} | {r['step_time_vs_one_device']:.2f}x | "
                     f"{r['param_and_optimizer_bytes_per_device'] / 2**20:.1f} of "
                     f"{r['param_and_optimizer_bytes_unsharded'] / 2**20:.1f} | "
                     + ("-" if frac is None else f"{frac:.3f} (1/{r['split_devices']} = "
                        f"{1 / r['split_devices']:.3f})")
                     + f" | {'-' if ok is None else 'yes' if ok else 'no'} |")
    return lines


def _what_a_pod_needs(memory: list[dict], budgets: list[float]) -> str:
    """A sentence from the memory rows: which device counts and meshes fit which budgets."""
    one = next((r for r in memory if r["devices_count"] == 1), None)
    out = []
    if one:
        out.append(f"One device would need an estimated {_gib(one['peak_bytes_estimate'])} GiB "
                   "for this step")
    for budget in budgets:
        fits = [r for r in memory if r["peak_bytes_estimate"] <= budget * 2**30]
        if not fits:
            out.append(f"no measured mesh fits {budget:.0f} GiB per device")
            continue
        fewest = min(r["devices_count"] for r in fits)
        names = ", ".join(_mesh(r["mesh"]) for r in fits if r["devices_count"] == fewest)
        out.append(f"{budget:.0f} GiB per device: the fewest devices that fit are {fewest} "
                   f"(mesh {names})")
    return "; ".join(out) + "."


def render_tam_pod_memory(runs: list[dict]) -> str:
    """The newest line per part and configuration: the memory of size=large per mesh, the
    largest model fitting each budget, and the 8-device step ratios; failures under the tables."""
    newest: dict[tuple, dict] = {}
    for r in runs:
        part = r.get("part", r["arguments"]["part"])
        key = ((part, r["devices_count"], "error") if "error" in r else
               (part, tuple(r["mesh"]), r.get("budget_bytes")))
        newest[key] = r
    rows = list(newest.values())
    memory = sorted((r for r in rows if r.get("part") == "memory" and "error" not in r),
                    key=lambda r: (r["devices_count"], r["peak_bytes_estimate"]))
    fit = [r for r in rows if r.get("part") == "fit"]
    steps = [r for r in rows if r.get("part") == "steps"]
    errors = [r for r in rows if "error" in r]
    commands = list(dict.fromkeys(_pod_command(r["arguments"]) for r in runs))
    s = next((r["sizes"] for r in memory), None)
    head = ("`python benchmarks/tam_pod_memory.py` run as " + ", ".join(f"`{c}`" for c in commands)
            + " (one process per device count, devices simulated on this CPU")
    if s:
        head += (f"; memory: `configs/tam/pretrain.py:size=large`, {s['layers']} CTM layers + "
                 f"{s['decoder_layers']} decoder layers, d = {s['width']}, {s['heads']} heads, "
                 f"vocabulary {s['vocab']:,}, batch {s['batch']} of {s['segments']} segments and "
                 f"{s['comments']} comments x {s['words']} words, {s['dtype']}"
                 + (", remat" if s["remat"] else "") + ", Adam with float32 moments")
    head += ("; the step is compiled from abstract sharded inputs, nothing is run; bytes are "
             "XLA's CPU memory analysis, an estimate of what a GPU/TPU would need")
    walls: dict[tuple, float] = {}  # each process stamps its own wall time on all its lines
    for r in rows:
        key = (r["arguments"]["part"], r["devices_count"])
        walls[key] = max(walls.get(key, 0.0), r.get("wall_minutes", 0.0))
    minutes = sum(walls.values())
    head += f"; {minutes:.0f} min wall time in all). {stamp(runs)}"
    out = [head, ""]
    if memory:
        out += _pod_memory_table(memory) + [""]
        budgets = runs[-1]["arguments"]["budgets_gib"]
        out += ["What this says a pod needs: " + _what_a_pod_needs(memory, budgets), ""]
    if fit:
        out += ["The largest model of the benchmark's ladder of (layers, d) sizes whose peak "
                "estimate fits a device (bisection over the ladder; heads = d / 64, decoder "
                "layers 2/3 of the encoder's, same batch and vocabulary):", ""]
        out += _pod_fit_table(fit) + [""]
    if steps:
        st = steps[0]["sizes"]
        out += [f"The sharded step run at a small size ({st['layers']} layers, d = "
                f"{st['width']}, vocabulary {st['vocab']:,}, batch {st['batch']}) on 8 simulated "
                "devices against 1 device in interleaved rounds (the simulated devices share "
                "this host's cores, so the ratio measures overhead, not speed-up); N = fsdp x "
                "model:", ""]
        out += _pod_steps_table(steps) + [""]
    if errors:
        out += ["Did not complete: " + "; ".join(
            f"{r['arguments']['part']} on {r['devices_count']} devices ({r['error']})"
            for r in errors) + ".", ""]
    return "\n".join(out).rstrip() + "\n"
