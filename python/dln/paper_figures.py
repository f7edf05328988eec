"""python3 -m dln.paper_figures NAME DIR: the figures and claims of a reproduction whose runs
`dln reproduce NAME` has written under DIR. Each claim is printed with the number measured this
time and whether it holds; the exit status is 0 when the reproduction ran (claims that do not
hold are results, not errors)."""

import json
import os
import sys
import tomllib

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from .plot import read_metrics, _save  # noqa: E402


def _run(path):
    columns = read_metrics(os.path.join(path, "metrics.csv"))
    with open(os.path.join(path, "summary.json"), encoding="utf-8") as f:
        return columns, json.load(f)


def _finish(fig, root, name, held):
    """Saves the reproduction's figure and prints how many of its claims hold."""
    fig.tight_layout()
    _save(fig, root, name)
    print(f"dln: {sum(held)} of {len(held)} claims hold")


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
    _finish(fig, root, "basu_fig1", held)


def basu_fig2(root):
    """Basu et al.'s Fig. 2 and Section 3 on a 7-layer ReLU net learning MNIST: layer norms, the
    growth of their squares (equal for every layer of a bias-free ReLU net under gradient flow,
    by Du, Hu & Lee's per-unit conservation summed over the units), the growth mismatch of
    adjacent layers (Conjecture 4) and the pattern agreement alpha_l."""
    held = []
    c, s = _run(os.path.join(root, "relu7"))
    steps = c["step"]
    L = len(s["widths"]) - 1
    hidden = L - 1
    fro = np.array([c[f"fro.{l}"] for l in range(1, L + 1)])
    print(f"dln: basu-fig2: {L} layers, {s['steps']} SGD steps of batch 100 on the 10,000 "
          f"digits; final loss {s['final_loss']:.3g}, training accuracy {c['accuracy'][-1]:.4f}")
    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5))
    ax = axes[0][0]
    for l in range(L):
        ax.plot(steps, fro[l] / fro[l][0], label=rf"$W_{l + 1}$")
    ax.set(xlabel="step", ylabel=r"$\Vert W_l\Vert_F / \Vert W_l(0)\Vert_F$",
           title="(a) layer norms (1 = next to the input)")
    ax.legend(fontsize="small", ncol=2)
    ax = axes[0][1]
    growth = fro ** 2 - (fro[:, :1] ** 2)
    for l in range(L):
        ax.plot(steps, growth[l], label=rf"$W_{l + 1}$")
    ax.set(xlabel="step", ylabel=r"$\Vert W_l\Vert_F^2 - \Vert W_l(0)\Vert_F^2$",
           title="(b) growth of the squared norms")
    ax.legend(fontsize="small", ncol=2)
    ax = axes[1][0]
    for l in range(1, L):
        ax.plot(steps, c[f"growth_mismatch.{l}"], label=f"pair ({l}, {l + 1})")
    ax.set(yscale="log", xlabel="step",
           ylabel=r"$\Vert \frac{d}{dt}W_{l+1}^TW_{l+1} - \frac{d}{dt}W_lW_l^T\Vert_F$",
           title="(c) growth mismatch of adjacent layers (Conjecture 4)")
    ax.legend(fontsize="small", ncol=2)
    ax = axes[1][1]
    for l in range(1, hidden + 1):
        ax.plot(steps, c[f"pattern_agreement.{l}"], label=f"hidden layer {l}")
    ax.set(yscale="symlog", xlabel="step", ylabel=r"$\alpha_l$", title=(
        "(d) same-label pairs with identical ReLU patterns"))
    ax.set_yscale("symlog", linthresh=1e-7)
    ax.legend(fontsize="small", ncol=2)

    # Late in training: the last half of the records.
    late = len(steps) // 2
    # The paper's Fig. 2 plots six layers and calls 4-6 the upper ones: W_4, W_5, W_6 here (W_7,
    # the output layer, has a third of their norm; its squared norm grows alike, claim 2).
    upper = [3, 4, 5]
    lower = [0, 1, 2]

    def spread(layers):
        rates = np.array([fro[l][-1] - fro[l][late] for l in layers])
        return (rates.max() - rates.min()) / abs(rates.mean()), rates

    up_spread, up_rates = spread(upper)
    low_spread, low_rates = spread(lower)
    held.append(_claim(
        "the upper layers (W_4, W_5, W_6, as the paper numbers them) grow at a similar rate late "
        "in training: growth of ||W_l||_F over the last half " + ", ".join(
            f"{x:.4f}" for x in up_rates) + f" (relative spread {up_spread:.3f} < 0.1; the lower "
        f"W_1-W_3: {low_spread:.3f})", up_spread < 0.1))
    sq = np.array([growth[l][-1] - growth[l][late] for l in range(L)])
    sq_spread = (sq.max() - sq.min()) / abs(sq.mean())
    held.append(_claim(
        "every layer's squared norm grows by the same amount late in training (Du, Hu & Lee, "
        "summed over units; not only the upper layers): growth of ||W_l||_F^2 over the last half "
        + ", ".join(f"{x:.4f}" for x in sq) + f" (relative spread {sq_spread:.3f} < 0.05)",
        sq_spread < 0.05))
    pairs = [f"growth_mismatch.{l}" for l in range(1, L)]
    fall = {p: c[p][-1] / np.nanmax(c[p]) for p in pairs}
    held.append(_claim(
        "the growth mismatch of the upper pairs falls: final / largest "
        + ", ".join(f"{fall[p]:.4f}" for p in pairs[-2:]) + " (< 0.05)",
        all(fall[p] < 0.05 for p in pairs[-2:])))
    held.append(_claim(
        f"the upper pair's mismatch ends below the lowest pair's: {c[pairs[-1]][-1]:.2e} vs "
        f"{c[pairs[0]][-1]:.2e} (it falls for every pair, "
        + ", ".join(f"{fall[p]:.3f}" for p in pairs) + " of its largest, as the gradient vanishes)",
        c[pairs[-1]][-1] < c[pairs[0]][-1]))
    alpha = [c[f"pattern_agreement.{l}"][-1] for l in range(1, hidden + 1)]
    held.append(_claim(
        "pattern agreement grows towards the output (alpha_6 > alpha_1 at the end): "
        + ", ".join(f"{a:.2e}" for a in alpha), alpha[-1] > alpha[0]))
    held.append(_claim(
        f"identical patterns are the exception, not the rule: the largest alpha_l is "
        f"{max(alpha):.2e} of same-label pairs (< 0.01), so the cancellation in (29) that "
        f"Section 3 argues for is rare at the level of whole patterns", max(alpha) < 0.01))
    _finish(fig, root, "basu_fig2", held)


