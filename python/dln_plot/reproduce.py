"""python3 -m dln_plot.reproduce NAME DIR: the figures and claims of a reproduction whose runs
`dln reproduce NAME` has written under DIR. Each claim is printed with the number measured this
time and whether it holds; the exit status is 0 when the reproduction ran (claims that do not
hold are results, not errors)."""

import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .plot import read_metrics, _save  # noqa: E402


def _run(path):
    columns = read_metrics(os.path.join(path, "metrics.csv"))
    with open(os.path.join(path, "summary.json"), encoding="utf-8") as f:
        return columns, json.load(f)


def _claim(text, holds):
    print(f"claim: {text} — {'holds' if holds else 'does not hold'}")
    return holds


def basu_bound(t, u0, depth, m, kappa2, scale=1.0, substeps=200):
    """Basu et al.'s bound (17) as an equality, dU/dt = a L U^{2-2/L} (M - kappa2 U), by RK4 on
    a fine grid through the times t (t[0] is the start); inf once it blows up."""
    def f(u):
        return scale * depth * max(u, 0.0) ** (2.0 - 2.0 / depth) * (m - kappa2 * u)

    out, u = [u0], u0
    for a, b in zip(t[:-1], t[1:]):
        h = (b - a) / substeps
        for _ in range(substeps):
            if not np.isfinite(u) or abs(u) > 1e150:
                u = np.inf
                break
            k1 = f(u)
            k2 = f(u + h / 2 * k1)
            k3 = f(u + h / 2 * k2)
            k4 = f(u + h * k3)
            u = u + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        out.append(u)
    return np.array(out)


def _transition(t, u, top):
    """Times at which u first reaches 10%, 50% and 90% of top."""
    times = []
    for frac in (0.1, 0.5, 0.9):
        hit = np.nonzero(u >= frac * top)[0]
        times.append(t[hit[0]] if len(hit) else np.inf)
    return times


def basu_fig1(root):
    held = []
    nets = {"three_layer": 2, "five_layer": 4}
    fig, axes = plt.subplots(2, 2, figsize=(11, 8))
    kappas = None
    for (name, depth), ax in zip(nets.items(), axes[0]):
        c, s = _run(os.path.join(root, name))
        t = c["t"]
        sigma = s["sigma_yx_fro"]
        fro = [c[f"fro.{l}"] for l in range(1, depth + 1)]
        for l, values in enumerate(fro, 1):
            ax.plot(t, values, label=rf"$\Vert W_{l}\Vert_F$")
        ax.plot(t, c["e2e_fro"], "k--", label=r"$\Vert W_e\Vert_F$")
        ax.axhline(sigma, color="gray", lw=0.8, ls=":", label=r"$\Vert\Sigma_{yx}\Vert_F$")
        ax.set(xscale="symlog", xlabel="t = η·step", title=f"{name.replace('_', '-')} net ({depth} layers)")
        ax.legend(fontsize="small")
        gap, bound = np.nanmax(c["norm_gap"]), c["norm_gap_bound"][0]
        held.append(_claim(f"{name}: layer norm gaps stay within their initial bound: max "
                           f"{gap:.3f} <= {bound:.3f}", gap <= bound))
        rel = abs(c["e2e_fro"][-1] - sigma) / sigma
        held.append(_claim(f"{name}: ||W_e||_F approaches ||Sigma_yx||_F: {c['e2e_fro'][-1]:.4f} vs "
                           f"{sigma:.4f} (rel. diff {rel:.1e} < 1e-3)", rel < 1e-3))
        # The bound (17) with kappa_1, kappa_2 estimated from this run: kappa_1 = max ||W_e|| /
        # ||Sigma_yx|| and kappa_2 = min ||W_e|| / U make its two inequalities hold along the run.
        kappa1 = np.nanmax(c["e2e_fro"]) / sigma
        kappa2 = np.nanmin(c["e2e_fro"] / c["basu_U"])
        m = (2 * kappa1 + 1) * sigma
        bound17 = basu_bound(t, c["basu_U"][0], depth, m, kappa2)
        product = np.prod(fro, axis=0)
        worst = np.nanmax(product / bound17)
        held.append(_claim(f"{name}: prod_l ||W_l||_F stays under the bound (17) integrated with "
                           f"kappa_1 = {kappa1:.3f}, kappa_2 = {kappa2:.3f} from the run: max "
                           f"ratio {worst:.3f} <= 1", worst <= 1.0 + 1e-9))
        if depth == 2:
            kappas = (kappa1, kappa2, sigma)
            ax2 = axes[1][0]
            ax2.plot(t, product, label=r"$\Vert W_1\Vert_F \Vert W_2\Vert_F$")
            ax2.plot(t, c["basu_U"], label="U")
            ax2.plot(t, bound17, "k--", label="bound (17)")
            ax2.set(xscale="symlog", yscale="log", xlabel="t = η·step",
                    title="three-layer net: growth and its bound")
            ax2.legend(fontsize="small")

    # (iii) The bound alone for L = 2, 3, 4 with the same constants, from a small start.
    kappa1, kappa2, sigma = kappas
    m = (2 * kappa1 + 1) * sigma
    t = np.linspace(0.0, 0.4, 4001)
    ax3 = axes[1][1]
    t50s, widths = [], []
    for depth in (2, 3, 4):
        u = basu_bound(t, 1e-2, depth, m, kappa2, substeps=4)
        ax3.plot(t, u, label=f"L = {depth}")
        t10, t50, t90 = _transition(t, u, m / kappa2)
        t50s.append(t50)
        widths.append(t90 - t10)
    ax3.set(yscale="log", xlabel="t", title=r"bound (17) from $U_0 = 10^{-2}$, same $\kappa_1, \kappa_2$")
    ax3.legend(fontsize="small")
    later = all(a < b for a, b in zip(t50s, t50s[1:]))
    sharper = all(a > b for a, b in zip(widths, widths[1:]))
    held.append(_claim("bound (17) for L = 2, 3, 4: later transitions (t50 = "
                       + ", ".join(f"{x:.3f}" for x in t50s) + ")", later))
    held.append(_claim("bound (17) for L = 2, 3, 4: sharper transitions (10-90% width = "
                       + ", ".join(f"{x:.3f}" for x in widths) + ")", sharper))
    fig.tight_layout()
    _save(fig, root, "basu_fig1")
    print(f"dln: {sum(held)} of {len(held)} claims hold")


