"""Short trajectories of dln against the same computation written with PyTorch autograd.

Random shapes (depth 1-5), seeds, l2 and l4 loss, mean and sum reduction, both gradient paths
and every optimiser: 20 steps from the same weights must give the same weights and losses to
1e-10 relative (double round-off over 20 steps of a depth-5 chain is far below that).
"""
import unittest

import numpy as np
import torch

from support import TempDir, read_metrics, run_dln, toml_list, write_config

STEPS = 20
TOLERANCE = 1e-10


def torch_trajectory(X, Y, weights, p, reduction, kind, lr, momentum):
    """Losses at steps 0..STEPS and final weights, by autograd and torch.optim.SGD."""
    torch.set_num_threads(1)
    Xt = torch.tensor(X.T)  # d x n
    Yt = torch.tensor(Y.T)  # k x n
    params = [torch.tensor(W, requires_grad=True) for W in weights]
    if kind == "adagrad":
        opt = torch.optim.Adagrad(params, lr=lr)
    elif kind == "adam":
        opt = torch.optim.Adam(params, lr=lr)
    else:
        opt = torch.optim.SGD(params, lr=lr, momentum=0.0 if kind == "gd" else momentum,
                              nesterov=kind == "nesterov")
    scale = 1.0 / X.shape[0] if reduction == "mean" else 1.0

    def loss_fn():
        out = Xt
        for W in params:
            out = W @ out
        return scale * (out - Yt).abs().pow(p).sum() / p

    losses = []
    for _ in range(STEPS):
        opt.zero_grad()
        loss = loss_fn()
        losses.append(loss.item())
        loss.backward()
        opt.step()
    with torch.no_grad():
        losses.append(loss_fn().item())
    return np.array(losses), [W.detach().numpy() for W in params]


