"""The benchmark workloads written in Python: for each, the plain PyTorch autograd loop a
researcher writes first, and the fastest formulation found (through the end-to-end matrix, the
sufficient statistics, runs batched into one array, both cores).

Each peer reads the workload's resolved config (config.toml of a `dln run` of bench/configs/*.toml
with record.data = true) and the data that run wrote (data_X.npy (n, d), data_Y.npy (n, k)), so
that both sides do the same work on the same numbers. Float64 throughout.

Usage: /usr/bin/python3 bench/peers/peers.py WORKLOAD VARIANT RUN_DIR [--repetitions N]
       [--threads T] [--steps S]
prints one JSON object: the median time per step (or per sweep) and every repetition.
"""
import argparse
import json
import multiprocessing
import statistics
import time
import tomllib
from pathlib import Path

import numpy as np
import torch


def load(run_dir):
    run_dir = Path(run_dir)
    with open(run_dir / "config.toml", "rb") as f:
        config = tomllib.load(f)
    X = np.load(run_dir / "data_X.npy")
    Y = np.load(run_dir / "data_Y.npy")
    return config, X, Y


def loss_p(config):
    return 2.0 if config["loss"]["kind"] == "l2" else float(config["loss"]["p"])


def glorot(widths, seed=0):
    g = np.random.default_rng(seed)
    return [g.standard_normal((widths[i + 1], widths[i])) * np.sqrt(2.0 / (widths[i] + widths[i + 1]))
            for i in range(len(widths) - 1)]


# ---- plain autograd: nn.Sequential, (|model(X) - Y|^p).sum() / (p n), backward, SGD ----------

def plain_steps(config, X, Y, steps, record=False, widths=None, lr=None):
    widths = widths or config["model"]["widths"]
    lr = lr if lr is not None else config["optimizer"]["lr"]
    p = loss_p(config)
    Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)
    layers = [torch.nn.Linear(widths[i], widths[i + 1], bias=False).double()
              for i in range(len(widths) - 1)]
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    n = X.shape[0]
    losses = []
    start = time.perf_counter()
    for step in range(steps):
        opt.zero_grad()
        loss = (model(Xt) - Yt).abs().pow(p).sum() / (p * n)
        loss.backward()
        opt.step()
        if record:
            with torch.no_grad():
                ws = [layer.weight for layer in layers]
                losses.append(float(loss))
                _ = [float(w.norm()) for w in ws]
                _ = [float((ws[i + 1].T @ ws[i + 1] - ws[i] @ ws[i].T).norm())
                     for i in range(len(ws) - 1)]
    return time.perf_counter() - start


def plain_agd(config, X, Y, steps):
    """Algorithm 1 of the AGD paper by autograd: w with rate eta / (theta_2 ... theta_L)^2, then
    each theta_l with rate theta_l^2 / 2, each gradient at the parameters the previous sub-step
    left. Loss (1/n) sum 1/2 (y^ - y)^2."""
    depth = len(config["model"]["widths"]) - 1
    eta = config["optimizer"]["lr"]
    Xt, Yt = torch.from_numpy(np.ascontiguousarray(X.T)), torch.from_numpy(np.ascontiguousarray(Y.T))
    params = [torch.zeros(1, X.shape[1], dtype=torch.float64, requires_grad=True)]
    params += [torch.ones(1, 1, dtype=torch.float64, requires_grad=True) for _ in range(depth - 1)]

    def loss_fn():
        out = Xt
        for W in params:
            out = W @ out
        return 0.5 * ((out - Yt) ** 2).mean()

    start = time.perf_counter()
    for _ in range(steps):
        for l, W in enumerate(params):
            grad, = torch.autograd.grad(loss_fn(), W)
            with torch.no_grad():
                if l == 0:
                    a = torch.prod(torch.cat([q.reshape(1) for q in params[1:]])) if depth > 1 else 1.0
                    W -= eta / a**2 * grad
                else:
                    W -= 0.5 * W**2 * grad
        float(loss_fn())
    return time.perf_counter() - start


# ---- fastest formulations ---------------------------------------------------------------------

