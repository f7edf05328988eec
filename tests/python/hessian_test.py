"""The Hessian probes of linear nets (sharpness, hessian_eigs, sharpness_e2e, edge) and the
singular-value probes (sv, sv_e2e) against independent computations from the weight snapshots:
PyTorch's autograd Hessian and a dense Hessian built by central differences of the exact
gradients, written here in NumPy; NumPy's SVD.
"""
import os
import unittest

import numpy as np
import torch

from support import (TempDir, run_whole_then_killed_and_resumed, read_metrics, run_dln,
                     toml_list, write_config)


def load_layers(path):
    with np.load(path) as z:
        names = sorted(z.files, key=lambda f: int(f[1:]))
        return [z[n] for n in names]


def residual_loss(kind, p, R, Y, c, lib):
    """The loss of residual R = W_e X - Y (k x n) with targets Y, scale c."""
    if kind == "lp":
        return c / p * (lib.abs(R) ** p).sum()
    m = Y * (R + Y)
    if kind == "logistic":
        return c * (lib.log1p(lib.exp(-lib.abs(m))) + lib.clamp(-m, min=0)).sum() \
            if lib is torch else c * np.logaddexp(0.0, -m).sum()
    return c * lib.exp(-m).sum()


def torch_hessian(layers, X, Y, kind, p, c):
    """PyTorch autograd's Hessian of the loss in all layers (flattened), and in W_e."""
    shapes = [W.shape for W in layers]
    sizes = [W.size for W in layers]
    Xt, Yt = torch.tensor(X.T), torch.tensor(Y.T)

    def split(flat):
        out, at = [], 0
        for shape, size in zip(shapes, sizes):
            out.append(flat[at:at + size].reshape(shape))
            at += size
        return out

    def loss(flat):
        We = None
        for W in split(flat):
            We = W if We is None else W @ We
        return residual_loss(kind, p, We @ Xt - Yt, Yt, c, torch)

    def loss_e2e(flat):
        return residual_loss(kind, p, flat.reshape(Y.shape[1], X.shape[1]) @ Xt - Yt, Yt, c, torch)

    flat = torch.tensor(np.concatenate([W.ravel() for W in layers]))
    We = layers[0]
    for W in layers[1:]:
        We = W @ We
    H = torch.autograd.functional.hessian(loss, flat).numpy()
    He = torch.autograd.functional.hessian(loss_e2e, torch.tensor(We.ravel())).numpy()
    return H, He


def numpy_gradients(layers, X, Y, kind, p, c):
    """The exact layer gradients S_l^T G P_{l-1}^T, G = dL/dW_e, in NumPy."""
    Xt, Yt = X.T, Y.T
    prefix = [np.eye(X.shape[1])]
    for W in layers:
        prefix.append(W @ prefix[-1])
    R = prefix[-1] @ Xt - Yt
    if kind == "lp":
        dR = c * np.sign(R) * np.abs(R) ** (p - 1)
    elif kind == "logistic":
        dR = -c * Yt / (1.0 + np.exp(Yt * (R + Yt)))
    else:
        dR = -c * Yt * np.exp(-Yt * (R + Yt))
    G = dR @ Xt.T
    grads = []
    for l in range(len(layers)):
        S = np.eye(Y.shape[1])
        for W in layers[l + 1:][::-1]:
            S = S @ W
        grads.append(S.T @ G @ prefix[l].T)
    return np.concatenate([g.ravel() for g in grads])


def fd_hessian(layers, X, Y, kind, p, c, h=1e-3):
    """Central differences of the exact gradients, Richardson-extrapolated over h and h/2
    (error O(h^4): ~1e-12 relative here)."""
    flat = np.concatenate([W.ravel() for W in layers])
    shapes = [W.shape for W in layers]

    def grad(x):
        out, at = [], 0
        for shape in shapes:
            size = shape[0] * shape[1]
            out.append(x[at:at + size].reshape(shape))
            at += size
        return numpy_gradients(out, X, Y, kind, p, c)

    H = np.zeros((flat.size, flat.size))
    for i in range(flat.size):
        e = np.zeros(flat.size)
        e[i] = 1.0
        d1 = (grad(flat + h * e) - grad(flat - h * e)) / (2 * h)
        d2 = (grad(flat + h / 2 * e) - grad(flat - h / 2 * e)) / h
        H[:, i] = (4 * d2 - d1) / 3
    return (H + H.T) / 2