def _runs_csv(path):
    import csv
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _depth(widths):
    """The depth of a runs.csv widths cell (10-8-6-3)."""
    return len(widths.split("-")) - 1


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
    _finish(fig, root, "steinitz_fig1", held)


def steinitz_gas(root):
    """Steinitz's protocol on the gas-sensor Ethanol data: (a) the grid's mean 200-epoch loss of
    each rate per net (10 restarts), the selected rate marked; (b) the long phase's loss per
    net, the mean over the re-drawn inits, from epoch 1 on log axes."""
    held = []
    base = os.path.join(root, "ethanol")
    selection = _runs_csv(os.path.join(base, "selection.csv"))
    best = _runs_csv(os.path.join(base, "best", "runs.csv"))
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    nets = list(dict.fromkeys(r["model.widths"] for r in selection))
    ax = axes[0]
    chosen = {}
    for net in nets:
        rows = [r for r in selection if r["model.widths"] == net]
        lr = np.array([float(r["optimizer.lr"]) for r in rows])
        score = np.array([float(r["loss_mean"]) for r in rows])
        line, = ax.plot(lr, score, "o-", ms=3, lw=1, label=net)
        for r in rows:
            if r["selected"] == "1":
                chosen[net] = (float(r["optimizer.lr"]), float(r["loss_mean"]))
                ax.plot(*chosen[net], "*", ms=12, color=line.get_color())
    ax.set(xscale="log", yscale="log", xlabel="learning rate",
           ylabel="mean final loss, 10 restarts x 200 epochs",
           title="gas sensor (Ethanol): rate grid (diverged rates left out)")
    ax.legend(fontsize="x-small")
    ax = axes[1]
    curves, finals = {}, {}
    for r in best:
        c = read_metrics(os.path.join(base, "best", r["run"], "metrics.csv"))
        curves.setdefault(r["model.widths"], []).append(c)
        finals.setdefault(r["model.widths"], []).append(float(r["loss"]))
    mean = {}
    print(f"{'net':>10} {'depth':>5} {'selected rate':>13} {'grid loss':>12} {'final loss':>12}"
          f" {'spread':>9}")
    for net in nets:
        if net not in curves:
            continue
        step = curves[net][0]["step"]
        mean[net] = np.mean([c["loss"] for c in curves[net]], axis=0)
        ax.plot(step[1:], mean[net][1:], lw=1.2, label=f"{net}, η = {chosen[net][0]:g}")
        f = np.array(finals[net])
        print(f"{net:>10} {_depth(net):>5} {chosen[net][0]:>13g} {chosen[net][1]:>12.6g} "
              f"{f.mean():>12.6g} {f.max() - f.min():>9.3g}")
    ax.set(xscale="log", yscale="log", xlabel="epoch", ylabel="l2 loss (mean over 3 inits)",
           title="30,000 epochs at the selected rate")
    ax.legend(fontsize="x-small")
    # Steinitz: "Shallow networks still performed best, followed closely by 3-layer networks."
    by_depth = {}
    for net, f in finals.items():
        by_depth.setdefault(_depth(net), []).extend(f)
    depth_loss = {d: float(np.mean(v)) for d, v in by_depth.items()}
    ranking = sorted(depth_loss, key=depth_loss.get)
    text = ", ".join(f"depth {d} ({depth_loss[d]:.6g})" for d in ranking)
    held.append(_claim(f"shallow nets train best after 30,000 epochs: {text}", ranking[0] == 1))
    held.append(_claim(f"followed closely by 3-layer nets (Steinitz's order 1, 3, 2): measured "
                       f"order {', '.join(map(str, ranking))}", ranking == [1, 3, 2]))
    # "The optimization dynamics were independent of intermediate layer width."
    for d, (a, b) in ((2, ("128-1-1", "128-2-1")), (3, ("128-1-1-1", "128-2-2-1"))):
        if a not in mean or b not in mean:
            continue
        fa, fb = np.mean(finals[a]), np.mean(finals[b])
        final_gap = abs(fa - fb) / min(fa, fb)
        held.append(_claim(f"depth {d}: widths 1 and 2 end alike, relative gap of the final "
                           f"losses {final_gap:.2e} < 1e-2", final_gap < 1e-2))
        curve_gap = float(np.max(np.abs(mean[a] - mean[b]) / np.minimum(mean[a], mean[b])))
        held.append(_claim(f"depth {d}: widths 1 and 2 follow the same curve, largest relative "
                           f"gap over the records {curve_gap:.2e} < 1e-2 (his i.i.d. init is not "
                           f"balanced, so the end-to-end equation holds only approximately)",
                           curve_gap < 1e-2))
    _finish(fig, root, "steinitz_gas", held)


# The AGD paper ("Faster Gradient Descent in Deep Linear Networks: the Advantage of Depth").

def _loss(root, *parts):
    return read_metrics(os.path.join(root, *parts, "metrics.csv"))


def _first_below(values, level):
    """First recorded index at which values < level, or None."""
    hit = np.nonzero(values < level)[0]
    return int(hit[0]) if len(hit) else None


def _steps(values, levels=(1e-2, 1e-4, 1e-8)):
    return ", ".join(f"{lv:g}: {_first_below(values, lv)}" for lv in levels)


def _below_after(a, b, skip=3):
    """Indices >= skip at which a is not below b (loss at 0 counts as equal, not below)."""
    n = min(len(a), len(b))
    return [i for i in range(skip, n) if not (a[i] < b[i] or (a[i] == 0 and b[i] == 0))]