def fast_l2_stats(config, X, Y, steps, record=False):
    """l2 through the sufficient statistics in NumPy (small matrices: NumPy's per-call overhead
    is a fraction of PyTorch's): Sxx = X^T X / n, Syx = Y^T X / n; per step the prefix and suffix
    products, G = W_e Sxx - Syx, dL/dW_l = S_l^T G P_{l-1}^T, and the loss from the statistics."""
    n = X.shape[0]
    Sxx, Syx, syy = X.T @ X / n, Y.T @ X / n, float(np.sum(Y * Y)) / n
    W = glorot(config["model"]["widths"])
    lr = config["optimizer"]["lr"]
    L = len(W)
    start = time.perf_counter()
    for _ in range(steps):
        P = [W[0]]
        for l in range(1, L):
            P.append(W[l] @ P[-1])
        We = P[-1]
        WS = We @ Sxx
        G = WS - Syx
        S = [None] * L  # S[l] = W_L ... W_{l+2} (the product after layer l + 1)
        acc = None
        for l in range(L - 1, -1, -1):
            S[l] = acc
            acc = W[l] if acc is None else acc @ W[l]
        grads = []
        for l in range(L):
            g = G if S[l] is None else S[l].T @ G
            grads.append(g if l == 0 else g @ P[l - 1].T)
        for l in range(L):
            W[l] -= lr * grads[l]
        loss = 0.5 * np.sum(WS * We) - np.sum(Syx * We) + 0.5 * syy  # at the old weights
        if record:
            _ = [np.linalg.norm(w) for w in W]
            _ = [np.linalg.norm(W[l + 1].T @ W[l + 1] - W[l] @ W[l].T) for l in range(L - 1)]
            _ = float(loss)
    return time.perf_counter() - start


def fast_lp_e2e(config, X, Y, steps):
    """l_p through the end-to-end matrix in PyTorch on both cores: R = W_e X - Y and
    dL/dW_e = (|R|^{p-2} R / n) X^T are the only passes over the data; the layer gradients come
    from the small prefix and suffix products."""
    p = loss_p(config)
    Xt = torch.from_numpy(np.ascontiguousarray(X.T))  # d x n
    Yt = torch.from_numpy(np.ascontiguousarray(Y.T))  # k x n
    W = [torch.from_numpy(w) for w in glorot(config["model"]["widths"])]
    lr = config["optimizer"]["lr"]
    n, L = X.shape[0], len(W)
    start = time.perf_counter()
    for _ in range(steps):
        P = [W[0]]
        for l in range(1, L):
            P.append(W[l] @ P[-1])
        R = P[-1] @ Xt - Yt
        A = R.abs()
        loss = float((A ** p).sum()) / (p * n)
        G = (A ** (p - 2) * R) @ Xt.T / n
        acc = None
        grads = [None] * L
        for l in range(L - 1, -1, -1):
            g = G if acc is None else acc.T @ G
            grads[l] = g if l == 0 else g @ P[l - 1].T
            acc = W[l] if acc is None else acc @ W[l]
        for l in range(L):
            W[l] -= lr * grads[l]
    del loss
    return time.perf_counter() - start


def fast_agd(config, X, Y, steps):
    """AGD through the statistics in NumPy, z = W_e Sxx carried between steps: one product with
    Sxx per step, each scalar layer O(1) (q = u Sxx u^T and r = u Syx^T scale with the layer)."""
    n = X.shape[0]
    Sxx, syx = X.T @ X / n, (Y.T @ X / n).ravel()
    depth = len(config["model"]["widths"]) - 1
    eta = config["optimizer"]["lr"]
    w = np.zeros(X.shape[1])
    theta = np.ones(depth - 1)
    a = float(np.prod(theta))
    z = a * (w @ Sxx)
    start = time.perf_counter()
    for _ in range(steps):
        w -= (eta / a) * (z - syx)
        z = a * (w @ Sxx)
        u = a * w
        q, r = float(z @ u), float(syx @ u)
        for l in range(depth - 1):
            f = 1.0 - 0.5 * (q - r)
            theta[l] *= f
            q, r = f * f * q, f * r
            z *= f
        a = float(np.prod(theta))
    return time.perf_counter() - start


def sweep_axes(config_path):
    with open(config_path, "rb") as f:
        sweep = tomllib.load(f)["sweep"]
    return sweep["model.widths"], sweep["optimizer.lr"]