CASES = [
    # name, widths, loss body, targets
    ("l2_stats", [4, 3, 5, 2], 'kind = "l2"\n', "real"),
    ("l2_data_sum", [4, 3, 5, 2], 'kind = "l2"\npath = "data"\nreduction = "sum"\n', "real"),
    ("lp4", [4, 6, 2], 'kind = "lp"\np = 4.0\n', "real"),
    ("logistic", [4, 5, 3, 1], 'kind = "logistic"\n', "pm1"),
    ("exponential", [4, 5, 1], 'kind = "exponential"\n', "pm1"),
]


class HessianProbes(unittest.TestCase):
    def test_the_top_eigenvalues_match_autograd_and_finite_differences(self):
        """At step 0 and after 30 GD steps: sharpness and the top 4 eigenvalues equal those of
        PyTorch's autograd Hessian to 1e-8 of the largest (Lanczos stops at a residual of 1e-10
        of it, which bounds the eigenvalue's error), and those of the finite-difference Hessian
        to 1e-7 (its own error ~1e-10); sharpness_e2e the top eigenvalue of autograd's Hessian in
        W_e; edge = sharpness lr / 2; sv and sv_e2e NumPy's singular values to 1e-12."""
        rng = np.random.default_rng(12)
        with TempDir() as tmp:
            for name, widths, body, targets in CASES:
                n, d, k = 30, widths[0], widths[-1]
                X = rng.standard_normal((n, d)) * np.array([1.0, 0.5, 2.0, 1.5])
                if targets == "pm1":
                    Y = np.sign(X @ rng.standard_normal((d, k)))
                else:
                    Y = X @ rng.standard_normal((d, k)) + 0.3 * rng.standard_normal((n, k))
                np.save(tmp / f"{name}_X.npy", X)
                np.save(tmp / f"{name}_Y.npy", Y)
                lr = 0.002
                cfg = write_config(tmp / f"{name}.toml", f"""name = "{name}"
seed = 5
[data]
source = "npy"
x = "{name}_X.npy"
y = "{name}_Y.npy"
[model]
widths = {toml_list(widths)}
[init]
scheme = "normal"
std = 0.5
[loss]
{body}[optimizer]
lr = {lr}
steps = 30
[record]
every = 30
weights_every = 30
hessian_k = 4
probes = ["loss", "sharpness", "hessian_eigs", "sharpness_e2e", "edge", "hessian_products",
          "sv", "sv_e2e"]
""")
                out = run_dln("run", cfg, "--out", tmp / name)
                self.assertEqual(out.returncode, 0, out.stderr)
                header, rows = read_metrics(tmp / name)
                col = {h: i for i, h in enumerate(header)}
                kind = "lp" if "l2" in name or name == "lp4" else name
                p = 4.0 if name == "lp4" else 2.0
                c = 1.0 if "sum" in name else 1.0 / n
                for r, step in enumerate((0, 30)):
                    layers = load_layers(tmp / name / "snapshots" / f"step_{step:02d}.npz")
                    H, He = torch_hessian(layers, X, Y, kind, p, c)
                    want = np.sort(np.linalg.eigvalsh(H))[::-1]
                    fd = np.sort(np.linalg.eigvalsh(fd_hessian(layers, X, Y, kind, p, c)))[::-1]
                    got = rows[r, [col[f"hessian_eigs.{i}"] for i in range(1, 5)]]
                    scale = abs(want[0])
                    self.assertLess(np.abs(got - want[:4]).max(), 1e-8 * scale, (name, step))
                    self.assertLess(np.abs(got - fd[:4]).max(), 1e-7 * scale, (name, step))
                    self.assertEqual(rows[r, col["sharpness"]], got[0])
                    self.assertEqual(rows[r, col["edge"]], got[0] * lr / 2)
                    e2e = np.linalg.eigvalsh(He).max()
                    self.assertLess(abs(rows[r, col["sharpness_e2e"]] - e2e), 1e-8 * abs(e2e), name)
                    self.assertGreaterEqual(rows[r, col["hessian_products"]], 4)
                    for l, W in enumerate(layers, 1):
                        s = np.linalg.svd(W, compute_uv=False)
                        cols = [col[f"sv.{l}.{i}"] for i in range(1, len(s) + 1)]
                        self.assertLess(np.abs(rows[r, cols] - s).max(), 1e-12 * s[0], name)
                    We = layers[0]
                    for W in layers[1:]:
                        We = W @ We
                    s = np.linalg.svd(We, compute_uv=False)
                    cols = [col[f"sv_e2e.{i}"] for i in range(1, len(s) + 1)]
                    self.assertLess(np.abs(rows[r, cols] - s).max(), 1e-12 * s[0], name)

    def test_warm_starts_thread_counts_and_bad_settings(self):
        """A warm-started record takes fewer products than the first; the numbers do not depend
        on --jobs; a loss with unbounded curvature and bad settings are one-line errors."""
        rng = np.random.default_rng(2)
        with TempDir() as tmp:
            X = rng.standard_normal((3000, 30))
            Y = X @ rng.standard_normal((30, 4))
            np.save(tmp / "X.npy", X)
            np.save(tmp / "Y.npy", Y)
            base = """name = "w"
[data]
source = "npy"
x = "X.npy"
y = "Y.npy"
[model]
widths = [30, 20, 20, 4]
[loss]
{loss}
[optimizer]
lr = 0.01
steps = 200
[record]
every = 20
probes = ["loss", "sharpness", "hessian_products", "edge"]
{extra}"""
            cfg = write_config(tmp / "w.toml", base.format(loss='path = "data"', extra=""))
            runs = []
            for jobs in (1, 2):
                out = run_dln("run", cfg, "--out", tmp / f"j{jobs}", "--jobs", jobs)
                self.assertEqual(out.returncode, 0, out.stderr)
                runs.append((tmp / f"j{jobs}" / "metrics.csv").read_text())
            self.assertEqual(runs[0], runs[1])
            header, rows = read_metrics(tmp / "j1")
            products = rows[:, header.index("hessian_products")]
            self.assertLess(products[1:].mean(), products[0])
            for loss, extra, key in (('kind = "lp"\np = 1.5', "", "record.probes"),
                                     ("", "hessian_k = 0", "record.hessian_k"),
                                     ("", "hessian_tol = 2.0", "record.hessian_tol"),
                                     ("", "hessian_iters = 1000000000", "record.hessian_iters")):
                cfg = write_config(tmp / "e.toml", base.format(loss=loss, extra=extra))
                res = run_dln("run", cfg, "--out", tmp / "e")
                self.assertEqual(res.returncode, 2, res.stderr)
                self.assertEqual(len(res.stderr.strip().splitlines()), 1, res.stderr)
                self.assertIn(key, res.stderr)
                self.assertFalse((tmp / "e").exists())

    def test_a_killed_run_records_the_same_sharpness_after_resuming(self):
        """The warm start is in the checkpoint: a run killed and resumed records the numbers of
        an uninterrupted one, bit for bit."""
        rng = np.random.default_rng(4)
        with TempDir() as tmp:
            X = rng.standard_normal((500, 12))
            np.save(tmp / "X.npy", X)
            np.save(tmp / "Y.npy", X @ rng.standard_normal((12, 3)))
            cfg = write_config(tmp / "k.toml", """name = "k"
[data]
source = "npy"
x = "X.npy"
y = "Y.npy"
[model]
widths = [12, 40, 40, 3]
[optimizer]
lr = 0.01
steps = 6000
[record]
every = 50
checkpoint_every = 50
hessian_k = 3
probes = ["loss", "sharpness", "hessian_eigs", "hessian_products"]
""")
            run_whole_then_killed_and_resumed(self, cfg, tmp)
            self.assertEqual((tmp / "whole" / "metrics.csv").read_text(),
                             (tmp / "cut" / "metrics.csv").read_text())


SANITIZED = os.environ.get("DLN_SANITIZED") in ("1", "ON", "TRUE", "true")


class Reproductions(unittest.TestCase):
    @unittest.skipIf(SANITIZED, "a minute of training 15 nets; the probes' tests run above")
    def test_the_edge_of_stability_reproductions_print_their_claims(self):
        """Both run in seconds; every claim prints the numbers it rests on, and they hold (the
        runs are deterministic: a claim that stops holding is a change of behaviour)."""
        with TempDir() as tmp:
            for name, count in (("eos-linear", 12), ("agd-sharpness", 3)):
                out = run_dln("reproduce", name, "--out", tmp / name, timeout=1500)
                self.assertEqual(out.returncode, 0, out.stderr)
                claims = [l for l in out.stdout.splitlines() if l.startswith("claim:")]
                self.assertEqual(len(claims), count, out.stdout)
                for c in claims:
                    self.assertRegex(c, r"\d\.\d")
                    self.assertTrue(c.endswith("holds"), c)
                figure = name.replace("-", "_") + ".png"
                self.assertTrue((tmp / name / "figures" / figure).is_file())


if __name__ == "__main__":
    unittest.main()