def _runs_csv(path):
    import csv
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _depth(widths):
    return len(json.loads(widths)) - 1


def steinitz_fig1(root):
    held = []
    data_sets = ("diabetes", "mnist")
    fig, axes = plt.subplots(1, len(data_sets), figsize=(12, 4.5))
    for name, ax in zip(data_sets, axes):
        # Dynamics independent of intermediate width: the grid runs of equal depth and rate agree,
        # as the end-to-end equation predicts, while the rate is below the one the grid selects
        # (near the stability edge the O(eta^2) terms, which do depend on the widths, take over).
        grid = _runs_csv(os.path.join(root, name, "grid", "runs.csv"))
        best = _runs_csv(os.path.join(root, name, "best", "runs.csv"))
        selected = {}
        for r in best:
            d = _depth(r["model.widths"])
            selected[d] = min(selected.get(d, np.inf), float(r["optimizer.lr"]))
        groups = {}
        for r in grid:
            if r["status"] == "completed":
                groups.setdefault((_depth(r["model.widths"]), float(r["optimizer.lr"])), []).append(
                    float(r["loss"]))
        below, at_edge = [0.0], [0.0]
        for (d, lr), v in groups.items():
            if len(v) > 1:
                (below if lr < selected.get(d, 0) else at_edge).append((max(v) - min(v)) / min(v))
        held.append(_claim(f"{name}: nets that differ only in intermediate width train alike "
                           f"(same depth and rate, below the selected rate): max rel. diff of the "
                           f"loss {max(below):.1e} < 1e-6 (at and above the selected rate: "
                           f"{max(at_edge):.1e})", max(below) < 1e-6))
        # Long phase: the curves, and the ranking of depths by final loss.
        by_depth = {}
        for r in best:
            c = read_metrics(os.path.join(root, name, "best", r["run"], "metrics.csv"))
            ax.plot(c["step"], c["loss"], lw=1.1,
                    label=f"{r['model.widths']}, η = {float(r['optimizer.lr']):g}")
            d = _depth(r["model.widths"])
            by_depth[d] = min(by_depth.get(d, np.inf), float(r["loss"]))
        ax.set(yscale="log", xlabel="epoch", ylabel="l2 loss", title=f"{name}: best rate per architecture")
        ax.legend(fontsize="x-small")
        ranking = sorted(by_depth, key=by_depth.get)
        text = ", ".join(f"depth {d} ({by_depth[d]:.6g})" for d in ranking)
        held.append(_claim(f"{name}: Steinitz's ranking, shallow best then two layers, after the "
                           f"long phase: {text}", ranking[:2] == [1, 2]))
    fig.tight_layout()
    _save(fig, root, "steinitz_fig1")
    print(f"dln: {sum(held)} of {len(held)} claims hold")


REPRODUCTIONS = {"basu-fig1": basu_fig1, "steinitz-fig1": steinitz_fig1}


def main(argv=None):
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] not in REPRODUCTIONS:
        print(f"usage: python3 -m dln_plot.reproduce {{{','.join(REPRODUCTIONS)}}} DIR", file=sys.stderr)
        return 2
    REPRODUCTIONS[args[0]](args[1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