def plain_sweep(config, X, Y, steps, config_path):
    """The 56 runs one after another, each the plain autograd loop, the loss read every
    `record.every` steps."""
    widths_axis, lrs = sweep_axes(config_path)
    every = config["record"]["every"]
    start = time.perf_counter()
    for widths in widths_axis:
        for lr in lrs:
            Xt, Yt = torch.from_numpy(X), torch.from_numpy(Y)
            layers = [torch.nn.Linear(widths[i], widths[i + 1], bias=False).double()
                      for i in range(len(widths) - 1)]
            model = torch.nn.Sequential(*layers)
            opt = torch.optim.SGD(model.parameters(), lr=lr)
            n = X.shape[0]
            first = None
            for step in range(steps):
                opt.zero_grad()
                loss = (model(Xt) - Yt).pow(2).sum() / (2 * n)
                loss.backward()
                opt.step()
                if step % every == 0:
                    value = float(loss)
                    first = value if first is None else first
                    if not np.isfinite(value) or value > 1e12 * first:
                        break  # diverged, as dln stops it
    return time.perf_counter() - start


def _batched_depth(args):
    """All learning rates of one depth as one stacked array (B, out, in), l2 through the
    statistics, NumPy's batched matmul; the losses every `every` steps."""
    widths, lrs, Sxx, Syx, syy, steps, every = args
    B = len(lrs)
    eta = np.asarray(lrs).reshape(B, 1, 1)
    W = [np.stack([glorot(widths, seed=b)[l] for b in range(B)]) for l in range(len(widths) - 1)]
    L = len(W)
    losses, first = [], None
    for step in range(steps):
        P = [W[0]]
        for l in range(1, L):
            P.append(W[l] @ P[-1])
        We = P[-1]
        WS = We @ Sxx
        if step % every == 0:
            # The losses at the current weights; diverged runs (non-finite, or above 1e12 x the
            # initial loss, dln's rule) leave the batch.
            loss = (0.5 * np.sum(WS * We, axis=(1, 2)) - np.sum(Syx * We, axis=(1, 2))
                    + 0.5 * syy)
            first = loss if first is None else first
            losses.append(loss)
            keep = np.isfinite(loss) & (loss <= 1e12 * first)
            if not keep.all():
                if not keep.any():
                    break
                W, P, eta, first = [w[keep] for w in W], [q[keep] for q in P], eta[keep], first[keep]
                We, WS = P[-1], WS[keep]
        G = WS - Syx
        acc = None
        grads = [None] * L
        for l in range(L - 1, -1, -1):
            g = G if acc is None else acc.transpose(0, 2, 1) @ G
            grads[l] = g if l == 0 else g @ P[l - 1].transpose(0, 2, 1)
            acc = W[l] if acc is None else acc @ W[l]
        for l in range(L):
            W[l] -= eta * grads[l]
    return len(losses)


def fast_sweep(config, X, Y, steps, config_path, threads):
    """Runs batched: one stacked array per depth (the 14 rates), l2 through the statistics, the
    depths spread over `threads` processes (both cores)."""
    widths_axis, lrs = sweep_axes(config_path)
    n = X.shape[0]
    Sxx, Syx, syy = X.T @ X / n, Y.T @ X / n, float(np.sum(Y * Y)) / n
    every = config["record"]["every"]
    jobs = [(w, lrs, Sxx, Syx, syy, steps, every) for w in widths_axis]
    start = time.perf_counter()
    # The deepest first, so that two processes share the work evenly.
    with multiprocessing.get_context("fork").Pool(threads) as pool:
        pool.map(_batched_depth, jobs[::-1], chunksize=1)
    return time.perf_counter() - start


# ---- W6: a ReLU MLP, softmax cross-entropy, full-batch GD (nn.Sequential, as a researcher writes it)

def plain_relu(config, X, Y, steps, dtype):
    widths = config["model"]["widths"]
    layers = []
    for i in range(len(widths) - 1):
        layers.append(torch.nn.Linear(widths[i], widths[i + 1], bias=False).to(dtype))
        if i + 2 < len(widths):
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.SGD(model.parameters(), lr=config["optimizer"]["lr"])
    Xt = torch.from_numpy(X).to(dtype)
    labels = torch.from_numpy(Y.argmax(1))
    start = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(Xt), labels)
        loss.backward()
        opt.step()
    loss.item()
    return time.perf_counter() - start


