"""Mini-batches, weight decay and learning-rate schedules on the native (linear) engine, against
independent computations: the documented batch sampling written again here in Python (64-bit
Mersenne Twister, splitmix64, Fisher-Yates), a PyTorch float64 loop with torch.optim on those
batches, the closed form of gradient flow with decay, and the schedules' formulas.
"""
import math
import unittest

import numpy as np
import torch

from support import (TempDir, run_whole_then_killed_and_resumed, read_metrics, run_dln,
                     toml_list, write_config)

M64 = (1 << 64) - 1


class MT19937_64:
    """The 64-bit Mersenne Twister (Matsumoto & Nishimura), as std::mt19937_64."""

    def __init__(self, seed):
        self.mt = [seed & M64]
        for i in range(1, 312):
            prev = self.mt[-1]
            self.mt.append((6364136223846793005 * (prev ^ (prev >> 62)) + i) & M64)
        self.index = 312

    def __call__(self):
        if self.index >= 312:
            for i in range(312):
                x = (self.mt[i] & 0xFFFFFFFF80000000) | (self.mt[(i + 1) % 312] & 0x7FFFFFFF)
                xa = x >> 1
                if x & 1:
                    xa ^= 0xB5026F5AA96619E9
                self.mt[i] = self.mt[(i + 156) % 312] ^ xa
            self.index = 0
        x = self.mt[self.index]
        self.index += 1
        x ^= (x >> 29) & 0x5555555555555555
        x ^= (x << 17) & 0x71D67FFFEDA60000
        x ^= (x << 37) & 0xFFF7EEE000000000
        x ^= x >> 43
        return x & M64


def mix64(x):
    x = (x + 0x9E3779B97F4A7C15) & M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & M64
    return x ^ (x >> 31)


def derive_seed(seed, stream):
    h = 1469598103934665603
    for c in stream.encode():
        h = ((h ^ c) * 1099511628211) & M64
    z = (seed + 0x9E3779B97F4A7C15 * (h | 1)) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return z ^ (z >> 31)


def below(engine, bound):
    limit = M64 - M64 % bound
    while True:
        r = engine()
        if r < limit:
            return r % bound


