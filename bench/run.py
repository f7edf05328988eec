"""`make bench`: dln's Google Benchmark cases and the Python peers on the same workloads, in one
run, and the table between the markers of docs/performance.md.

Usage: /usr/bin/python3 bench/run.py [--repetitions 5] [--no-write] [--quick]
(run by `make bench` after building build/release with the benchmarks).
"""
import argparse
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "release"
DLN = BUILD / "dln"
DLN_BENCH = BUILD / "bench" / "dln_bench"
CONFIGS = ROOT / "bench" / "configs"
DATA = ROOT / "build" / "bench-data"
PEERS = ROOT / "bench" / "peers" / "peers.py"
PYTHON = "/usr/bin/python3"
DOC = ROOT / "docs" / "performance.md"
BEGIN, END = "<!-- make bench: begin -->", "<!-- make bench: end -->"
THREADS = os.cpu_count() or 2


def log(*args):
    print("bench:", *args, file=sys.stderr, flush=True)


def run(cmd, **kw):
    out = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    if out.returncode != 0:
        sys.exit(f"bench: {' '.join(map(str, cmd))} failed:\n{out.stderr}")
    return out.stdout


def export_data():
    """One-step runs that write each workload's data for the peers (record.data)."""
    for name in ("w1_small", "w2_lp4", "w3_sweep", "w4_agd", "w5_onehot_lp4", "w6_relu",
                 "w7_lenet"):
        run([DLN, "run", CONFIGS / f"{name}.toml", "--set", "record.data=true",
             "--set", "optimizer.steps=1", "--out", DATA / name, "--force"])


def gemm_peak(reps):
    """Double-precision GEMM (2000^3) through PyTorch's BLAS, on 1 and on all threads."""
    code = f"""
import json, statistics, time, torch
a = torch.rand(2000, 2000, dtype=torch.float64); b = torch.rand(2000, 2000, dtype=torch.float64)
out = {{}}
for t in (1, {THREADS}):
    torch.set_num_threads(t)
    a @ b
    ts = []
    for _ in range({reps}):
        s = time.perf_counter(); a @ b; ts.append(time.perf_counter() - s)
    out[t] = 2 * 2000**3 / statistics.median(ts) / 1e9
import numpy as np
x = np.random.rand(784 * 10000)
x.sum()
ts = []
for _ in range({reps}):
    s = time.perf_counter(); x.sum(); ts.append(time.perf_counter() - s)
out["read_gbs"] = x.nbytes / statistics.median(ts) / 1e9
print(json.dumps(out))
"""
    result = json.loads(run([PYTHON, "-c", code]))
    blas = os.path.realpath("/usr/lib/x86_64-linux-gnu/libblas.so.3")
    return {"1": result["1"], "all": result[str(THREADS)], "read_gbs": result["read_gbs"],
            "blas": "OpenBLAS" if "openblas" in blas else blas}


def dln_bench(reps, quick):
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        cmd = [DLN_BENCH, f"--benchmark_repetitions={reps}",
               "--benchmark_report_aggregates_only=true", f"--benchmark_out={f.name}",
               "--benchmark_out_format=json"]
        if quick:
            cmd.append("--benchmark_min_time=0.05")
        run(cmd)
        report = json.load(open(f.name))
    medians = {}
    for b in report["benchmarks"]:
        if b.get("aggregate_name") == "median":
            name = b["run_name"].replace("/real_time", "")
            # The counters are in seconds per step (or per Hessian-vector product).
            medians[name] = b.get("us_per_step", b.get("us_per_product")) * 1e6
            if "products_per_record" in b:
                medians[name + ":products"] = b["products_per_record"]
    return medians


def dln_sweep(reps, jobs):
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(reps):  # a new directory each time: removing the last is not the sweep's work
            start = time.perf_counter()
            run([DLN, "sweep", CONFIGS / "w3_sweep.toml", "--jobs", jobs, "--out",
                 Path(tmp) / f"sweep{i}"])
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def peer(workload, variant, data, reps, config, env=None):
    out = run([PYTHON, "-W", "ignore", PEERS, workload, variant, DATA / data, "--repetitions", reps,
               "--threads", THREADS, "--config", CONFIGS / f"{config}.toml"],
              env=None if env is None else {**os.environ, **env})
    return json.loads(out)["median_s"] * 1e6