def plain_lenet(config, X, Y, steps, dtype):
    """LeNet-5 as in docs/config.md#lenet, nn modules, SGD on batches of a new permutation each
    epoch, softmax cross-entropy: the loop a PyTorch user writes."""
    k = Y.shape[1]
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 6, 5, padding=2), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(6, 16, 5), torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Flatten(),
        torch.nn.Linear(400, 120), torch.nn.ReLU(), torch.nn.Linear(120, 84), torch.nn.ReLU(),
        torch.nn.Linear(84, k)).to(dtype)
    opt = torch.optim.SGD(model.parameters(), lr=config["optimizer"]["lr"])
    batch = config["optimizer"]["batch_size"]
    Xt = torch.from_numpy(X).to(dtype).view(-1, 1, 28, 28)
    labels = torch.from_numpy(Y.argmax(1))
    n = Xt.shape[0]
    gen = torch.Generator().manual_seed(0)
    order, at = torch.randperm(n, generator=gen), 0
    start = time.perf_counter()
    for _ in range(steps):
        if at + batch > n:
            order, at = torch.randperm(n, generator=gen), 0
        idx = order[at:at + batch]
        at += batch
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(Xt[idx]), labels[idx])
        loss.backward()
        opt.step()
    loss.item()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("workload", choices=["w1a", "w1b", "w2", "w3", "w4", "w5", "w6",
                                                 "w6f", "w7", "w7f"])
    parser.add_argument("variant", choices=["plain", "fast"])
    parser.add_argument("run_dir")
    parser.add_argument("--config", help="the workload's own config: its steps, and the sweep "
                        "axes of w3")
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--steps", type=int, help="steps per repetition (default: per workload)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config, X, Y = load(args.run_dir)
    if args.config:  # the workload's own steps (the data were written by a one-step run)
        with open(args.config, "rb") as f:
            config["optimizer"]["steps"] = tomllib.load(f)["optimizer"]["steps"]
    default_steps = {"w1a": 2000, "w1b": 2000, "w2": 20, "w3": config["optimizer"]["steps"],
                     "w4": 200, "w5": 5, "w6": 10, "w6f": 10, "w7": 100, "w7f": 100}
    if args.variant == "plain" and args.workload == "w4":
        default_steps["w4"] = 3
    steps = args.steps or default_steps[args.workload]
    per = {
        ("w1a", "plain"): lambda: plain_steps(config, X, Y, steps),
        ("w1b", "plain"): lambda: plain_steps(config, X, Y, steps, record=True),
        ("w2", "plain"): lambda: plain_steps(config, X, Y, steps),
        ("w5", "plain"): lambda: plain_steps(config, X, Y, steps),
        ("w6", "plain"): lambda: plain_relu(config, X, Y, steps, torch.float64),
        ("w6f", "plain"): lambda: plain_relu(config, X, Y, steps, torch.float32),
        ("w7", "plain"): lambda: plain_lenet(config, X, Y, steps, torch.float64),
        ("w7f", "plain"): lambda: plain_lenet(config, X, Y, steps, torch.float32),
        ("w4", "plain"): lambda: plain_agd(config, X, Y, steps),
        ("w3", "plain"): lambda: plain_sweep(config, X, Y, steps, args.config),
        ("w1a", "fast"): lambda: fast_l2_stats(config, X, Y, steps),
        ("w1b", "fast"): lambda: fast_l2_stats(config, X, Y, steps, record=True),
        ("w2", "fast"): lambda: fast_lp_e2e(config, X, Y, steps),
        ("w5", "fast"): lambda: fast_lp_e2e(config, X, Y, steps),
        ("w4", "fast"): lambda: fast_agd(config, X, Y, steps),
        ("w3", "fast"): lambda: fast_sweep(config, X, Y, steps, args.config, args.threads),
    }[(args.workload, args.variant)]
    whole = args.workload == "w3"  # a sweep is timed whole
    if not whole:
        per()  # warm-up
    times = [per() / (1 if whole else steps) for _ in range(args.repetitions)]
    print(json.dumps({"workload": args.workload, "variant": args.variant, "steps": steps,
                      "threads": args.threads, "median_s": statistics.median(times),
                      "times_s": times}))


if __name__ == "__main__":
    main()