def agd_fig1(root):
    held = []
    fig, axes = plt.subplots(1, 4, figsize=(18, 4.2))
    # (a) The pitfalls against AGD on x = 1, y = 1.
    ax = axes[0]
    runs = {a: _loss(root, "pitfalls", a) for a in ("plateau", "sigmoid", "agd_L2", "agd_L4")}
    styles = {"plateau": "b:", "sigmoid": "r:", "agd_L2": "k-", "agd_L4": "g-"}
    for a, c in runs.items():
        ax.plot(c["step"], c["loss"], styles[a], label=a.replace("_", " "))
    ax.set(yscale="log", xlabel="iteration", ylabel="loss", title="pitfalls vs AGD (η = 0.1)")
    ax.legend(fontsize="small")
    plateau = runs["plateau"]["loss"]
    held.append(_claim(f"plateau (Shamir): from (1, -1) GD stays on the plateau L = 1/2: min loss "
                       f"over {len(plateau) - 1} steps {plateau.min():.6f} >= 0.5 - 1e-9",
                       plateau.min() >= 0.5 - 1e-9))
    sig = runs["sigmoid"]["loss"]
    t10, t90 = _first_below(sig, 0.9 * sig[0]), _first_below(sig, 0.1 * sig[0])
    agd_fast = max(_first_below(runs[a]["loss"], 1e-6 * runs[a]["loss"][0]) or 10**9
                   for a in ("agd_L2", "agd_L4"))
    held.append(_claim(f"sigmoid (Saxe): depth 4 from epsilon = 0.3 at eta'/L learns almost "
                       f"nothing, then fast: 10% of the loss gone at step {t10}, 90% at {t90}; "
                       f"AGD (depth 2 and 4) is down by 1e6 by step {agd_fast}",
                       t10 is not None and t90 is not None and agd_fast < t10))
    # (b) Instance-wise speed-up: GD shallow vs AGD depth 2 at three rates.
    ax = axes[1]
    for eta, colour in (("eta_star", "C0"), ("eta_0.1", "C1"), ("eta_0.001", "C2")):
        gd, agd = _loss(root, "instance", "gd_" + eta), _loss(root, "instance", "agd_" + eta)
        label = eta.replace("eta_", "η = ").replace("star", "η*")
        ax.plot(gd["step"], gd["loss"], ":", color=colour, label=f"GD, {label}")
        ax.plot(agd["step"], agd["loss"], "-", color=colour, label=f"AGD, {label}")
        bad = _below_after(agd["loss"], gd["loss"])
        held.append(_claim(f"instance-wise speed-up at {label}: AGD (depth 2) below shallow GD at "
                           f"every recorded step after the first 3 ({len(bad)} exceptions of "
                           f"{len(gd['loss']) - 3}); final {agd['loss'][-1]:.3g} vs "
                           f"{gd['loss'][-1]:.3g}", not bad))
    ax.set(yscale="log", xscale="symlog", xlim=(0, None), xlabel="iteration",
           title="instance-wise speed-up")
    ax.legend(fontsize="x-small")
    # (c) Depth 2, 4, 8 at eta = 0.1.
    ax = axes[2]
    reach = {}
    for a in ("gd_L1", "agd_L2", "agd_L4", "agd_L8"):
        c = _loss(root, "depth", a)
        ax.plot(c["step"], c["loss"], ":" if a.startswith("gd") else "-", label=a.replace("_", " "))
        reach[a] = _first_below(c["loss"], 1e-4)
    ax.set(yscale="log", xlabel="iteration", title="effect of depth (η = 0.1)")
    ax.legend(fontsize="small")
    gd1 = _loss(root, "depth", "gd_L1")["loss"]
    faster = all(not _below_after(_loss(root, "depth", a)["loss"], gd1)
                 for a in ("agd_L2", "agd_L4", "agd_L8"))
    held.append(_claim("depth: AGD at depth 2, 4, 8 below shallow GD at every recorded step after "
                       "the first 3; steps to loss 1e-4: "
                       + ", ".join(f"{a} {reach[a]}" for a in reach), faster))
    r2, r4, r8 = reach["agd_L2"], reach["agd_L4"], reach["agd_L8"]
    held.append(_claim(f"the advantage of depth diminishes: gain from 2 to 4 layers {r2 - r4} "
                       f"steps, from 4 to 8 layers {r4 - r8} steps",
                       None not in (r2, r4, r8) and r2 - r4 > r4 - r8 >= 0))
    # (d) Two-layer GD from standard inits at tuned rates vs AGD at eta*.
    ax = axes[3]
    agd_star = _loss(root, "instance", "agd_eta_star")["loss"]
    ax.plot(np.arange(len(agd_star)), agd_star, "k-", label="AGD, η*")
    worse = []
    for r in _runs_csv(os.path.join(root, "inits", "best", "runs.csv")):
        c = _loss(root, "inits", "best", r["run"])
        ax.plot(c["step"], c["loss"], ":", label=f"GD {r['init.scheme']}, η = {float(r['optimizer.lr']):g}")
        t_gd, t_agd = _first_below(c["loss"], 1e-8), _first_below(agd_star, 1e-8)
        worse.append(f"{r['init.scheme']} (η = {float(r['optimizer.lr']):g}) reaches 1e-8 at "
                     f"step {t_gd}")
        held.append(_claim(f"AGD at η* reaches loss 1e-8 at step {t_agd}, before two-layer GD from "
                           f"{r['init.scheme']} at its tuned rate {float(r['optimizer.lr']):g} "
                           f"(step {t_gd})", t_agd is not None and (t_gd is None or t_agd < t_gd)))
    ax.set(yscale="log", xscale="symlog", xlim=(0, None), xlabel="iteration",
           title="standard inits, tuned rates")
    ax.legend(fontsize="x-small")
    _finish(fig, root, "agd_fig1", held)


def _bend(c, target):
    """How far the path of theta_e bows out in the second phase: after the error along the first
    eigenvector has fallen 100x, the largest departure of Theta(1) from theta*(1), relative to
    theta*(1). GD learns the second coordinate along a straight line Theta(1) = theta*(1)."""
    e1 = np.abs(c["err_eig.1"])
    start = _first_below(e1, 0.01 * e1[0])
    if start is None:
        return float("nan")
    return float(np.max(np.abs(c["theta_e.1"][start:] - target[0])) / target[0])


def _peaks(y, min_height=1e-3):
    """Local maxima of y above min_height times its largest value."""
    top = np.nanmax(y)
    return [i for i in range(1, len(y) - 1)
            if y[i] > y[i - 1] and y[i] >= y[i + 1] and y[i] > min_height * top]