def dln_run_step(reps, config, *sets):
    """dln's time per step of `config` (the step loop's wall time in summary.json over its
    steps; data loading and the engine's start are not counted), median of `reps` runs."""
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(reps):
            out = Path(tmp) / f"r{i}"
            cmd = [DLN, "run", CONFIGS / f"{config}.toml", "--out", out, "--jobs", THREADS, "--quiet"]
            for s in sets:
                cmd += ["--set", s]
            run(cmd)
            summary = json.loads((out / "summary.json").read_text())
            times.append(summary["wall_seconds"] / summary["steps"])
    return statistics.median(times) * 1e6


def dln_step_by_difference(reps, config, short, long, *sets):
    """dln's time per step of `config` as the difference of the step loops of two runs,
    optimizer.steps = short and long, over long - short: what the runs' records and starts cost
    cancels (a record of a mini-batch run passes over all the data), median of `reps`."""
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(reps):
            wall = {}
            for steps in (short, long):
                out = Path(tmp) / f"r{i}_{steps}"
                cmd = [DLN, "run", CONFIGS / f"{config}.toml", "--out", out, "--jobs", THREADS,
                       "--quiet", "--set", f"optimizer.steps={steps}", "--set",
                       f"record.every={steps}"]
                for s in sets:
                    cmd += ["--set", s]
                run(cmd)
                wall[steps] = json.loads((out / "summary.json").read_text())["wall_seconds"]
            times.append((wall[long] - wall[short]) / (long - short))
    return statistics.median(times) * 1e6


PASSIVE = {"OMP_WAIT_POLICY": "PASSIVE"}

W6_PROBES = ('record.probes=["loss", "loss_data", "accuracy", "fro", "spectral", "grad_fro", '
             '"balance", "growth_mismatch", "neuron_balance", "active", "pattern_flips", '
             '"pattern_agreement", "partial"]')


def peak_rss_mib(cmd):
    out = subprocess.run(["/usr/bin/time", "-v"] + [str(c) for c in cmd], capture_output=True,
                         text=True)
    if out.returncode != 0:
        sys.exit(f"bench: {cmd} failed:\n{out.stderr}")
    kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", out.stderr).group(1))
    return kb / 1024


