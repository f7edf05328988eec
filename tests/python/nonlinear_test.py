"""The torch engine (ReLU nets, biases, overparameterised layers, cross-entropy, L2, SGD) against
independent computations: a PyTorch float64 loop written here from the same initial weights,
central finite differences of a NumPy forward pass, and every probe recomputed in NumPy from
the weight snapshots.
"""
import json
import os
import unittest

import numpy as np
import torch

from support import (TempDir, run_whole_then_killed_and_resumed, read_metrics, run_dln,
                     toml_list, write_config)

SANITIZED = os.environ.get("DLN_SANITIZED") in ("1", "ON", "TRUE", "true")


def classification(rng, n=60, d=6, k=3):
    """Gaussian inputs, labels of a random linear map, one-hot targets."""
    X = rng.standard_normal((n, d))
    labels = (X @ rng.standard_normal((d, k))).argmax(1)
    Y = np.eye(k)[labels]
    return X, Y


def write_data(folder, X, Y):
    np.save(folder / "X.npy", X)
    np.save(folder / "Y.npy", Y)


def config(name, widths, body, data=True):
    text = f'name = "{name}"\nseed = 4\n'
    if data:
        text += '[data]\nsource = "npy"\nx = "X.npy"\ny = "Y.npy"\n'
    return text + f"[model]\nwidths = {toml_list(widths)}\n" + body


def load_factors(path, widths, overparam):
    """The factors of a snapshot (or weights folder) in order, and the biases (or None)."""
    with np.load(path) as z:
        names = sorted(z.files, key=lambda f: (f[0], [int(x) for x in f[1:].split("_")]))
        W = [z[n] for n in names if n.startswith("W")]
        b = [z[n][:, 0] for n in names if n.startswith("b")]
    assert len(W) == (len(widths) - 1) * overparam
    return W, b or None


def forward(X, factors, biases, k, relu=True):
    """NumPy forward pass: the outputs and the hidden pre-activations."""
    h, pre = X, []
    groups = len(factors) // k
    for g in range(groups):
        W = factors[g * k]
        for j in range(1, k):
            W = factors[g * k + j] @ W
        h = h @ W.T + (biases[g] if biases is not None else 0.0)
        if g + 1 < groups:
            pre.append(h)
            if relu:
                h = np.maximum(h, 0.0)
    return h, pre