class TorchTrajectory(unittest.TestCase):
    def test_trajectories_match_pytorch_autograd(self):
        rng = np.random.default_rng(2024)
        cases = []
        for depth in range(1, 6):
            for p in (2, 4):
                for kind in ("gd", "momentum", "nesterov", "adagrad", "adam"):
                    cases.append((depth, p, kind))
        checked = 0
        with TempDir() as tmp:
            for i, (depth, p, kind) in enumerate(cases):
                d, k, n = rng.integers(1, 7), rng.integers(1, 5), rng.integers(5, 40)
                widths = [int(d)] + [int(w) for w in rng.integers(1, 8, size=depth - 1)] + [int(k)]
                reduction = ("mean", "sum")[i % 2]
                path = ("auto", "data")[(i // 2) % 2]
                X = rng.standard_normal((n, d))
                Y = rng.standard_normal((n, k))
                weights = [rng.standard_normal((widths[l + 1], widths[l])) / np.sqrt(widths[l])
                           for l in range(depth)]
                lr = (0.02 if p == 2 else 0.002) / (1 if reduction == "mean" else n)
                case = tmp / f"case{i}"
                case.mkdir()
                np.save(case / "X.npy", X)
                np.save(case / "Y.npy", Y)
                for l, W in enumerate(weights):
                    np.save(case / f"W{l + 1}.npy", W)
                write_config(case / "run.toml", f"""
name = "case{i}"
[data]
source = "npy"
x = "X.npy"
y = "Y.npy"
[model]
widths = {toml_list(widths)}
[init]
scheme = "npy"
paths = {toml_list([f"W{l + 1}.npy" for l in range(depth)])}
[loss]
kind = "lp"
p = {p}
reduction = "{reduction}"
path = "{path}"
[optimizer]
kind = "{kind}"
lr = {lr!r}
steps = {STEPS}
{"momentum = 0.7" if kind in ("momentum", "nesterov") else ""}
[record]
every = 1
probes = ["loss"]
""")
                out = run_dln("run", case / "run.toml", "--out", case / "out")
                self.assertEqual(out.returncode, 0, out.stderr)
                header, rows = read_metrics(case / "out")
                losses, final = torch_trajectory(X, Y, weights, p, reduction, kind, lr, 0.7)
                label = f"case {i}: widths {widths}, p={p}, {reduction}, {kind}, path {path}"
                self.assertEqual(header, ["step", "loss"], label)
                self.assertEqual(len(rows), STEPS + 1, label)
                np.testing.assert_allclose(rows[:, 1], losses, rtol=TOLERANCE, atol=0,
                                           err_msg=label)
                for l, W in enumerate(final):
                    got = np.load(case / "out" / "weights" / f"W{l + 1}.npy")
                    err = np.linalg.norm(got - W) / max(np.linalg.norm(W), 1e-300)
                    self.assertLess(err, TOLERANCE, f"{label}, layer {l + 1}")
                checked += 1
        self.assertEqual(checked, len(cases))


def torch_agd(X, Y, depth, eta):
    """Algorithm 1 of the AGD paper written plainly: w = 0, scalars 1; per step, w with rate
    eta / (theta_2 ... theta_L)^2, then each theta_l with rate theta_l^2 / 2, every gradient by
    autograd at the parameters the previous sub-step left. Loss (1/n) sum 1/2 (y^ - y)^2."""
    Xt, Yt = torch.tensor(X.T), torch.tensor(Y.T)  # d x n, 1 x n
    params = [torch.zeros(1, X.shape[1], dtype=torch.float64, requires_grad=True)]
    params += [torch.ones(1, 1, dtype=torch.float64, requires_grad=True) for _ in range(depth - 1)]

    def loss_fn():
        out = Xt
        for W in params:
            out = W @ out
        return 0.5 * ((out - Yt) ** 2).mean()

    losses = [loss_fn().item()]
    for _ in range(STEPS):
        for l, W in enumerate(params):
            loss = loss_fn()
            grad, = torch.autograd.grad(loss, W)
            with torch.no_grad():
                if l == 0:
                    a = torch.prod(torch.cat([p.reshape(1) for p in params[1:]])) if depth > 1 else 1.0
                    W -= eta / a**2 * grad
                else:
                    W -= 0.5 * W**2 * grad
        losses.append(loss_fn().item())
    return np.array(losses), [W.detach().numpy() for W in params]


class TorchAgd(unittest.TestCase):
    def test_agd_matches_algorithm_one_by_autograd(self):
        rng = np.random.default_rng(77)
        with TempDir() as tmp:
            for i, depth in enumerate((1, 2, 3, 5, 8)):
                d, n = int(rng.integers(2, 9)), int(rng.integers(3, 30))
                X = rng.standard_normal((n, d)) / np.sqrt(d)
                Y = np.tanh(rng.standard_normal((n, 1)))
                eta = 0.9 / np.linalg.eigvalsh(X.T @ X / n).max()
                case = tmp / f"agd{i}"
                case.mkdir()
                np.save(case / "X.npy", X)
                np.save(case / "Y.npy", Y)
                losses, final = torch_agd(X, Y, depth, eta)
                for path in ("stats", "data"):
                    write_config(case / "run.toml", f"""
[data]
source = "npy"
x = "X.npy"
y = "Y.npy"
[model]
widths = {toml_list([d] + [1] * depth)}
[init]
scheme = "agd"
[loss]
path = "{path}"
[optimizer]
kind = "agd"
lr = {eta!r}
steps = {STEPS}
[record]
probes = ["loss"]
""")
                    out = run_dln("run", case / "run.toml", "--out", case / path)
                    self.assertEqual(out.returncode, 0, out.stderr)
                    header, rows = read_metrics(case / path)
                    label = f"agd depth {depth}, d {d}, n {n}, path {path}"
                    np.testing.assert_allclose(rows[:, 1], losses, rtol=TOLERANCE, atol=1e-300,
                                               err_msg=label)
                    for l, W in enumerate(final):
                        got = np.load(case / path / "weights" / f"W{l + 1}.npy")
                        err = np.linalg.norm(got - W) / max(np.linalg.norm(W), 1e-300)
                        self.assertLess(err, TOLERANCE, f"{label}, layer {l + 1}")


if __name__ == "__main__":
    unittest.main()