def agd_fig2(root):
    held = []
    # toy.agd: x_i = sqrt(2 lambda_i) e_i, y = 1, so theta* = (1/sqrt(2), 1/sqrt(2 * 0.01)).
    target = (1 / np.sqrt(2), 1 / np.sqrt(0.02))
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    bends = {}
    for a, style in (("agd", "g-"), ("gd_shallow", "k:"), ("gd_two_layer", "b--")):
        c = _loss(root, "paths", a)
        axes[0].plot(c["theta_e.1"], c["theta_e.2"], style, label=a.replace("_", " "))
        bends[a] = _bend(c, target)
    axes[0].plot(*target, "r*", ms=10, label="θ*")
    axes[0].set(xlabel=r"$\Theta^{(1:L)}(1)$", ylabel=r"$\Theta^{(1:L)}(2)$",
                title="effective parameters (η = 0.1, 400 steps)")
    axes[0].legend(fontsize="small")
    text = ", ".join(f"{a} {b:.3f}" for a, b in bends.items())
    held.append(_claim(f"paths: AGD's curved, GD's straight; once the first coordinate is learnt, "
                       f"largest departure of Theta(1) from theta*(1), relative: {text} (curved: "
                       f"> 0.05; straight: < 0.02, twice the 1% left when the phase starts)",
                       bends["agd"] > 0.05 and max(bends["gd_shallow"], bends["gd_two_layer"]) < 0.02))
    c = _loss(root, "paths", "agd")
    axes[1].plot(c["step"], np.abs(c["err_eig.1"]), label=r"$|E(1)|$ (λ = 1)")
    axes[1].plot(c["step"], np.abs(c["err_eig.2"]), label=r"$|E(2)|$ (λ = 0.01)")
    axes[1].set(yscale="log", xlabel="iteration", title="AGD: error along each eigenvector")
    axes[1].legend(fontsize="small")
    axes[2].plot(c["step"], c["yhat_dot_err"], "g-", label="AGD")
    g = _loss(root, "paths", "gd_shallow")
    axes[2].plot(g["step"], g["yhat_dot_err"], "k:", label="GD shallow")
    axes[2].set(xlabel="iteration", ylabel=r"$\langle \hat Y, E\rangle$", title="alignment of output and error")
    axes[2].legend(fontsize="small")
    peaks = _peaks(c["yhat_dot_err"])
    e1 = _first_below(np.abs(c["err_eig.1"]), 0.1 * abs(c["err_eig.1"][0]))
    e2 = _first_below(np.abs(c["err_eig.2"]), 0.1 * abs(c["err_eig.2"][0]))
    held.append(_claim(f"AGD accelerates in one phase per eigenvalue: <Y^, E> peaks at steps "
                       f"{peaks} (2 eigenvalues); |E| along the eigenvector of 1 falls by 10x at "
                       f"step {e1}, along that of 0.01 at step {e2}",
                       len(peaks) == 2 and e1 is not None and e2 is not None and
                       peaks[0] <= e1 < peaks[1] <= e2))
    _finish(fig, root, "agd_fig2", held)


def agd_fig3(root):
    held = []
    fig, axes = plt.subplots(1, 4, figsize=(18, 4.2))
    gd, agd, gd1 = (_loss(root, "unstable", a) for a in ("gd_two_layer", "agd", "gd_shallow"))
    axes[0].plot(gd["step"], gd["fro.2"], "k-", label=r"GD: $|\Theta(3)|$")
    axes[0].axhline(np.sqrt(20), color="r", lw=0.8, ls=":", label=r"$\sqrt{20}$")
    axes[0].set(xlabel="iteration", title="second layer of two-layer GD")
    axes[0].legend(fontsize="small")
    axes[1].plot(gd["step"], gd["loss"], "k-", label="GD, two layers")
    axes[1].plot(agd["step"], agd["loss"], "g:", label="AGD, two layers")
    axes[1].plot(gd1["step"], gd1["loss"], "b--", label="GD, shallow")
    axes[1].set(yscale="log", xlabel="iteration", title="loss (η = 0.1)")
    axes[1].legend(fontsize="small")
    for l, ax in ((1, axes[2]), (2, axes[3])):
        for i in (1, 2):
            ax.plot(gd["step"], gd[f"kernel_eig.{l}.{i}"], "k-", lw=1)
            ax.plot(agd["step"], agd[f"kernel_eig.{l}.{i}"], "g:", lw=1.5)
        ax.axhline(-1, color="r", lw=0.8, ls=":")
        ax.set(xlabel="iteration", title=rf"spectrum of $I - \frac{{\eta_{l}}}{{n}} K^{{({l})}}$ (GD solid, AGD dotted)")
    rises = np.nonzero(np.diff(gd["loss"]) > 0)[0] + 1
    cross = _first_below(-gd["fro.2"], -np.sqrt(20))
    first = int(rises[0]) if len(rises) else None
    held.append(_claim(f"two-layer GD: the loss rises at {len(rises)} steps, the first at step "
                       f"{first}, after |Theta(3)| passes sqrt(20) at step {cross} (there "
                       f"{gd['fro.2'][first] if first is not None else float('nan'):.3f})",
                       first is not None and cross is not None and cross <= first))
    rho = np.nanmax(gd["kernel_rho.1"])
    low = min(np.nanmin(gd[f"kernel_eig.1.{i}"]) for i in (1, 2))
    held.append(_claim(f"two-layer GD: the spectrum of I - eta/n K^(1) leaves the unit interval: "
                       f"max kernel_rho.1 {rho:.3f} > 1, lowest eigenvalue {low:.3f}", rho > 1))
    agd_rises = int(np.sum(np.diff(agd["loss"]) > 0))
    rho_agd = max(np.nanmax(agd[f"kernel_rho.{l}"]) for l in (1, 2))
    held.append(_claim(f"AGD at the same rate: the loss never rises ({agd_rises} rises) and every "
                       f"spectrum stays inside: max kernel_rho {rho_agd:.5f} <= 1",
                       agd_rises == 0 and rho_agd <= 1.0))
    _finish(fig, root, "agd_fig3", held)