def fmt_time(us):
    if us >= 1e6:
        return f"{us / 1e6:.3g} s"
    if us >= 1e3:
        return f"{us / 1e3:.3g} ms"
    return f"{us:.3g} µs"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="short runs, to try the harness")
    parser.add_argument("--no-write", action="store_true", help="print, leave the docs alone")
    args = parser.parse_args()
    reps = args.repetitions

    log("exporting the workloads' data")
    export_data()
    log("GEMM peak")
    peak = gemm_peak(reps)
    log("dln_bench")
    d = dln_bench(reps, args.quick)
    log("dln sweep (W3)")
    sweep2 = dln_sweep(reps, THREADS) * 1e6
    sweep1 = dln_sweep(reps, 1) * 1e6
    log("peers")
    p = {}
    for w, data, config in (("w1a", "w1_small", "w1_small"), ("w1b", "w1_small", "w1_small"),
                            ("w2", "w2_lp4", "w2_lp4"), ("w4", "w4_agd", "w4_agd"),
                            ("w5", "w5_onehot_lp4", "w5_onehot_lp4"),
                            ("w3", "w3_sweep", "w3_sweep")):
        for v in ("plain", "fast"):
            r = 1 if (w, v) == ("w3", "plain") or args.quick else reps
            p[w, v] = peer(w, v, data, r, config)
            log(f"  {w} {v}: {fmt_time(p[w, v])}")
    log("W6 (the torch engine)")
    w6 = {}
    for dtype, peer_name in (("float64", "w6"), ("float32", "w6f")):
        w6[dtype, "dln"] = dln_run_step(reps, "w6_relu", f'model.dtype="{dtype}"')
        w6[dtype, "rec"] = dln_run_step(reps, "w6_relu", f'model.dtype="{dtype}"',
                                        "record.every=1", "optimizer.steps=10", W6_PROBES)
        w6[dtype, "plain"] = peer(peer_name, "plain", "w6_relu", 1 if args.quick else reps,
                                  "w6_relu")
        # The same loop with OpenMP's passive waiting, which dln's torch engine sets.
        w6[dtype, "passive"] = peer(peer_name, "plain", "w6_relu", 1 if args.quick else reps,
                                    "w6_relu", PASSIVE)
        log(f"  {dtype}: dln {fmt_time(w6[dtype, 'dln'])}, recording every probe "
            f"{fmt_time(w6[dtype, 'rec'])}, plain {fmt_time(w6[dtype, 'plain'])}, passive "
            f"{fmt_time(w6[dtype, 'passive'])}")
    log("W7 (LeNet, SGD batch 50)")
    w7 = {}
    for dtype, peer_name in (("float32", "w7f"), ("float64", "w7")):
        w7[dtype, "dln"] = dln_step_by_difference(reps, "w7_lenet", 100, 300,
                                                  f'model.dtype="{dtype}"')
        w7[dtype, "plain"] = peer(peer_name, "plain", "w7_lenet", 1 if args.quick else reps,
                                  "w7_lenet")
        w7[dtype, "passive"] = peer(peer_name, "plain", "w7_lenet", 1 if args.quick else reps,
                                    "w7_lenet", PASSIVE)
        log(f"  {dtype}: dln {fmt_time(w7[dtype, 'dln'])}, plain {fmt_time(w7[dtype, 'plain'])}, "
            f"passive {fmt_time(w7[dtype, 'passive'])}")
    log("GEMM peak, again")
    # A peak is what the machine can do: the better of the measurements at the start and at the
    # end of the run, so that a neighbour's load during one of them does not lower the bar.
    again = gemm_peak(reps)
    peak = {k: max(v, again[k]) if k != "blas" else v for k, v in peak.items()}
    log("peak memory of W5")
    with tempfile.TemporaryDirectory() as tmp:
        rss = peak_rss_mib([DLN, "run", CONFIGS / "w5_onehot_lp4.toml", "--set",
                            "optimizer.steps=10", "--out", Path(tmp) / "w5", "--jobs", THREADS])
    data_mib = 8 * (784 + 10) * 10000 / 2**20
    log("the Python package's overhead (W1)")
    po = json.loads(subprocess.run(
        ["/usr/bin/python3", ROOT / "bench" / "python_overhead.py", "--repetitions", str(reps)],
        check=True, capture_output=True, text=True).stdout)

    T = THREADS
    w1a, w1b = d["BM_W1_Step/1"], d["BM_W1_StepRecording/1"]
    w2, w4, w4gd = d[f"BM_W2_Lp4/{T}"], d[f"BM_W4_Agd/{T}"], d[f"BM_W4_ShallowGd/{T}"]
    w4_1, w4gd_1 = d["BM_W4_Agd/1"], d["BM_W4_ShallowGd/1"]
    w5, w5_1 = d[f"BM_W5_OnehotLp4/{T}"], d["BM_W5_OnehotLp4/1"]
    w5_flops = 4 * 10 * 784 * 10000  # the two passes over the data: W_e X and G X^T
    w5_gflops, w5_gflops_1 = w5_flops / w5 / 1e3, w5_flops / w5_1 / 1e3
    w5_gbs = 8 * 784 * 10000 / w5 / 1e3  # X read from memory once per step (fused pass)
    # The plain autograd loop goes layer by layer: X W1ᵀ, H W2ᵀ, dW2, dH, dW1.
    plain5_flops = 2 * 10000 * (2 * 784 * 256 + 3 * 256 * 10)
    plain5_gflops = plain5_flops / p["w5", "plain"] / 1e3
    w2_flops = 4 * 1 * 128 * 13910
    w2_gflops = w2_flops / w2 / 1e3

    def row(name, dln_us, plain_us, fast_us, t_plain, t_fast, extra="", also=True):
        rp, rf = plain_us / dln_us, fast_us / dln_us
        ok = (rp >= t_plain if t_plain else True) and rf >= t_fast and also
        tp = f"≥ {t_plain}×" if t_plain else "—"
        return (f"| {name} | {fmt_time(dln_us)} | {fmt_time(plain_us)} | {fmt_time(fast_us)} | "
                f"{rp:.0f}× ({tp}) | {rf:.1f}× (≥ {t_fast}×) | {'yes' if ok else '**no**'}"
                f"{extra} |")

    lines = [
        BEGIN,
        "",
        f"Measured {datetime.date.today().isoformat()} by `make bench` on {platform.machine()}, "
        f"{THREADS} cores; medians of {reps} repetitions (the plain W3 loop: 1), all in one run. "
        "Times per step (W3: the whole sweep). Ratios are peer time / dln time, target in "
        "brackets.",
        "",
        "| workload | dln | plain autograd | fastest Python | vs plain | vs fastest | holds |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
        row("W1 (a) `small`, step", w1a, p["w1a", "plain"], p["w1a", "fast"], 50, 5),
        row("W1 (b) `small`, recording loss, fro, balance", w1b, p["w1b", "plain"],
            p["w1b", "fast"], 20, 3, f"; recording costs {w1b / w1a:.2f}× the step (≤ 2×)",
            also=w1b / w1a <= 2),
        row(f"W2 `lp4`, {T} threads", w2, p["w2", "plain"], p["w2", "fast"], 50, 2),
        row(f"W3 `sweep`, 56 runs, --jobs {T}", sweep2, p["w3", "plain"], p["w3", "fast"], 100,
            2, f"; --jobs 1: {fmt_time(sweep1)}"),
        row(f"W4 `agd`, AGD depth 8, {T} threads", w4, p["w4", "plain"], p["w4", "fast"], 100,
            1.5, f"; AGD / shallow GD {w4 / w4gd:.2f} ({T} threads), "
            f"{w4_1 / w4gd_1:.2f} (1 thread) (≤ 1.3)", also=max(w4 / w4gd, w4_1 / w4gd_1) <= 1.3),
        row(f"W5 `onehot-lp4`, {T} threads", w5, p["w5", "plain"], p["w5", "fast"], 0, 2),
        *[f"| W6 `relu` {dtype}, {T} threads | {fmt_time(w6[dtype, 'dln'])} | "
          f"{fmt_time(w6[dtype, 'plain'])} | — | {w6[dtype, 'plain'] / w6[dtype, 'dln']:.2f}× "
          f"(≥ 1×) | — | {'yes' if w6[dtype, 'plain'] >= w6[dtype, 'dln'] and w6[dtype, 'rec'] <= 1.5 * w6[dtype, 'dln'] else '**no**'}"
          f"; a step recording every probe costs {w6[dtype, 'rec'] / w6[dtype, 'dln']:.2f}× a "
          f"step (≤ 1.5×); the plain loop with OMP_WAIT_POLICY=PASSIVE "
          f"{fmt_time(w6[dtype, 'passive'])} |" for dtype in ("float64", "float32")],
        *[f"| W7 `lenet` {dtype}, SGD batch 50, {T} threads | {fmt_time(w7[dtype, 'dln'])} | "
          f"{fmt_time(w7[dtype, 'plain'])} | — | {w7[dtype, 'plain'] / w7[dtype, 'dln']:.2f}× "
          f"(≥ 1×) | — | {'yes' if w7[dtype, 'plain'] >= w7[dtype, 'dln'] else '**no**'}; "
          f"the plain loop with OMP_WAIT_POLICY=PASSIVE {fmt_time(w7[dtype, 'passive'])} |"
          for dtype in ("float32", "float64")],
        "",
        f"- Sharpness on W1 (`BM_W1_StepSharpness`: a GD step and a `sharpness` record every "
        f"step, Lanczos warm-started from the last record's vector, tolerance 1e-10): "
        f"{fmt_time(d['BM_W1_StepSharpness'])} a step against {fmt_time(w1a)} without the record; "
        f"one Hessian-vector product (`BM_W1_HessianProduct`) {fmt_time(d['BM_W1_HessianProduct'])} "
        f"({d['BM_W1_HessianProduct'] / w1a:.2f}× a step); a record costs "
        f"{(d['BM_W1_StepSharpness'] - w1a) / d['BM_W1_HessianProduct']:.1f} products' time "
        f"(target ≤ 20: **{'yes' if d['BM_W1_StepSharpness'] - w1a <= 20 * d['BM_W1_HessianProduct'] else 'no'}**) "
        f"and takes {d['BM_W1_StepSharpness:products']:.1f} products on average.",
        f"- SGD on W5 (`BM_W5_Sgd`: gather the batch, one pass over it, the layer gradients and "
        f"the update): batch 128 on {T} threads {fmt_time(d[f'BM_W5_Sgd/128/{T}'])} a step = "
        f"{fmt_time(d[f'BM_W5_Sgd/128/{T}'] / 128)} a sample (1 thread: "
        f"{fmt_time(d['BM_W5_Sgd/128/1'] / 128)}), against the full-batch step's "
        f"{fmt_time(w5 / 10000)} a sample on {T} threads: "
        f"{d[f'BM_W5_Sgd/128/{T}'] / 128 / (w5 / 10000):.1f}× (target ≤ 1.5×: "
        f"**{'yes' if d[f'BM_W5_Sgd/128/{T}'] / 128 <= 1.5 * w5 / 10000 else 'no'}**). A step at "
        f"batch 16 costs {fmt_time(d[f'BM_W5_Sgd/16/{T}'])}: the products of the weights that "
        f"every step needs whatever the batch (W_e = W_2 W_1 and the two layer gradients, "
        f"3·10·256·784 = 6.0 M multiply-adds, against the batch's 2·10·784·128 = 2.0 M) dominate "
        f"at batch 128; at batch 1024 a sample costs "
        f"{fmt_time(d[f'BM_W5_Sgd/1024/{T}'] / 1024)} "
        f"({d[f'BM_W5_Sgd/1024/{T}'] / 1024 / (w5 / 10000):.1f}×).",
        f"- GEMM peak (PyTorch on {peak['blas']}, 2000³, float64; the better of the medians at the "
        f"start and at the end of the run): {peak['1']:.1f} GFLOP/s on "
        f"1 thread, {peak['all']:.1f} on {T}. Streaming read (NumPy sum over 62.7 MB): "
        f"{peak['read_gbs']:.1f} GB/s on 1 thread.",
        f"- W5's products with the data (W_e X and G Xᵀ, 4·k·d·n = {w5_flops / 1e6:.0f} MFLOP a "
        f"step): {w5_gflops:.1f} GFLOP/s on {T} threads = {100 * w5_gflops / peak['all']:.0f}% "
        f"of the {T}-thread GEMM peak (target 70%: **{'yes' if w5_gflops >= 0.7 * peak['all'] else 'no'}**); "
        f"{w5_gflops_1:.1f} GFLOP/s on 1 thread = {100 * w5_gflops_1 / peak['1']:.0f}% of the "
        f"1-thread peak. X is read from memory once a step (the second product takes each slice "
        f"from cache): {w5_gbs:.1f} GB/s.",
        f"- For comparison, the plain autograd loop on W5 goes layer by layer "
        f"({plain5_flops / 1e9:.2f} GFLOP a step): {plain5_gflops:.1f} GFLOP/s = "
        f"{100 * plain5_gflops / peak['all']:.0f}% of the {T}-thread peak, and "
        f"{p['w5', 'plain'] / w5:.0f}× dln's time per step.",
        f"- W2's products with the data (4·k·d·n = {w2_flops / 1e6:.1f} MFLOP a step): "
        f"{w2_gflops:.1f} GFLOP/s on {T} threads = {100 * w2_gflops / peak['all']:.0f}% of the "
        f"{T}-thread GEMM peak (k = 1: matrix-vector products, bound by reading X).",
        f"- Peak resident memory of W5 (`dln run`, 10 steps, `/usr/bin/time -v`): {rss:.0f} MiB "
        f"for {data_mib:.1f} MiB of data: data + {rss - data_mib:.0f} MiB "
        f"(target: data + 64 MiB: **{'yes' if rss <= data_mib + 64 else 'no'}**).",
        f"- Python (`dln.run` in memory, W1 (b), 1 thread, `bench/python_overhead.py`): "
        f"{po['python_steps_per_s'] / 1e3:.0f}k steps/s in the step loop against the command "
        f"line's {po['cli_steps_per_s'] / 1e3:.0f}k (which also writes metrics.csv): "
        f"{po['cli_steps_per_s'] / po['python_steps_per_s']:.2f}× the command line's time "
        f"(target ≤ 1.2: **{'yes' if po['cli_steps_per_s'] / po['python_steps_per_s'] <= 1.2 else 'no'}**); "
        f"the whole call {po['python_whole_s'] * 1e3:.0f} ms against the command's "
        f"{po['cli_whole_s'] * 1e3:.0f} ms. A callback at every record costs "
        f"{po['callback_us_per_record']:.2f} µs a record (it is handed fresh copies of the "
        f"weights); a NumPy copy of the weights costs {po['numpy_copy_us']:.2f} µs "
        f"(target: no more: **{'yes' if po['callback_us_per_record'] <= 1.1 * po['numpy_copy_us'] else 'no'}**, "
        f"10% for timer noise).",
        "- Other dln cases (µs per step): " + ", ".join(
            f"`{k}` {v:.4g}" for k, v in sorted(d.items()) if ":" not in k) + ".",
        "",
        END,
    ]
    table = "\n".join(lines)
    print(table)
    if not args.no_write and not args.quick:
        text = DOC.read_text()
        if BEGIN in text and END in text:
            text = text[:text.index(BEGIN)] + table + text[text.index(END) + len(END):]
        else:
            text += "\n" + table + "\n"
        DOC.write_text(text)
        log(f"wrote {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