def batches(seed, n, batch, steps, with_replacement):
    """docs/theory.md#mini-batches: the samples of each step."""
    s = derive_seed(seed, "batches")
    out = []
    if with_replacement:
        for t in range(steps):
            e = MT19937_64(mix64((~s & M64) ^ mix64(t)))
            out.append([below(e, n) for _ in range(batch)])
        return out
    per_epoch = -(-n // batch)
    for t in range(steps):
        epoch, k = divmod(t, per_epoch)
        if k == 0:
            e = MT19937_64(mix64(s ^ mix64(epoch)))
            perm = list(range(n))
            for i in range(n, 1, -1):
                j = below(e, i)
                perm[i - 1], perm[j] = perm[j], perm[i - 1]
        out.append(perm[k * batch:(k + 1) * batch])
    return out


def torch_loop(X, Y, layers, opt, lr, steps, batch_list, extra):
    """torch.optim on the given batches, l2 loss (1/2 mean over the batch): the full loss
    before every step and after the last."""
    Xt, Yt = torch.tensor(X), torch.tensor(Y)
    W = [torch.tensor(w, requires_grad=True) for w in layers]
    wd = extra.get("weight_decay", 0.0)
    if opt == "adam":
        o = torch.optim.Adam(W, lr=lr, weight_decay=wd)
    elif opt == "adagrad":
        o = torch.optim.Adagrad(W, lr=lr, weight_decay=wd, eps=1e-10)
    else:
        o = torch.optim.SGD(W, lr=lr, weight_decay=wd, momentum=extra.get("momentum", 0.0),
                            nesterov=opt == "nesterov")

    def loss(x, y):
        h = x
        for w in W:
            h = h @ w.T
        return 0.5 * ((h - y) ** 2).sum() / x.shape[0]

    losses = []
    for idx in batch_list:
        with torch.no_grad():
            losses.append(loss(Xt, Yt).item())
        o.zero_grad()
        i = torch.tensor(idx)
        loss(Xt[i], Yt[i]).backward()
        o.step()
    with torch.no_grad():
        losses.append(loss(Xt, Yt).item())
    return np.array(losses), [w.detach().numpy() for w in W]


def config(name, widths, body):
    return (f'name = "{name}"\nseed = 9\n[data]\nsource = "npy"\nx = "X.npy"\ny = "Y.npy"\n'
            f'[model]\nwidths = {toml_list(widths)}\n[init]\nscheme = "normal"\nstd = 0.4\n' + body)


def rel(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return np.abs(a - b).max() / max(np.abs(b).max(), 1e-300)


class MiniBatches(unittest.TestCase):
    def test_trajectories_match_pytorch_on_the_documented_batches(self):
        """Every optimiser with mini-batches (permutations, a short last batch, and draws with
        replacement) and weight decay: the losses of all 15 steps and the final layers equal a
        PyTorch float64 loop on the batches computed here to 1e-10 relative (round-off over 15
        steps ~1e-14; one batch's samples wrong moves the loss by ~1e-2)."""
        rng = np.random.default_rng(1)
        X = rng.standard_normal((40, 5))
        Y = X @ rng.standard_normal((5, 3)) + 0.1 * rng.standard_normal((40, 3))
        cases = [("sgd", 8, False, {}), ("sgd", 7, False, {"weight_decay": 0.05}),
                 ("sgd", 6, True, {}), ("momentum", 8, False, {"momentum": 0.9}),
                 ("nesterov", 7, True, {"momentum": 0.8, "weight_decay": 0.01}),
                 ("adam", 9, False, {"weight_decay": 0.02}), ("adagrad", 10, False, {})]
        with TempDir() as tmp:
            np.save(tmp / "X.npy", X)
            np.save(tmp / "Y.npy", Y)
            for i, (opt, batch, repl, extra) in enumerate(cases):
                lr = 0.01 if opt in ("adam", "adagrad") else 0.05
                body = (f'[optimizer]\nkind = "{opt}"\nlr = {lr}\nsteps = 15\nbatch_size = {batch}\n'
                        f'with_replacement = {str(repl).lower()}\n')
                body += "".join(f"{k} = {v}\n" for k, v in extra.items())
                body += '[record]\nevery = 1\nweights_every = 15\nprobes = ["loss"]\n'
                cfg = write_config(tmp / f"c{i}.toml", config(f"c{i}", [5, 4, 3], body))
                out = run_dln("run", cfg, "--out", tmp / f"c{i}")
                self.assertEqual(out.returncode, 0, out.stderr)
                with np.load(tmp / f"c{i}" / "snapshots" / "step_00.npz") as z:
                    layers = [z["W1"], z["W2"]]
                want, final = torch_loop(X, Y, layers, opt, lr, 15,
                                         batches(9, 40, batch, 15, repl), extra)
                _, rows = read_metrics(tmp / f"c{i}")
                self.assertLess(rel(rows[:, 1], want), 1e-10, cases[i])
                with np.load(tmp / f"c{i}" / "snapshots" / "step_15.npz") as z:
                    for l, w in enumerate(final, 1):
                        self.assertLess(rel(z[f"W{l}"], w), 1e-10, cases[i])

    def test_the_whole_data_set_as_one_batch_is_gd_bit_for_bit(self):
        rng = np.random.default_rng(2)
        X = rng.standard_normal((30, 4))
        Y = X @ rng.standard_normal((4, 2))
        with TempDir() as tmp:
            np.save(tmp / "X.npy", X)
            np.save(tmp / "Y.npy", Y)
            texts = []
            for name, body in (("gd", 'kind = "gd"\n'), ("n", 'kind = "sgd"\nbatch_size = 30\n'),
                               ("zero", 'kind = "sgd"\nbatch_size = 0\n'),
                               ("more", 'kind = "sgd"\nbatch_size = 1000\n')):
                cfg = write_config(tmp / f"{name}.toml", config("same", [4, 3, 2],
                                   f"[optimizer]\n{body}lr = 0.05\nsteps = 50\n"
                                   '[record]\nevery = 5\nprobes = ["loss", "fro", "balance"]\n'))
                out = run_dln("run", cfg, "--out", tmp / name)
                self.assertEqual(out.returncode, 0, out.stderr)
                texts.append((tmp / name / "metrics.csv").read_text())
            self.assertEqual(len(set(texts)), 1)

    def test_a_killed_batch_run_resumes_bit_for_bit_and_divergence_is_a_result(self):
        """The batches are a function of (seed, step): a run killed at a checkpoint and resumed
        records the numbers of an uninterrupted one; a rate far too large ends as diverged."""
        rng = np.random.default_rng(3)
        X = rng.standard_normal((2000, 20))
        Y = X @ rng.standard_normal((20, 4))
        with TempDir() as tmp:
            np.save(tmp / "X.npy", X)
            np.save(tmp / "Y.npy", Y)
            body = ('[optimizer]\nkind = "momentum"\nlr = {lr}\nsteps = 20000\nbatch_size = 32\n'
                    '[record]\nevery = 100\ncheckpoint_every = 100\nprobes = ["loss", "fro"]\n')
            cfg = write_config(tmp / "k.toml", config("k", [20, 30, 4], body.format(lr=0.001)))
            run_whole_then_killed_and_resumed(self, cfg, tmp)
            self.assertEqual((tmp / "whole" / "metrics.csv").read_text(),
                             (tmp / "cut" / "metrics.csv").read_text())
            hot = write_config(tmp / "d.toml", config("d", [20, 30, 4], body.format(lr=50.0)))
            out = run_dln("run", hot, "--out", tmp / "d")
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertIn('"diverged"', (tmp / "d" / "summary.json").read_text())


class Decay(unittest.TestCase):
    def test_gradient_flow_with_decay_follows_its_closed_form(self):
        """One layer, l2 (mean): dW/dt = -(W Sxx - Syx) - w W is linear with fixed point
        W_w = Syx (Sxx + w I)^-1, so W(t) - W_w = (W(0) - W_w) expm(-(Sxx + w I) t). The adaptive
        integrator at tolerance 1e-10 agrees to 1e-8; and e2e at depth 1 (plain GD on W_e with
        decay) equals a NumPy loop to 1e-12."""
        rng = np.random.default_rng(4)
        X = rng.standard_normal((50, 4))
        Y = X @ rng.standard_normal((4, 2)) + 0.2 * rng.standard_normal((50, 2))
        w = 0.3
        with TempDir() as tmp:
            np.save(tmp / "X.npy", X)
            np.save(tmp / "Y.npy", Y)
            W0 = rng.standard_normal((2, 4))
            np.save(tmp / "W0.npy", W0)
            text = config("f", [4, 2], f"""[optimizer]
kind = "flow"
time = 1.0
weight_decay = {w}
[record]
every = 1.0
""").replace('scheme = "normal"\nstd = 0.4', 'scheme = "npy"\npaths = ["W0.npy"]')
            out = run_dln("run", write_config(tmp / "f.toml", text), "--out", tmp / "f")
            self.assertEqual(out.returncode, 0, out.stderr)
            W1 = np.load(tmp / "f" / "weights" / "W1.npy")
            Sxx, Syx = X.T @ X / 50, Y.T @ X / 50
            Ww = Syx @ np.linalg.inv(Sxx + w * np.eye(4))
            lam, U = np.linalg.eigh(Sxx + w * np.eye(4))
            expm = U @ np.diag(np.exp(-lam)) @ U.T
            self.assertLess(rel(W1, Ww + (W0 - Ww) @ expm), 1e-8)
            cfg = write_config(tmp / "e.toml", config("e", [4, 2], f"""[optimizer]
kind = "e2e"
depth = 1
lr = 0.1
steps = 30
weight_decay = {w}
[record]
weights_every = 30
"""))
            out = run_dln("run", cfg, "--out", tmp / "e")
            self.assertEqual(out.returncode, 0, out.stderr)
            with np.load(tmp / "e" / "snapshots" / "step_00.npz") as z:
                We = z["W1"].copy()
            for _ in range(30):
                We = We - 0.1 * ((We @ X.T - Y.T) @ X / 50 + w * We)
            self.assertLess(rel(np.load(tmp / "e" / "weights" / "W1.npy"), We), 1e-12)

    def test_agd_with_decay_follows_its_update_written_out(self):
        """AGD on d -> 1 -> 1 with weight decay w: w <- w - (eta/a^2)(a dL/dW_e + w_d w), then
        theta <- theta - (theta^2/2)(dL/dtheta + w_d theta), written out in NumPy; 40 steps agree
        to 1e-12 relative."""
        rng = np.random.default_rng(7)
        X = rng.standard_normal((30, 4))
        y = X @ rng.standard_normal(4) + 0.1 * rng.standard_normal(30)
        wd, eta = 0.05, 0.1
        with TempDir() as tmp:
            np.save(tmp / "X.npy", X)
            np.save(tmp / "Y.npy", y[:, None])
            text = config("a", [4, 1, 1], f"""[optimizer]
kind = "agd"
lr = {eta}
steps = 40
weight_decay = {wd}
[record]
weights_every = 40
""").replace('scheme = "normal"\nstd = 0.4', 'scheme = "agd"')
            out = run_dln("run", write_config(tmp / "a.toml", text), "--out", tmp / "a")
            self.assertEqual(out.returncode, 0, out.stderr)
            w, theta, c = np.zeros(4), 1.0, 1.0 / 30
            for _ in range(40):
                a = theta
                g = c * (a * X @ w - y) @ X  # dL/dW_e
                w = w - eta / a ** 2 * (a * g + wd * w)
                yhat = a * X @ w
                q, r = yhat @ yhat, yhat @ y
                theta = theta * (1 + 0.5 * c * (r - q) - 0.5 * wd * theta ** 2)
            self.assertLess(rel(np.load(tmp / "a" / "weights" / "W1.npy")[0], w), 1e-12)
            self.assertLess(rel(np.load(tmp / "a" / "weights" / "W2.npy")[0, 0], theta), 1e-12)


class Schedules(unittest.TestCase):
    def test_every_schedule_gives_the_rates_of_its_formula(self):
        """The rate of step t recovered from the recorded continuous time t (the compensated sum
        of the rates): equal to the formula to 1e-12 relative, on the native and the torch
        engine."""
        rng = np.random.default_rng(5)
        X = rng.standard_normal((20, 3))
        Y = np.eye(2)[(X[:, 0] > 0).astype(int)]
        lr, T = 0.1, 40

        def formula(kind, t, extra):
            rate = lr
            if kind == "step":
                rate = lr * extra["gamma"] ** (t // extra["step_size"])
            elif kind == "cosine":
                D = extra.get("decay_steps", T)
                m = extra.get("min_lr", 0.0)
                rate = m if t >= D else m + (lr - m) * (1 + math.cos(math.pi * t / D)) / 2
            elif kind == "inverse_time":
                rate = lr / (1 + extra["decay_rate"] * t)
            W = extra.get("warmup_steps", 0)
            return rate * (t + 1) / W if t < W else rate

        cases = [("constant", {}), ("warmup", {"warmup_steps": 10}),
                 ("step", {"gamma": 0.5, "step_size": 7}),
                 ("cosine", {"min_lr": 0.01}), ("cosine", {"decay_steps": 25, "warmup_steps": 5}),
                 ("inverse_time", {"decay_rate": 0.2}),
                 ("step", {"gamma": 0.3, "step_size": 10, "warmup_steps": 4})]
        with TempDir() as tmp:
            np.save(tmp / "X.npy", X)
            np.save(tmp / "Y.npy", Y)
            for engine in ("native", "torch"):
                for i, (kind, extra) in enumerate(cases):
                    body = f'[optimizer]\nlr = {lr}\nsteps = {T}\nschedule = "{kind}"\n'
                    body += "".join(f"{k} = {v}\n" for k, v in extra.items())
                    body += '[record]\nevery = 1\nprobes = ["loss", "t"]\n'
                    text = config(f"s{i}", [3, 2], body).replace(
                        "[init]", f'engine = "{engine}"\n[init]')
                    out = run_dln("run", write_config(tmp / f"{engine}{i}.toml", text),
                                  "--out", tmp / f"{engine}{i}")
                    self.assertEqual(out.returncode, 0, out.stderr)
                    header, rows = read_metrics(tmp / f"{engine}{i}")
                    rates = np.diff(rows[:, header.index("t")])
                    want = [formula(kind, t, extra) for t in range(T)]
                    self.assertLess(rel(rates, want), 1e-12, (engine, kind, extra))

    def test_bad_settings_are_one_line_naming_the_key(self):
        rng = np.random.default_rng(6)
        with TempDir() as tmp:
            np.save(tmp / "X.npy", rng.standard_normal((20, 3)))
            np.save(tmp / "Y.npy", rng.standard_normal((20, 2)))
            for i, (body, key) in enumerate([
                    ('schedule = "warmup"\n', "optimizer.warmup_steps"),
                    ('schedule = "step"\n', "optimizer.step_size"),
                    ('schedule = "step"\nstep_size = 3\ngamma = -1.0\n', "optimizer.gamma"),
                    ('schedule = "cosine"\nmin_lr = 5.0\n', "optimizer.min_lr"),
                    ('schedule = "inverse_time"\n', "optimizer.decay_rate"),
                    ('schedule = "linear"\n', "optimizer.schedule"),
                    ('kind = "sgd"\nbatch_size = -2\n', "optimizer.batch_size"),
                    ('kind = "sgd"\nweight_decay = -1.0\n', "optimizer.weight_decay")]):
                cfg = write_config(tmp / f"e{i}.toml", config(f"e{i}", [3, 2],
                                   f"[optimizer]\nlr = 0.1\nsteps = 10\n{body}"))
                res = run_dln("run", cfg, "--out", tmp / f"e{i}")
                self.assertEqual(res.returncode, 2, (body, res.stderr))
                self.assertEqual(len(res.stderr.strip().splitlines()), 1, res.stderr)
                self.assertIn(key, res.stderr)
                self.assertFalse((tmp / f"e{i}").exists())


if __name__ == "__main__":
    unittest.main()