def agd_fig4(root):
    held = []
    sets = (("mnist", "MNIST 3 vs 8"), ("fashion", "Fashion-MNIST T-shirt/top vs shirt"))
    fig, axes = plt.subplots(1, 4, figsize=(18, 4.2))
    for k, (name, title) in enumerate(sets):
        best = _runs_csv(os.path.join(root, f"{name}_gd", "best", "runs.csv"))[0]
        eta = float(best["optimizer.lr"])
        gd = _loss(root, f"{name}_gd", "best", best["run"])
        runs = {"GD, shallow": gd}
        for a in ("agd_L2", "agd_L4", "agd_L8"):
            runs[f"AGD, depth {a[-1]}"] = _loss(root, f"{name}_agd", a)
        for j, (column, what) in enumerate((("loss", "train"), ("test_loss", "test"))):
            ax = axes[2 * k + j]
            for label, c in runs.items():
                ax.plot(c["step"], c[column], ":" if label.startswith("GD") else "-", label=label)
            ax.set(yscale="log", xlabel="iteration", ylabel=f"{what} loss",
                   title=f"{title}: {what} (η = {eta:g})")
            ax.legend(fontsize="small")
            for label, c in runs.items():
                if label.startswith("GD"):
                    continue
                bad = _below_after(c[column], gd[column], skip=1)
                held.append(_claim(
                    f"{name}: {label} below shallow GD on {what} loss at every recorded step after "
                    f"the first ({len(bad)} exceptions of {len(gd[column]) - 1}); final "
                    f"{c[column][-1]:.5g} vs {gd[column][-1]:.5g}", not bad))
    _finish(fig, root, "agd_fig4", held)


def hou_lp_rate(root):
    held = []
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for (p, ax) in zip((4, 6), axes):
        want = -1.0 / (p - 2)
        runs = {a: _loss(root, f"p{p}", a) for a in ("shallow", "scalar_depth")}
        for a, c in runs.items():
            keep = c["step"] >= 1
            ax.plot(c["step"][keep], c["error"][keep], "-" if a == "shallow" else "--",
                    label=f"{a.replace('_', ' ')}: error")
            slope = c["loglog_slope.error"][-1]
            held.append(_claim(f"l_{p}, {a.replace('_', '-')} model: fitted slope of log error "
                               f"against log t over the last fifth {slope:.4f}, theory "
                               f"-1/(p-2) = {want:.4f} (within 0.05)", abs(slope - want) <= 0.05))
        s = runs["scalar_depth"]
        twin = ax.twinx()
        twin.plot(s["step"][s["step"] >= 1], s["fro.2"][s["step"] >= 1], "g:", label="s (scalar layer)")
        twin.set_ylabel("s")
        ax.set(xscale="log", yscale="log", xlabel="step", ylabel=r"$\Vert \hat Y - Y\Vert$",
               title=f"l_{p} regression on the toy problem")
        ax.legend(loc="lower left", fontsize="small")
        twin.legend(loc="upper right", fontsize="small")
        # Steps to 20% and 10% of the initial error (the scalar-depth model starts next to the
        # saddle at s = 0, so its first few steps are slower).
        e0 = runs["shallow"]["error"][0]
        reach = {}
        for a, c in runs.items():
            reach[a] = []
            for f in (0.2, 0.1):
                i = _first_below(c["error"], f * e0)
                reach[a].append(None if i is None else int(c["step"][i]))
        ahead = all(d is not None and (h is None or d < h)
                    for d, h in zip(reach["scalar_depth"], reach["shallow"]))
        held.append(_claim(f"l_{p}: the scalar-depth model is ahead at high error: steps to 20% and "
                           f"10% of the initial error {reach['scalar_depth']} against "
                           f"{reach['shallow']} (shallow)", ahead))
        late = runs["scalar_depth"]["error"][-1] / runs["shallow"]["error"][-1]
        print(f"dln: l_{p}: final error ratio scalar-depth / shallow {late:.3f} (same rate, "
              f"another constant)")
    _finish(fig, root, "hou_lp_rate", held)


def _svm_direction(X, y):
    """The max-margin direction through the origin, by scikit-learn's LinearSVC (liblinear, hinge
    loss, no intercept, C large): an independent check of dln's own."""
    from sklearn.svm import LinearSVC
    svc = LinearSVC(fit_intercept=False, loss="hinge", C=1e6, tol=1e-12, max_iter=10**7)
    svc.fit(X, y)
    w = svc.coef_[0]
    return w / np.linalg.norm(w)


def ji_telgarsky_fig1(root):
    held = []
    X = np.load(os.path.join(root, "separable", "deep", "data_X.npy"))
    y = np.load(os.path.join(root, "separable", "deep", "data_Y.npy"))[:, 0]
    u = _svm_direction(X, y)
    gamma = np.min(y * (X @ u))
    runs = {a: _loss(root, "separable", a) for a in ("deep", "linear")}
    fig, axes = plt.subplots(1, 2, figsize=(12, 5))
    ax = axes[0]
    ax.scatter(*X[y > 0].T, c="tab:blue", s=18, label="+1")
    ax.scatter(*X[y < 0].T, c="tab:red", s=18, label="-1")
    lim = 1.1 * np.abs(X).max()
    line = np.array([-lim, lim])
    for w, style, label in ((u, "k-", "max-margin (SVM)"),):
        ax.plot(-w[1] * line, w[0] * line, style, lw=2, label=label)
    for a, style in (("deep", "g--"), ("linear", "m:")):
        c = runs[a]
        w = np.array([c["theta_e.1"][-1], c["theta_e.2"][-1]])
        w = w / np.linalg.norm(w)
        ax.plot(-w[1] * line, w[0] * line, style, lw=2, label=f"{a} net")
        angle = np.degrees(np.arccos(np.clip(abs(w @ u), -1, 1)))
        held.append(_claim(f"{a} net: the decision boundary converges to the max-margin separator: "
                           f"angle to the SVM direction {angle:.3f} degrees < 1, cos_maxmargin "
                           f"{c['cos_maxmargin'][-1]:.6f} > 0.99",
                           angle < 1.0 and c["cos_maxmargin"][-1] > 0.99))
    ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal", title="(a) margin maximisation")
    ax.legend(fontsize="small")
    ax = axes[1]
    c = runs["deep"]
    depth = sum(1 for k in c if k.startswith("ratio."))
    # Log-spaced records (record.every = "log"): every step from 1 on a log axis.
    step = c["step"][1:]
    for k in range(1, depth + 1):
        ax.plot(step, c[f"ratio.{k}"][1:], label=rf"$\Vert W_{k}\Vert_2 / \Vert W_{k}\Vert_F$")
    ax.plot(step, c["cos_maxmargin"][1:], "k--", label=r"cos($W_{prod}$, $\bar u$)")
    ax.set(xscale="log", xlabel="step", title="(b) alignment and risk (4-layer net)")
    ax.legend(fontsize="small", loc="center left")
    risk = ax.twinx()
    risk.plot(step, c["loss"][1:], color="grey", lw=1, ls=":")
    risk.set(yscale="log", ylabel="risk (dotted)")
    ratios = [c[f"ratio.{k}"][-1] for k in range(1, depth + 1)]
    held.append(_claim("deep net: every layer tends to rank one: ||W_k||_2 / ||W_k||_F at the final "
                       "step " + ", ".join(f"{r:.4f}" for r in ratios) + " (each > 0.99)",
                       min(ratios) > 0.99))
    adj = [c[f"adj_align.{k}"][-1] for k in range(1, depth)]
    held.append(_claim("deep net: adjacent layers align: |v_{k+1}^T u_k| = "
                       + ", ".join(f"{a:.5f}" for a in adj) + " (each > 0.99)", min(adj) > 0.99))
    rises = int(np.sum(np.diff(c["loss"]) > 0))
    held.append(_claim(f"deep net: the risk falls to {c['loss'][-1]:.3g} without rising ({rises} "
                       f"rises); normalised margin {c['margin'][-1]:.4f} against the SVM's "
                       f"{gamma:.4f}", rises == 0 and c["loss"][-1] < 1e-4))
    _finish(fig, root, "ji_telgarsky_fig1", held)