def numpy_loss(X, Y, factors, biases, k, kind, lam, mean=True):
    out, _ = forward(X, factors, biases, k)
    c = 1.0 / X.shape[0] if mean else 1.0
    if kind == "cross_entropy":
        z = out - out.max(1, keepdims=True)
        logp = z - np.log(np.exp(z).sum(1, keepdims=True))
        data = -c * (Y * logp).sum()
    else:
        data = 0.5 * c * ((out - Y) ** 2).sum()
    reg = 0.0
    for g in range(len(factors) // k):
        W = factors[g * k]
        for j in range(1, k):
            W = factors[g * k + j] @ W
        reg += 0.5 * lam * (W ** 2).sum()
    return data + reg, data, reg


def torch_run(X, Y, factors, biases, k, kind, lam, opt, lr, steps, extra, batches=None):
    """The same training in PyTorch float64 with torch.optim: losses at every step and the
    final parameters. batches: a list of index arrays, one per step (None: full batch)."""
    torch.set_num_threads(1)
    Xt, Yt = torch.tensor(X), torch.tensor(Y)
    F = [torch.tensor(W, requires_grad=True) for W in factors]
    B = [torch.tensor(b, requires_grad=True) for b in biases] if biases is not None else []
    params = F + B
    wd = extra.get("weight_decay", 0.0)
    if opt == "adam":
        o = torch.optim.Adam(params, lr=lr, weight_decay=wd)
    else:
        o = torch.optim.SGD(params, lr=lr, weight_decay=wd,
                            momentum=extra.get("momentum", 0.0) if opt in ("momentum",
                                                                            "nesterov") else 0.0,
                            nesterov=opt == "nesterov")
    groups = len(F) // k

    def loss_of(x, y):
        h = x
        for g in range(groups):
            W = F[g * k]
            for j in range(1, k):
                W = F[g * k + j] @ W
            h = h @ W.T + (B[g] if B else 0.0)
            if g + 1 < groups:
                h = torch.relu(h)
        c = 1.0 / x.shape[0]
        if kind == "cross_entropy":
            data = -c * (y * torch.log_softmax(h, 1)).sum()
        else:
            data = 0.5 * c * ((h - y) ** 2).sum()
        reg = 0.0
        for g in range(groups):
            W = F[g * k]
            for j in range(1, k):
                W = F[g * k + j] @ W
            reg = reg + 0.5 * lam * (W ** 2).sum()
        return data + reg

    losses = []
    for s in range(steps):
        with torch.no_grad():
            losses.append(loss_of(Xt, Yt).item())
        o.zero_grad()
        if batches is None:
            loss_of(Xt, Yt).backward()
        else:
            idx = torch.tensor(batches[s])
            loss_of(Xt[idx], Yt[idx]).backward()
        o.step()
    with torch.no_grad():
        losses.append(loss_of(Xt, Yt).item())
    return np.array(losses), [p.detach().numpy() for p in F], [p.detach().numpy() for p in B]


def rel(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return np.abs(a - b).max() / max(np.abs(b).max(), 1e-300)


class AgainstPyTorch(unittest.TestCase):
    def test_trajectories_match_a_pytorch_float64_loop(self):
        """20 steps of every optimiser, loss and layer shape; the same losses and parameters to
        1e-10 relative (float64 round-off over 20 steps of these nets is ~1e-14; a missed
        term (bias, regulariser, decay, momentum) is far above it)."""
        rng = np.random.default_rng(7)
        cases = [
            ("gd", "l2", False, 1, 0.0, {}),
            ("gd", "cross_entropy", True, 1, 0.01, {}),
            ("momentum", "cross_entropy", True, 2, 0.05, {"momentum": 0.9}),
            ("nesterov", "l2", False, 2, 0.0, {"momentum": 0.8, "weight_decay": 0.01}),
            ("adam", "cross_entropy", True, 1, 0.02, {"weight_decay": 0.001}),
            ("adam", "l2", True, 3, 0.1, {}),
        ]
        with TempDir() as tmp:
            for i, (opt, loss, bias, k, lam, extra) in enumerate(cases):
                X, Y = classification(rng)
                widths = [6, 9, 7, 3]
                folder = tmp / f"c{i}"
                folder.mkdir()
                write_data(folder, X, Y)
                lr = 0.002 if opt == "adam" else 0.05
                body = f"""activation = "relu"
bias = {str(bias).lower()}
overparam = {k}
overparam_width = 5
[loss]
kind = "{loss}"
l2 = {lam}
[optimizer]
kind = "{opt}"
lr = {lr}
steps = 20
"""
                for key, value in extra.items():
                    body += f"{key} = {value}\n"
                body += '[record]\nevery = 1\nweights_every = 20\nprobes = ["loss"]\n'
                cfg = write_config(folder / "run.toml", config(f"c{i}", widths, body))
                out = run_dln("run", cfg, "--out", folder / "out")
                self.assertEqual(out.returncode, 0, out.stderr)
                F0, B0 = load_factors(folder / "out" / "snapshots" / "step_00.npz", widths, k)
                self.assertEqual(len(F0), 3 * k)
                if bias:
                    self.assertTrue(all((b == 0).all() for b in B0))
                losses, F, B = torch_run(X, Y, F0, B0, k, loss, lam, opt, lr, 20, extra)
                _, rows = read_metrics(folder / "out")
                self.assertLess(rel(rows[:, 1], losses), 1e-10, cases[i])
                F1, B1 = load_factors(folder / "out" / "snapshots" / "step_20.npz", widths, k)
                for a, b in zip(F1 + (B1 or []), F + B):
                    self.assertLess(rel(a, b), 1e-10, cases[i])

    def test_the_gradient_matches_finite_differences(self):
        """One GD step recovers the gradient, g = (W_0 - W_1) / eta (error ~ 1e-16 |W| / eta
        = 1e-12 relative); central differences of the NumPy loss with h = 1e-6 agree to
        ~h^2 |L'''| ~ 1e-10: tolerance 1e-6 relative to the largest entry."""
        rng = np.random.default_rng(3)
        X, Y = classification(rng, n=30, d=4, k=3)
        widths = [4, 5, 6, 3]
        eta = 1e-4
        for loss, k, lam in (("cross_entropy", 1, 0.1), ("l2", 2, 0.05)):
            with TempDir() as tmp:
                write_data(tmp, X, Y)
                cfg = write_config(tmp / "r.toml", config("fd", widths, f"""activation = "relu"
bias = true
overparam = {k}
[loss]
kind = "{loss}"
l2 = {lam}
[optimizer]
lr = {eta}
steps = 1
[record]
weights_every = 1
"""))
                out = run_dln("run", cfg, "--out", tmp / "o")
                self.assertEqual(out.returncode, 0, out.stderr)
                F0, B0 = load_factors(tmp / "o" / "snapshots" / "step_0.npz", widths, k)
                F1, B1 = load_factors(tmp / "o" / "snapshots" / "step_1.npz", widths, k)
                params0, params1 = F0 + B0, F1 + B1
                h = 1e-6
                for p0, p1, i in zip(params0, params1, range(len(params0))):
                    g = (p0 - p1) / eta
                    fd = np.zeros_like(p0)
                    for idx in np.ndindex(p0.shape):
                        for sign in (1, -1):
                            ps = [q.copy() for q in params0]
                            ps[i][idx] += sign * h
                            value = numpy_loss(X, Y, ps[:len(F0)], ps[len(F0):], k, loss, lam)[0]
                            fd[idx] += sign * value / (2 * h)
                    self.assertLess(np.abs(g - fd).max() / np.abs(fd).max(), 1e-6, (loss, i))


# out, in channels (None: fully connected), padding, pooled: docs/config.md#lenet
ARCHS = {
    "lenet": [(6, 1, 2, True), (16, 6, 0, True), (120, None, None, False),
              (84, None, None, False), (10, None, None, False)],
    "lenet_tf": [(32, 1, 2, True), (64, 32, 2, True), (512, None, None, False),
                 (10, None, None, False)],
}


def torch_lenet_run(arch, X, Y, factors, biases, k, lam, lr, momentum, steps):
    """The convolutional net written here with torch.nn.functional (ReLU, then 2x2 max pooling),
    trained by full-batch SGD with momentum in float64: the losses at every step and the final
    factors."""
    torch.set_num_threads(1)
    layers = ARCHS[arch]
    Xt, Yt = torch.tensor(X).view(-1, 1, 28, 28), torch.tensor(Y)
    F = [torch.tensor(W, requires_grad=True) for W in factors]
    B = [torch.tensor(b, requires_grad=True) for b in biases]
    o = torch.optim.SGD(F + B, lr=lr, momentum=momentum)

    def weight(g):
        W = F[g * k]
        for j in range(1, k):
            W = F[g * k + j] @ W
        return W

    def loss_of():
        h = Xt
        for g, (out, cin, pad, pool) in enumerate(layers):
            W = weight(g)
            if cin is not None:
                h = torch.nn.functional.conv2d(h, W.view(out, cin, 5, 5), B[g], padding=pad)
            else:
                h = torch.nn.functional.linear(h.flatten(1), W, B[g])
            if g + 1 < len(layers):
                h = torch.relu(h)
                if pool:
                    h = torch.nn.functional.max_pool2d(h, 2)
        data = -(Yt * torch.log_softmax(h, 1)).sum() / Xt.shape[0]
        return data + 0.5 * lam * sum((weight(g) ** 2).sum() for g in range(len(layers)))

    losses = []
    for _ in range(steps):
        o.zero_grad()
        loss = loss_of()
        losses.append(loss.item())
        loss.backward()
        o.step()
    with torch.no_grad():
        losses.append(loss_of().item())
    return np.array(losses), [p.detach().numpy() for p in F]


class LeNet(unittest.TestCase):
    def test_the_convolutional_nets_match_a_pytorch_float64_loop(self):
        """arch = "lenet", normal and overparameterised (every weight, the kernels included, a
        product of two), and "lenet_tf"; biases, L2 on the products, momentum: the steps on 30
        images equal a torch.nn.functional net from the same initial factors, losses and
        factors to 1e-10 relative (float64 round-off over these steps ~1e-13; a wrong padding,
        pooling, flattening order or regulariser is far above it). The normal and the
        overparameterised net start as the same function."""
        rng = np.random.default_rng(5)
        X = rng.uniform(0.0, 1.0, (30, 784))
        Y = np.eye(10)[rng.integers(0, 10, 30)]
        shapes = {"lenet": [(6, 25), (16, 150), (120, 400), (84, 120), (10, 84)],
                  "lenet_tf": [(32, 25), (64, 800), (512, 3136), (10, 512)]}
        first = {}
        with TempDir() as tmp:
            write_data(tmp, X, Y)
            for arch, k, steps in (("lenet", 1, 10), ("lenet", 2, 10), ("lenet_tf", 1, 4)):
                name = f"{arch}{k}"
                cfg = write_config(tmp / f"{name}.toml", f"""name = "{name}"
seed = 2
[data]
source = "npy"
x = "X.npy"
y = "Y.npy"
[model]
arch = "{arch}"
activation = "relu"
bias = true
overparam = {k}
[loss]
kind = "cross_entropy"
l2 = 0.01
[optimizer]
kind = "momentum"
momentum = 0.9
lr = 0.05
steps = {steps}
[record]
every = 1
weights_every = {steps}
probes = ["loss", "fro"]
""")
                out = run_dln("run", cfg, "--out", tmp / name)
                self.assertEqual(out.returncode, 0, out.stderr)
                groups = len(shapes[arch])
                F0, B0 = load_factors(tmp / name / "snapshots" / f"step_{0:0{len(str(steps))}d}.npz",
                                      range(groups + 1), k)
                self.assertEqual([W.shape for W in F0[k - 1::k]], shapes[arch])
                losses, F = torch_lenet_run(arch, X, Y, F0, B0, k, 0.01, 0.05, 0.9, steps)
                header, rows = read_metrics(tmp / name)
                self.assertLess(rel(rows[:, header.index("loss")], losses), 1e-10, name)
                F1, _ = load_factors(tmp / name / "snapshots" / f"step_{steps}.npz",
                                     range(groups + 1), k)
                for a, b in zip(F1, F):
                    self.assertLess(rel(a, b), 1e-10, name)
                first[name] = losses[0]
        self.assertAlmostEqual(first["lenet1"], first["lenet2"], delta=1e-12 * first["lenet1"])


class Sgd(unittest.TestCase):
    def sgd_run(self, folder, batch, seed=4, steps=None, every=1, tag=""):
        n = 40
        body = f"""activation = "relu"
bias = true
[loss]
kind = "cross_entropy"
[optimizer]
kind = "sgd"
lr = 0.05
steps = {steps or 3 * n // batch}
batch_size = {batch}
seed = {seed}
[record]
every = {every}
weights_every = 1
probes = ["loss"]
"""
        cfg = write_config(folder / f"b{batch}_{seed}.toml", config("sgd", [5, 8, 3], body))
        out = folder / f"out_b{batch}_{seed}{tag}"
        res = run_dln("run", cfg, "--out", out)
        self.assertEqual(res.returncode, 0, res.stderr)
        return out

    def test_batches_are_a_seeded_permutation_of_the_data_each_epoch(self):
        """With batch 1 each step's sample is identified by trying all 40 in PyTorch (the one
        whose step reproduces the next snapshot to 1e-12); each epoch must visit every sample
        once, epochs differ, and seeds differ. Batch 8 then follows the same permutations:
        its whole trajectory equals the PyTorch loop on those batches to 1e-10."""
        rng = np.random.default_rng(11)
        X, Y = classification(rng, n=40, d=5, k=3)
        with TempDir() as tmp:
            write_data(tmp, X, Y)
            out = self.sgd_run(tmp, 1)
            order = []
            for s in range(120):
                F0, B0 = load_factors(out / "snapshots" / f"step_{s:03d}.npz", [5, 8, 3], 1)
                F1, B1 = load_factors(out / "snapshots" / f"step_{s + 1:03d}.npz", [5, 8, 3], 1)
                found = []
                for i in range(40):
                    _, F, B = torch_run(X, Y, F0, B0, 1, "cross_entropy", 0.0, "sgd", 0.05, 1, {},
                                        batches=[[i]])
                    if all(rel(a, b) < 1e-12 for a, b in zip(F + B, F1 + B1)):
                        found.append(i)
                self.assertEqual(len(found), 1, f"step {s}: samples {found}")
                order.append(found[0])
            epochs = [order[e * 40:(e + 1) * 40] for e in range(3)]
            for e in epochs:
                self.assertEqual(sorted(e), list(range(40)))
            self.assertNotEqual(epochs[0], epochs[1])
            self.assertNotEqual(epochs[0], list(range(40)))
            # Batch 8: five batches an epoch, from the same permutations.
            out8 = self.sgd_run(tmp, 8)
            batches = [e[j * 8:(j + 1) * 8] for e in epochs for j in range(5)]
            F0, B0 = load_factors(out8 / "snapshots" / "step_00.npz", [5, 8, 3], 1)
            losses, F, B = torch_run(X, Y, F0, B0, 1, "cross_entropy", 0.0, "sgd", 0.05, 15, {},
                                     batches=batches)
            F1, B1 = load_factors(out8 / "snapshots" / "step_15.npz", [5, 8, 3], 1)
            for a, b in zip(F1 + B1, F + B):
                self.assertLess(rel(a, b), 1e-10)
            self.assertLess(rel(read_metrics(out8)[1][:, 1], losses), 1e-10)
            # Another seed, another order; the same seed, the same numbers.
            other = self.sgd_run(tmp, 8, seed=5)
            self.assertNotEqual((other / "weights" / "W1.npy").read_bytes(),
                                (out8 / "weights" / "W1.npy").read_bytes())
            again = self.sgd_run(tmp, 8, seed=4, tag="again")
            self.assertEqual((again / "weights" / "W1.npy").read_bytes(),
                             (out8 / "weights" / "W1.npy").read_bytes())

    def test_the_whole_data_set_as_one_batch_is_gd_bit_for_bit(self):
        rng = np.random.default_rng(12)
        X, Y = classification(rng, n=40, d=5, k=3)
        with TempDir() as tmp:
            write_data(tmp, X, Y)
            sgd = self.sgd_run(tmp, 40, steps=30)
            text = (tmp / "b40_4.toml").read_text().replace('kind = "sgd"', 'kind = "gd"')
            text = text.replace("batch_size = 40\n", "").replace("seed = 4\n[record]", "[record]")
            cfg = write_config(tmp / "gd.toml", text)
            res = run_dln("run", cfg, "--out", tmp / "gd")
            self.assertEqual(res.returncode, 0, res.stderr)
            for name in ("W1.npy", "W2.npy", "b1.npy", "b2.npy"):
                self.assertEqual((sgd / "weights" / name).read_bytes(),
                                 (tmp / "gd" / "weights" / name).read_bytes())


class Probes(unittest.TestCase):
    def test_every_probe_matches_numpy_on_the_snapshots(self):
        """Every nonlinear probe recomputed from the snapshot of its step (NumPy; gradients by
        this file's own PyTorch loss): 1e-9 relative (the engine's reductions run in another
        order)."""
        rng = np.random.default_rng(5)
        X, Y = classification(rng, n=50, d=6, k=3)
        widths = [6, 8, 7, 3]
        lam = 0.02
        probes = ["loss", "loss_data", "reg", "accuracy", "fro", "spectral", "grad_fro",
                  "balance", "growth_mismatch", "neuron_balance", "active", "pattern_flips",
                  "pattern_agreement", "partial"]
        with TempDir() as tmp:
            write_data(tmp, X, Y)
            cfg = write_config(tmp / "p.toml", config("p", widths, f"""activation = "relu"
bias = true
[loss]
kind = "cross_entropy"
l2 = {lam}
[optimizer]
lr = 0.5
steps = 40
[record]
every = 10
weights_every = 10
partial_samples = 4
probes = {toml_list(probes)}
"""))
            out = run_dln("run", cfg, "--out", tmp / "o")
            self.assertEqual(out.returncode, 0, out.stderr)
            header, rows = read_metrics(tmp / "o")
            col = {h: i for i, h in enumerate(header)}
            labels = Y.argmax(1)
            q0 = None
            last = None
            for r, step in enumerate(rows[:, 0].astype(int)):
                F, B = load_factors(tmp / "o" / "snapshots" / f"step_{step:02d}.npz", widths, 1)
                total, data, reg = numpy_loss(X, Y, F, B, 1, "cross_entropy", lam)
                out_, pre = forward(X, F, B, 1)
                # Gradients of the loss by this file's PyTorch code.
                Ft = [torch.tensor(W, requires_grad=True) for W in F]
                Bt = [torch.tensor(b, requires_grad=True) for b in B]
                h = torch.tensor(X)
                for g in range(3):
                    h = h @ Ft[g].T + Bt[g]
                    if g < 2:
                        h = torch.relu(h)
                ce = -(torch.tensor(Y) * torch.log_softmax(h, 1)).sum() / 50
                obj = ce + 0.5 * lam * sum((W ** 2).sum() for W in Ft)
                grads = [g.numpy() for g in torch.autograd.grad(obj, Ft)]
                expect = {"loss": total, "loss_data": data, "reg": reg,
                          "accuracy": (out_.argmax(1) == labels).mean()}
                for l in range(3):
                    expect[f"fro.{l + 1}"] = np.linalg.norm(F[l])
                    expect[f"spectral.{l + 1}"] = np.linalg.norm(F[l], 2)
                    expect[f"grad_fro.{l + 1}"] = np.linalg.norm(grads[l])
                for l in range(2):
                    A, V, GA, GV = F[l], F[l + 1], grads[l], grads[l + 1]
                    expect[f"balance.{l + 1}"] = np.linalg.norm(V.T @ V - A @ A.T)
                    expect[f"growth_mismatch.{l + 1}"] = np.linalg.norm(
                        -(GV.T @ V + V.T @ GV) + (GA @ A.T + A @ GA.T))
                q = [(F[l] ** 2).sum(1) + B[l] ** 2 - (F[l + 1] ** 2).sum(0) for l in range(2)]
                q0 = q if q0 is None else q0
                masks = [p > 0 for p in pre]
                for l in range(2):
                    expect[f"neuron_balance.{l + 1}"] = np.abs(q[l] - q0[l]).max()
                    expect[f"active.{l + 1}"] = masks[l].mean()
                    expect[f"pattern_flips.{l + 1}"] = 0.0 if last is None else (
                        masks[l] != last[l]).mean()
                    same = pairs = 0
                    for i in range(50):
                        for j in range(i + 1, 50):
                            if labels[i] == labels[j]:
                                pairs += 1
                                same += bool((masks[l][i] == masks[l][j]).all())
                    expect[f"pattern_agreement.{l + 1}"] = same / pairs
                    for s in range(4):
                        expect[f"partial.{l + 1}.{s + 1}"] = np.linalg.norm(F[l][masks[l][s]])
                last = masks
                self.assertEqual(len(expect), len(header) - 1)
                for name, value in expect.items():
                    got = rows[r, col[name]]
                    self.assertLessEqual(abs(got - value), 1e-9 * max(abs(value), 1.0),
                                         f"{name} at step {step}: {got} vs {value}")
            # Training did something: patterns moved and the per-unit balance drifted.
            self.assertGreater(rows[-1, col["neuron_balance.1"]], 0)
            self.assertGreater(rows[1:, col["pattern_flips.1"]].max(), 0)


class Reproduction(unittest.TestCase):
    @unittest.skipIf(SANITIZED, "a minute of float32 training; the engine's tests run above")
    def test_basu_fig2_prints_its_claims_with_numbers(self):
        with TempDir() as tmp:
            out = run_dln("reproduce", "basu-fig2", "--out", tmp / "b", timeout=1500)
            self.assertEqual(out.returncode, 0, out.stderr)
            claims = [l for l in out.stdout.splitlines() if l.startswith("claim:")]
            self.assertEqual(len(claims), 6, out.stdout)
            self.assertTrue((tmp / "b" / "figures" / "basu_fig2.png").is_file())
            header, rows = read_metrics(tmp / "b" / "relu7")
            self.assertEqual(header.count("growth_mismatch.6"), 1)
            # It learned the digits, and every claim prints the numbers it rests on.
            self.assertGreater(rows[-1, header.index("accuracy")], 0.99)
            for c in claims:
                self.assertRegex(c, r"\d\.\d")

    @unittest.skipIf(SANITIZED, "two minutes of float32 LeNet training; LeNet's test runs above")
    def test_hou_mnist_prints_its_claims_with_numbers(self):
        with TempDir() as tmp:
            out = run_dln("reproduce", "hou-mnist", "--out", tmp / "h", timeout=1500)
            self.assertEqual(out.returncode, 0, out.stderr)
            claims = [l for l in out.stdout.splitlines() if l.startswith("claim:")]
            self.assertEqual(len(claims), 5, out.stdout)
            self.assertTrue((tmp / "h" / "figures" / "hou_mnist.png").is_file())
            for arm in ("normal", "overparam", "normal_noreg", "overparam_noreg"):
                header, rows = read_metrics(tmp / "h" / "lenet" / arm)
                # Every arm learned the digits it trains on.
                self.assertGreater(rows[-1, header.index("accuracy")], 0.97, arm)
            for c in claims:
                self.assertRegex(c, r"\d\.\d")


class Engine(unittest.TestCase):
    def test_float32_follows_float64_and_runs_repeat_bit_for_bit(self):
        rng = np.random.default_rng(6)
        X, Y = classification(rng, n=200, d=10, k=4)
        with TempDir() as tmp:
            write_data(tmp, X, Y)
            body = """activation = "relu"
dtype = "{dtype}"
[loss]
kind = "cross_entropy"
[optimizer]
kind = "sgd"
batch_size = 32
lr = 0.1
steps = 200
[record]
every = 50
probes = ["loss", "accuracy", "fro"]
"""
            runs = {}
            for dtype, jobs, name in (("float64", 1, "a"), ("float64", 2, "b"),
                                      ("float32", 1, "c"), ("float64", 1, "d")):
                cfg = write_config(tmp / f"{name}.toml",
                                   config(name, [10, 32, 32, 4], body.format(dtype=dtype)))
                res = run_dln("run", cfg, "--out", tmp / name, "--jobs", jobs)
                self.assertEqual(res.returncode, 0, res.stderr)
                runs[name] = read_metrics(tmp / name)[1][:, :-1]  # without time
            # The same config: the same numbers, on one thread or two.
            np.testing.assert_array_equal(runs["a"], runs["d"])
            np.testing.assert_array_equal(runs["a"], runs["b"])
            # float32 stays within float32 round-off amplified over 200 steps (1e-3).
            self.assertLess(rel(runs["c"], runs["a"]), 1e-3)
            self.assertGreater(rel(runs["c"], runs["a"]), 0)

    def test_a_killed_run_resumes_bit_for_bit(self):
        rng = np.random.default_rng(8)
        X, Y = classification(rng, n=400, d=20, k=5)
        steps = 1000 if SANITIZED else 4000
        with TempDir() as tmp:
            write_data(tmp, X, Y)
            cfg = write_config(tmp / "k.toml", config("k", [20, 64, 64, 5], f"""activation = "relu"
bias = true
[loss]
kind = "cross_entropy"
[optimizer]
kind = "adam"
batch_size = 50
lr = 0.001
steps = {steps}
[record]
every = 100
checkpoint_every = 100
probes = ["loss", "accuracy", "pattern_flips", "neuron_balance"]
"""))
            run_whole_then_killed_and_resumed(self, cfg, tmp)
            a = [l.rsplit(",", 1)[0] for l in (tmp / "whole" / "metrics.csv").read_text().split()]
            b = [l.rsplit(",", 1)[0] for l in (tmp / "cut" / "metrics.csv").read_text().split()]
            self.assertEqual(a, b)
            for name in ("W1.npy", "W3.npy", "b2.npy"):
                self.assertEqual((tmp / "whole" / "weights" / name).read_bytes(),
                                 (tmp / "cut" / "weights" / name).read_bytes())

    def test_bad_settings_are_one_line_naming_the_key(self):
        rng = np.random.default_rng(9)
        X, Y = classification(rng)
        cases = [
            ('activation = "relu"\nengine = "native"\n', "model.activation"),
            ('activation = "relu"\n[optimizer]\nkind = "flow"\n', "optimizer.kind"),
            ('activation = "relu"\n[loss]\nkind = "logistic"\n', "loss.kind"),
            ('activation = "tanh"\n', "model.activation"),
            ('overparam = 0\n', "model.overparam"),
            ('activation = "relu"\n[record]\nprobes = ["e2e_fro"]\n', "record.probes"),
            ('activation = "relu"\n[record]\nprobes = ["test_accuracy"]\n', "record.probes"),
            ('[loss]\nl2 = -1.0\n', "loss.l2"),
            ('[optimizer]\nkind = "sgd"\nbatch_size = -3\n', "optimizer.batch_size"),
            ('[optimizer]\nkind = "sgd"\nweight_decay = -0.1\n', "optimizer.weight_decay"),
        ]
        with TempDir() as tmp:
            write_data(tmp, X, Y)
            np.save(tmp / "Yr.npy", rng.standard_normal((60, 3)))
            for i, (body, key) in enumerate(cases):
                cfg = write_config(tmp / f"e{i}.toml", config(f"e{i}", [6, 5, 3], body))
                res = run_dln("run", cfg, "--out", tmp / f"o{i}")
                self.assertEqual(res.returncode, 2, (body, res.stderr))
                self.assertEqual(len(res.stderr.strip().splitlines()), 1, res.stderr)
                self.assertIn(key, res.stderr)
                self.assertFalse((tmp / f"o{i}").exists())
            # The convolutional nets: their own layers, 28 x 28 images, the MLP-only probes.
            data = '[data]\nsource = "npy"\nx = "X.npy"\ny = "Y.npy"\n'
            for i, (body, key) in enumerate([
                    ('[model]\narch = "lenet"\nwidths = [784, 10]\n', "model.widths"),
                    ('[model]\narch = "resnet"\n', "model.arch"),
                    ('[model]\narch = "lenet"\n', "d = 784, not 6"),
                    ('[model]\narch = "lenet_tf"\n[record]\nprobes = ["balance"]\n',
                     "record.probes"),
                    ('[model]\narch = "lenet"\n[init]\nscheme = "balanced"\n', "init.scheme"),
                    ('[model]\nwidths = [6, 5, 3]\noverparam = 2\noverparam_init = "zero"\n',
                     "model.overparam_init")]):
                cfg = write_config(tmp / f"c{i}.toml", f'name = "c{i}"\n' + data + body)
                res = run_dln("run", cfg, "--out", tmp / f"c{i}")
                self.assertEqual(res.returncode, 2, (body, res.stderr))
                self.assertEqual(len(res.stderr.strip().splitlines()), 1, res.stderr)
                self.assertIn(key, res.stderr)
                self.assertFalse((tmp / f"c{i}").exists())
            # Cross-entropy needs one-hot targets.
            text = config("ce", [6, 5, 3], '[loss]\nkind = "cross_entropy"\n').replace(
                '"Y.npy"', '"Yr.npy"')
            res = run_dln("run", write_config(tmp / "ce.toml", text), "--out", tmp / "ce")
            self.assertEqual(res.returncode, 2, res.stderr)
            self.assertIn("one-hot", res.stderr)

    def test_auto_picks_the_engine_and_summary_names_it(self):
        rng = np.random.default_rng(10)
        X, Y = classification(rng)
        with TempDir() as tmp:
            write_data(tmp, X, Y)
            for body, engine in (("", "native"), ('activation = "relu"\n', "torch"),
                                 ('[optimizer]\nkind = "sgd"\nbatch_size = 10\n', "native"),
                                 ('[loss]\nkind = "cross_entropy"\n', "torch"),
                                 ('engine = "torch"\n', "torch")):
                cfg = write_config(tmp / "a.toml", config("a", [6, 5, 3], body))
                res = run_dln("run", cfg, "--out", tmp / "a", "--force")
                self.assertEqual(res.returncode, 0, res.stderr)
                summary = json.loads((tmp / "a" / "summary.json").read_text())
                self.assertEqual(summary["engine"], engine, body)


if __name__ == "__main__":
    unittest.main()
