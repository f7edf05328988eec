"""The benchmark workloads written the way a researcher would in PyTorch (float64, autograd,
torch.optim.SGD), timed per step; the peer of bench/engine_bench.cpp.

Usage: /usr/bin/python3 bench/peers/torch_step.py [--repetitions 3]
Prints one line per workload: name, median microseconds per step.
"""
import argparse
import statistics
import time

import torch


def mixture(components=3, samples=400, dim=10, targets=3, seed=1):
    g = torch.Generator().manual_seed(seed)
    xs = []
    for _ in range(components):
        mean = 2.0 * torch.randn(dim, generator=g, dtype=torch.float64)
        q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=g, dtype=torch.float64))
        sd = torch.empty(dim, dtype=torch.float64).uniform_(0.5, 1.5, generator=g)
        xs.append(mean + (torch.randn(samples, dim, generator=g, dtype=torch.float64) * sd) @ q.T)
    X = torch.cat(xs)
    M = torch.randn(targets, dim, generator=g, dtype=torch.float64)
    return X, X @ M.T


def time_steps(X, Y, widths, p, lr, steps, record=False):
    torch.manual_seed(0)
    layers = [torch.nn.Linear(widths[i], widths[i + 1], bias=False).double()
              for i in range(len(widths) - 1)]
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    n = X.shape[0]
    start = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad()
        loss = (model(X) - Y).abs().pow(p).sum() / (p * n)
        loss.backward()
        opt.step()
        if record:
            with torch.no_grad():
                ws = [l.weight for l in layers]
                _ = [float(w.norm()) for w in ws]
                _ = [float((ws[i + 1].T @ ws[i + 1] - ws[i] @ ws[i].T).norm())
                     for i in range(len(ws) - 1)]
                _ = float(loss)
    return (time.perf_counter() - start) / steps * 1e6


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repetitions", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    X, Y = mixture()
    g = torch.Generator().manual_seed(1)
    X4 = torch.randn(13910, 128, generator=g, dtype=torch.float64)
    Y4 = torch.randn(13910, 1, generator=g, dtype=torch.float64)
    workloads = [
        ("small_l2", lambda: time_steps(X, Y, [10, 8, 6, 4, 3], 2, 1e-3, 2000)),
        ("small_l2_probes", lambda: time_steps(X, Y, [10, 8, 6, 4, 3], 2, 1e-3, 2000, True)),
        ("lp4", lambda: time_steps(X4, Y4, [128, 100, 100, 1], 4, 1e-6, 20)),
    ]
    for name, fn in workloads:
        fn()  # warm-up
        print(f"{name} {statistics.median(fn() for _ in range(args.repetitions)):.3f}")


if __name__ == "__main__":
    main()