def arora_lp(root):
    """Depth against the shallow model's optimisers on l2 and l4 regression (Arora et al.): the
    steps each arm needs to come within 1e-3 of the reducible loss of the depth arm with the
    lowest final loss."""
    held = []
    sets = ("diabetes", "mnist")
    fig, axes = plt.subplots(len(sets), 2, figsize=(12, 8))
    for row, name in enumerate(sets):
        arms = {}
        for part, label_key in (("depth", "model.widths"), ("opt", "optimizer.kind")):
            for r in _runs_csv(os.path.join(root, f"{name}_{part}", "best", "runs.csv")):
                p = int(float(r["loss.p"]))
                label = (f"depth {_depth(r[label_key])}" if part == "depth"
                         else f"depth 1, {r[label_key]}")
                c = _loss(root, f"{name}_{part}", "best", r["run"])
                arms.setdefault(p, {})[label] = (c, float(r["optimizer.lr"]), r["status"])
        for col, p in enumerate((2, 4)):
            ax = axes[row][col]
            runs = arms[p]
            depth_arms = [k for k in runs if not "," in k]
            l0 = runs["depth 1"][0]["loss"][0]
            best = min(runs[k][0]["loss"][-1] for k in depth_arms)
            target = best + 1e-3 * (l0 - best)
            steps = {}
            for label, (c, lr, status) in runs.items():
                ax.plot(c["step"], c["loss"], "-" if "," not in label else ":",
                        label=f"{label}, η = {lr:g}")
                i = _first_below(c["loss"], target * (1 + 1e-12))
                steps[label] = None if i is None else int(c["step"][i])
            ax.axhline(target, color="gray", lw=0.7, ls="--")
            ax.set(yscale="log", xscale="symlog", xlim=(0, None), xlabel="step", ylabel=f"l{p} loss",
                   title=f"{name}: l{p}")
            ax.legend(fontsize="x-small")
            print(f"dln: {name}, l{p}: steps to loss {target:.6g} (1e-3 of the reducible loss above "
                  f"the lowest final loss of a depth arm):")
            for label, t in steps.items():
                print(f"dln:   {label:<22} {t if t is not None else 'not reached'}")
            inf = float("inf")
            deep = min(steps[k] if steps[k] is not None else inf for k in depth_arms if k != "depth 1")
            shallow = steps["depth 1"] if steps["depth 1"] is not None else inf
            if p == 4:
                held.append(_claim(f"{name}, l4: depth helps: a deeper net reaches the target in "
                                   f"{deep} steps, the shallow one in {shallow}", deep < shallow))
            else:
                held.append(_claim(f"{name}, l2: depth does not help: the shallow net reaches the "
                                   f"target in {shallow} steps, the best deeper one in {deep}",
                                   shallow <= deep))
    _finish(fig, root, "arora_lp", held)


def hou_mnist(root):
    """Hou et al. Section 3 (after Arora, Cohen & Hazan): a LeNet-5 on MNIST with L2, normal
    against overparameterised (every weight a product of two, the regulariser on the product),
    the loss with and without the regulariser; and both trained on the cross-entropy alone."""
    held = []
    arms = {a: _run(os.path.join(root, "lenet", a))
            for a in ("normal", "overparam", "normal_noreg", "overparam_noreg")}
    n, o = arms["normal"][0], arms["overparam"][0]
    s = arms["normal"][1]
    with open(os.path.join(root, "lenet", "normal", "config.toml"), "rb") as f:
        l2 = tomllib.load(f)["loss"]["l2"]
    steps = n["step"]
    print(f"dln: hou-mnist: LeNet-5, {s['steps']} SGD steps of batch 50 on 4,000 digits (500 per "
          f"class, 20% held out), float32, L2 {l2:g}: fewer samples and "
          f"steps than the papers")
    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5))
    panels = (("loss", "(a) regularised loss", ("normal", "overparam")),
              ("loss_data", "(b) cross-entropy alone (the regulariser taken out)",
               ("normal", "overparam")),
              ("reg", "(c) the regulariser (on the products)", ("normal", "overparam")),
              ("loss", "(d) trained on the cross-entropy alone", ("normal_noreg", "overparam_noreg")))
    for ax, (col, title, which) in zip(axes.flat, panels):
        for a in which:
            c = arms[a][0]
            ax.plot(c["step"], c[col], "-" if a.startswith("normal") else "--", label=a.replace("_", " "))
        ax.set(yscale="log" if col != "reg" else "linear", xlabel="step", ylabel=col, title=title)
        ax.legend(fontsize="small")

    def reach(c, col, level):
        i = _first_below(c[col], level)
        return None if i is None else int(c["step"][i])

    target = n["loss"][-1]
    t = reach(o, "loss", target * (1 + 1e-12))
    held.append(_claim(
        f"depth accelerates the regularised loss (Arora et al.): the overparameterised net "
        f"reaches the normal net's final loss {target:.4f} at step {t} of {int(steps[-1])}; final "
        f"{o['loss'][-1]:.4f} against {target:.4f}", t is not None and t < steps[-1]))
    held.append(_claim(
        f"Hou et al. (1): depth finds a lower-norm solution without compromising the loss "
        f"without the regulariser: final regulariser {o['reg'][-1]:.4f} against "
        f"{n['reg'][-1]:.4f} (normal), cross-entropy {o['loss_data'][-1]:.2e} against "
        f"{n['loss_data'][-1]:.2e}", o["reg"][-1] < n["reg"][-1]
        and o["loss_data"][-1] <= 1.1 * n["loss_data"][-1]))
    print(f"dln: regulariser change over training: normal {n['reg'][-1] - n['reg'][0]:+.4f}, "
          f"overparameterised {o['reg'][-1] - o['reg'][0]:+.4f} (from {n['reg'][0]:.4f}, the "
          f"same function at step 0)")
    ratio = n["loss_data"][-1] / o["loss_data"][-1]
    t_ce = reach(o, "loss_data", n["loss_data"][-1] * (1 + 1e-12))
    held.append(_claim(
        f"Hou et al.: depth does not accelerate the cross-entropy itself (final values within a "
        f"factor 2): normal / overparameterised {ratio:.2f}; the overparameterised net reaches "
        f"the normal net's final cross-entropy at step {t_ce}", 0.5 <= ratio <= 2.0))
    nn_, on = arms["normal_noreg"][0], arms["overparam_noreg"][0]
    ratio0 = nn_["loss"][-1] / on["loss"][-1]
    held.append(_claim(
        f"Hou et al.: trained on the cross-entropy alone, the two nets' training losses differ "
        f"negligibly (within a factor 2): final {nn_['loss'][-1]:.2e} (normal) and "
        f"{on['loss'][-1]:.2e} (overparameterised), ratio {ratio0:.2f}", 0.5 <= ratio0 <= 2.0))
    held.append(_claim(
        f"the overparameterised net generalises no worse: test accuracy "
        f"{o['test_accuracy'][-1]:.4f} against {n['test_accuracy'][-1]:.4f} (normal, within 0.005)",
        o["test_accuracy"][-1] >= n["test_accuracy"][-1] - 0.005))
    print("dln: both nets start as the same function; the product W = W_2 W_1 moves, to first "
          "order, by -lr (G W_1^T W_1 + W_2 W_2^T G), a larger effective step than the normal "
          "net's -lr G, which is how depth can speed up the cross-entropy too (docs/theory.md)")
    _finish(fig, root, "hou_mnist", held)


EOS_ETAS = {2: ("0.40", "0.444", "0.50"), 3: ("0.32", "0.38", "0.45"), 4: ("0.30", "0.36", "0.42")}


def eos_linear(root):
    """The edge of stability in deep linear nets (Cohen et al. 2021): per depth, the sharpness
    against 2/eta at three step sizes, a small step and a balanced start, with the loss."""
    held = []
    fig, axes = plt.subplots(3, 3, figsize=(16, 13))
    print("dln: eos-linear: linear nets of depth 2, 3, 4 (hidden width 100) on the diabetes data "
          "(standardised), l2, full-batch GD from N(0, 0.06^2), 10,000 steps, the sharpness at "
          "every step")
    for row, (depth, etas) in enumerate(EOS_ETAS.items()):
        names = [f"d{depth}_eta_{e}" for e in etas]
        runs = {a: _run(os.path.join(root, "diabetes", a)) for a in
                names + [f"d{depth}_small_step", f"d{depth}_balanced_start"]}
        floor = min(c["loss"].min() for c, _ in runs.values())
        small = runs[f"d{depth}_small_step"][0]
        bal = runs[f"d{depth}_balanced_start"][0]["sharpness"][-1]
        print(f"dln: depth {depth}: sharpness at step 0 {small['sharpness'][0]:.3f}; a small step "
              f"(eta = 0.05) ends at a minimum of sharpness {small['sharpness'][-1]:.3f}, the "
              f"balanced start at {bal:.3f}")
        ax = axes[row]
        for a, (c, _) in runs.items():
            steps = np.maximum(c["step"], 1)
            label = a.split("_", 1)[1].replace("_", " ")
            line, = ax[0].plot(steps, c["sharpness"], label=label)
            if a in names:
                ax[0].axhline(2 / float(a.rsplit("_", 1)[1]), color=line.get_color(), ls="--",
                              lw=0.8)
                ax[2].plot(steps, c["edge"], color=line.get_color(), label=label)
            ax[1].plot(steps, c["loss"] - floor + 1e-16, color=line.get_color(), label=label)
        ax[0].set(xscale="log", xlabel="step", ylabel="sharpness",
                  title=f"depth {depth}: sharpness (dashed: 2/eta)")
        ax[1].set(xscale="log", yscale="log", xlabel="step", ylabel="loss - lowest loss",
                  title=f"depth {depth}: loss")
        ax[2].set(xscale="log", xlabel="step", ylabel="sharpness * eta / 2",
                  title=f"depth {depth}: edge")
        ax[2].axhline(1.0, color="gray", lw=0.8)
        for x in ax:
            x.legend(fontsize="x-small")
        ok_edge, ok_loss, text_edge, text_loss = True, True, [], []
        for a in names:
            c, _ = runs[a]
            eta = float(a.rsplit("_", 1)[1])
            edge = c["edge"]
            late = edge[len(edge) // 2:]
            rises = int((np.diff(c["loss"]) > 0).sum())
            ok_edge = ok_edge and edge[0] < 1 <= edge.max() and 0.9 <= late.mean() <= 1.1
            ok_loss = ok_loss and rises > 0 and c["loss"][-1] - floor < 1e-6
            text_edge.append(f"eta = {eta}: from {edge[0]:.3f} to {edge.max():.3f}, then "
                             f"{late.mean():.4f} [{late.min():.4f}, {late.max():.4f}]")
            text_loss.append(f"eta = {eta}: {rises} rises, ends {c['loss'][-1] - floor:.1e} "
                             f"above the lowest loss")
        held.append(_claim(
            f"depth {depth}: the sharpness rises from below 2/eta past it and stays near it: "
            f"sharpness / (2/eta) at step 0, at its largest, and its mean [range] over the "
            f"second half of the run: " + "; ".join(text_edge) + " (mean within [0.9, 1.1])",
            ok_edge))
        held.append(_claim(
            f"depth {depth}: the loss falls non-monotonically to the minimum, over 10,000 steps: "
            + "; ".join(text_loss), ok_loss))
        finals = [runs[a][0]["sharpness"][-1] for a in names]
        small_rises = int((np.diff(small["loss"]) > 0).sum())
        held.append(_claim(
            f"depth {depth}: a small step (eta = 0.05, edge at most {small['edge'].max():.3f}) "
            f"never meets the edge ({small_rises} rises) and ends at the minimum of sharpness "
            f"{small['sharpness'][-1]:.3f}; the large steps end at flatter ones, just inside "
            f"their edges: " + ", ".join(f"{f:.3f} (2/eta = {2 / float(e):.3f})"
                                         for f, e in zip(finals, etas)),
            small_rises == 0 and all(f < small["sharpness"][-1] and f <= 2 / float(e)
                                     for f, e in zip(finals, etas))))
        held.append(_claim(
            f"depth {depth}: the edge is held where a flatter minimum exists: the balanced "
            f"minimum's sharpness {bal:.3f} is below 2/eta = {2 / float(etas[-1]):.3f} of the "
            f"largest step", bal < 2 / float(etas[-1])))
    _finish(fig, root, "eos_linear", held)


def _hessian_2_1_1(theta, X, Y):
    """The Hessian of (1/2n) sum_i (theta_3 (theta_1 x_i1 + theta_2 x_i2) - y_i)^2 in
    (theta_1, theta_2, theta_3), written out."""
    n = X.shape[0]
    w = np.array(theta[:2])
    t3 = theta[2]
    H = np.zeros((3, 3))
    for x, y in zip(X, Y[:, 0]):
        z = w @ x
        r = t3 * z - y
        g = np.array([t3 * x[0], t3 * x[1], z])  # d(prediction)/d(theta)
        H += np.outer(g, g)
        H[0, 2] += r * x[0]
        H[2, 0] += r * x[0]
        H[1, 2] += r * x[1]
        H[2, 1] += r * x[1]
    return H / n


def agd_sharpness(root):
    """AGD paper Section 4.4 through the Hessian: the sharpness of the minima reached by GD and
    AGD at eta = 0.1 against 2/eta = 20, and of the balanced minimum (the paper's 35.4 > 20)."""
    held = []
    gd, sg = _run(os.path.join(root, "unstable", "gd"))
    agd, sa = _run(os.path.join(root, "unstable", "agd"))
    X = np.load(os.path.join(root, "unstable", "gd", "data_X.npy"))
    Y = np.load(os.path.join(root, "unstable", "gd", "data_Y.npy"))
    eta = 0.1
    edge = 2 / eta
    # The least-squares W_* and the balanced factorisation theta_3 = ||W_*||^(1/2).
    w_star = np.linalg.lstsq(X, Y[:, 0], rcond=None)[0]
    t3 = np.sqrt(np.linalg.norm(w_star))
    balanced = [w_star[0] / t3, w_star[1] / t3, t3]
    s_bal = np.linalg.eigvalsh(_hessian_2_1_1(balanced, X, Y)).max()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for c, name in ((gd, "GD, two layers"), (agd, "AGD")):
        axes[0].plot(np.maximum(c["step"], 1), c["sharpness"], label=name)
        axes[1].plot(np.maximum(c["step"], 1), c["loss"] + 1e-32, label=name)
    axes[0].axhline(edge, color="gray", ls="--", label="2/eta = 20")
    axes[0].axhline(s_bal, color="gray", ls=":", label=f"balanced minimum {s_bal:.1f}")
    axes[0].set(xscale="log", yscale="log", xlabel="step", ylabel="sharpness",
                title="(a) sharpness along the way")
    axes[1].set(xscale="log", yscale="log", xlabel="step", ylabel="loss", title="(b) loss")
    for ax in axes:
        ax.legend(fontsize="small")
    print(f"dln: agd-sharpness: toy.agd_unstable, 2 -> 1 -> 1, eta = {eta}, "
          f"{int(sg['steps'])} steps; W_* = ({w_star[0]:.4f}, {w_star[1]:.4f})")
    held.append(_claim(
        f"the balanced minimum is sharper than 2/eta: the paper's Theta(3)^2 = 35.4 > 20; "
        f"measured Theta(3)^2 = {t3 ** 2:.2f} and its sharpness (the Hessian's top eigenvalue, "
        f"written out in NumPy) {s_bal:.2f} > {edge:.0f}", s_bal > edge and abs(t3 ** 2 - 35.4) < 0.05))
    rises = int((np.diff(gd["loss"]) > 0).sum())
    held.append(_claim(
        f"GD cannot settle where it is sharper than 2/eta: it crosses the edge on the way "
        f"(largest sharpness {gd['sharpness'].max():.2f}, {rises} recorded loss rises) and "
        f"converges (loss {gd['loss'][-1]:.1e}) to a minimum of sharpness "
        f"{gd['sharpness'][-1]:.3f} <= 2/eta = {edge:.0f} (edge {gd['edge'][-1]:.4f}), with "
        f"Theta(3)^2 = {gd['fro.2'][-1] ** 2:.2f} < 20, the paper's stability condition",
        gd["sharpness"].max() > edge and gd["sharpness"][-1] <= edge * (1 + 1e-9)
        and gd["loss"][-1] < 1e-8))
    held.append(_claim(
        f"AGD converges smoothly (loss {agd['loss'][-1]:.1e}, "
        f"{int((np.diff(agd['loss']) > 0).sum())} rises) to a minimum far sharper than 2/eta: "
        f"{agd['sharpness'][-1]:.1f} (edge {agd['edge'][-1]:.1f}), its adaptive rates keeping "
        f"every layer's step stable", agd["sharpness"][-1] > edge
        and (np.diff(agd["loss"]) > 0).sum() == 0))
    _finish(fig, root, "agd_sharpness", held)


REPRODUCTIONS = {"basu-fig1": basu_fig1, "basu-fig2": basu_fig2, "steinitz-fig1": steinitz_fig1,
                  "steinitz-gas": steinitz_gas, "agd-fig1": agd_fig1,
                  "agd-fig2": agd_fig2, "agd-fig3": agd_fig3, "agd-fig4": agd_fig4,
                  "hou-lp-rate": hou_lp_rate, "hou-mnist": hou_mnist,
                  "eos-linear": eos_linear, "agd-sharpness": agd_sharpness,
                  "ji-telgarsky-fig1": ji_telgarsky_fig1, "arora-lp": arora_lp}


def main(argv=None):
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or args[0] not in REPRODUCTIONS:
        print(f"usage: python3 -m dln.paper_figures {{{','.join(REPRODUCTIONS)}}} DIR", file=sys.stderr)
        return 2
    REPRODUCTIONS[args[0]](args[1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
