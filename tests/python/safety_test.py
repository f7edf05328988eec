"""dln as a careless or hostile user meets it: it never deletes or overwrites what it did not
write, whatever the name, path or flag; two writers of one directory cannot race; a killed run
leaves nothing that lasts; and hostile files and values are refused with exit status 2 and one
line naming the file or key, before anything large is allocated (docs/safety.md)."""
import gzip
import os
import resource
import signal
import struct
import subprocess
import time
import unittest
import zlib
from pathlib import Path

import numpy as np

from support import DLN, TempDir, run_dln, write_config

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "experiments" / "quickstart.toml"
SANITIZED = os.environ.get("DLN_SANITIZED") == "1"

SMALL = """
name = "{name}"
[data]
source = "synthetic.gaussian_mixture"
samples = 20
[model]
widths = [10, 4, 3]
[optimizer]
lr = 0.01
steps = {steps}
[record]
every = {every}
"""


def small(tmp, name="small", steps=20, every=10, extra=""):
    return write_config(tmp / f"{name}.toml", SMALL.format(name=name, steps=steps, every=every)
                        + extra)


def limited(gib):
    """preexec_fn capping the address space: an allocation beyond it fails (exit 1, not 2)."""
    def apply():
        if not SANITIZED:  # the sanitizers reserve terabytes of address space
            limit = int(gib * (1 << 30))
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    return apply


def run_limited(*args, cwd=None, gib=2.0, env=None, timeout=60):
    return subprocess.run([DLN, *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, preexec_fn=limited(gib),
                          env=None if env is None else {**os.environ, **env})


class Sentinel(unittest.TestCase):
    """In a scratch directory holding a sentinel file, every dangerous spelling of an output
    directory is refused (exit 2) and the sentinel survives."""

    def assert_refused(self, out, *words):
        self.assertEqual(out.returncode, 2, out.stdout + out.stderr)
        lines = out.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, out.stderr)
        for w in words:
            self.assertIn(w, lines[0])

    def test_dot_dotdot_and_foreign_directories_survive_every_command(self):
        with TempDir() as tmp:
            scratch = tmp / "p"
            scratch.mkdir()
            sentinel = scratch / "thesis.tex"
            sentinel.write_text("years of work\n")
            cfg = write_config(scratch / "e.toml", QUICKSTART.read_text().replace(
                '"quickstart"', '".."'))
            dot = write_config(scratch / "dot.toml", QUICKSTART.read_text().replace(
                '"quickstart"', '"."'))
            q = str(QUICKSTART)
            (scratch / "other").mkdir()
            (scratch / "other" / "data.csv").write_text("1,2\n")
            sweep = write_config(scratch / "s.toml", SMALL.format(name="..", steps=5, every=5)
                                 + '[sweep]\n"seed" = [1, 2]\n')
            sweep_ok = write_config(scratch / "t.toml", sweep.read_text().replace('".."', '"ok"'))
            cases = [
                (("run", cfg), ["e.toml", "name", "'..'"]),
                (("run", dot), ["dot.toml", "name", "'.'"]),
                (("run", cfg, "--force"), ["name"]),
                (("sweep", sweep, "--force"), ["name"]),
                (("run", q, "--out", "."), ["--out", "current directory"]),
                (("run", q, "--out", ".", "--force"), ["--out", "current directory"]),
                (("run", q, "--out", "nosuchdir/.."), ["--out", "current directory"]),
                (("run", q, "--out", "..", "--force"), ["--out", "holds the current directory"]),
                (("run", q, "--out", "/"), ["--out", "root"]),
                (("run", q, "--out", "other", "--force"), ["other", "not written by dln"]),
                (("run", q, "--out", "other"), ["other", "not empty"]),
                (("sweep", sweep_ok, "--out", "other", "--force"), ["other", "not written by dln"]),
                (("sweep", sweep_ok, "--out", ".", "--force"), ["current directory"]),
                (("reproduce", "hou-lp-rate", "--out", ".", "--force"), ["current directory"]),
                (("reproduce", "hou-lp-rate", "--out", "other", "--force"), ["not written by dln"]),
            ]
            for args, words in cases:
                with self.subTest(args=args):
                    self.assert_refused(run_dln(*args, cwd=scratch), *words)
                    self.assertEqual(sentinel.read_text(), "years of work\n")
                    self.assertEqual((scratch / "other" / "data.csv").read_text(), "1,2\n")
            self.assertEqual(sorted(p.name for p in scratch.iterdir()),
                             ["dot.toml", "e.toml", "other", "s.toml", "t.toml", "thesis.tex"])

    def test_a_trailing_slash_is_harmless_and_force_replaces_only_a_clean_dln_run(self):
        with TempDir() as tmp:
            (tmp / "thesis.tex").write_text("keep\n")
            cfg = small(tmp)
            first = run_dln("run", cfg, "--out", "fresh/", cwd=tmp)
            self.assertEqual(first.returncode, 0, first.stderr)
            self.assertTrue((tmp / "fresh" / "summary.json").is_file())
            self.assertTrue((tmp / "fresh" / ".dln").is_file())
            again = run_dln("run", cfg, "--out", "fresh/", cwd=tmp)
            self.assertEqual(again.returncode, 2)
            self.assertIn("--force", again.stderr)
            forced = run_dln("run", cfg, "--out", "fresh/", "--force", cwd=tmp)
            self.assertEqual(forced.returncode, 0, forced.stderr)
            self.assertTrue((tmp / "fresh" / "summary.json").is_file())
            # A file the user added inside the run: --force now refuses, and the file stays.
            (tmp / "fresh" / "weights" / "notes.txt").write_text("mine\n")
            refused = run_dln("run", cfg, "--out", "fresh", "--force", cwd=tmp)
            self.assertEqual(refused.returncode, 2)
            self.assertIn("weights/notes.txt", refused.stderr)
            self.assertEqual((tmp / "fresh" / "weights" / "notes.txt").read_text(), "mine\n")
            # Figures drawn by dln plot are dln's: --force may replace a plotted run.
            (tmp / "fresh" / "weights" / "notes.txt").unlink()
            self.assertEqual(run_dln("plot", tmp / "fresh").returncode, 0)
            self.assertEqual(run_dln("run", cfg, "--out", "fresh", "--force", cwd=tmp).returncode, 0)
            self.assertEqual((tmp / "thesis.tex").read_text(), "keep\n")
            left = sorted(p.name for p in tmp.iterdir())
            self.assertEqual(left, ["fresh", "small.toml", "thesis.tex"])

    def test_plot_never_replaces_a_figure_it_did_not_draw(self):
        with TempDir() as tmp:
            cfg = small(tmp)
            self.assertEqual(run_dln("run", cfg, "--out", tmp / "r").returncode, 0)
            (tmp / "r" / "figures").mkdir()
            (tmp / "r" / "figures" / "loss.png").write_bytes(b"my own figure")
            out = run_dln("plot", tmp / "r")
            self.assertEqual(out.returncode, 2, out.stderr)
            self.assertIn("loss.png", out.stderr)
            self.assertEqual((tmp / "r" / "figures" / "loss.png").read_bytes(), b"my own figure")


class Writers(unittest.TestCase):
    def start_long_run(self, tmp, out, *extra):
        """A long run, returned once its staging directory exists: out.partial (a run that
        keeps checkpoints, the default) or out.tmp-PID (record.checkpoint_every = 0)."""
        cfg = small(tmp, "long", steps=50_000_000, every=1_000_000)
        proc = subprocess.Popen([DLN, "run", str(cfg), "--out", str(out), *extra],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 30
        while time.time() < deadline and not (list(tmp.glob("out.tmp-*")) or
                                               (tmp / "out.partial").exists()):
            time.sleep(0.01)
        return proc

    def test_a_second_writer_of_the_same_directory_fails_at_once(self):
        with TempDir() as tmp:
            proc = self.start_long_run(tmp, tmp / "out")
            try:
                second = run_dln("run", small(tmp), "--out", tmp / "out", "--force")
                self.assertEqual(second.returncode, 2, second.stderr)
                self.assertIn("another dln process is writing it", second.stderr)
            finally:
                proc.kill()
                proc.wait()

    def test_a_killed_writer_leaves_staging_that_the_next_run_removes(self):
        # Without checkpoints the staging is out.tmp-PID; with them (the default) out.partial,
        # which the next run resumes when it holds a checkpoint of the same run, and otherwise
        # replaces (a partial directory that is not dln's is refused, not touched).
        for extra, left in ((["--set", "record.checkpoint_every=0"], "out.tmp-*"),
                            ([], "out.partial")):
            with TempDir() as tmp:
                proc = self.start_long_run(tmp, tmp / "out", *extra)
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                self.assertEqual(len(list(tmp.glob(left))), 1, left)
                (tmp / "out.tmp-123").mkdir()  # the user's, by an unlucky name: kept
                out = run_dln("run", small(tmp), "--out", tmp / "out")
                self.assertEqual(out.returncode, 0, out.stderr)
                self.assertEqual(sorted(p.name for p in tmp.iterdir()
                                        if p.name.startswith(("out", ".out"))),
                                 ["out", "out.tmp-123"])
            with TempDir() as tmp:
                (tmp / "out.partial").mkdir()
                (tmp / "out.partial" / "notes.txt").write_text("mine")
                out = run_dln("run", small(tmp), "--out", tmp / "out")
                self.assertEqual(out.returncode, 2, out.stderr)
                self.assertEqual((tmp / "out.partial" / "notes.txt").read_text(), "mine")

    def test_a_torn_summary_in_a_partial_sweep_is_redone(self):
        with TempDir() as tmp:
            cfg = small(tmp, "sw", steps=300_000, every=100_000,
                        extra='[sweep]\n"optimizer.lr" = [1e-3, 2e-3, 3e-3, 4e-3, 5e-3, 6e-3]\n')
            whole = run_dln("sweep", cfg, "--out", tmp / "whole", "--jobs", "1")
            self.assertEqual(whole.returncode, 0, whole.stderr)
            proc = subprocess.Popen([DLN, "sweep", str(cfg), "--out", str(tmp / "cut"), "--jobs",
                                     "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            partial = tmp / "cut.partial"
            deadline = time.time() + 60
            while time.time() < deadline and proc.poll() is None:
                if len(list(partial.glob("*/summary.json"))) >= 2:
                    break
                time.sleep(0.005)
            proc.kill()
            proc.wait()
            finished = sorted(partial.glob("*/summary.json"))
            self.assertGreaterEqual(len(finished), 2)
            self.assertLess(len(finished), 6, "the sweep ended before it could be interrupted")
            text = finished[0].read_text()
            finished[0].write_text(text[: len(text) // 2])  # torn, as by a crash mid-write
            resumed = run_dln("sweep", cfg, "--out", tmp / "cut", "--jobs", "1")
            self.assertEqual(resumed.returncode, 0, resumed.stderr)
            self.assertIn(f"{len(finished) - 1} of them finished before an interruption",
                          resumed.stdout)
            self.assertEqual((tmp / "cut" / "runs.csv").read_text(),
                             (tmp / "whole" / "runs.csv").read_text())


def npz_bytes(**arrays):
    import io
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return bytearray(buf.getvalue())


class HostileFiles(unittest.TestCase):
    """Every hostile file: exit 2, one line naming it, under an address-space cap far below what
    the file claims (an allocation of its claimed size would fail with exit 1)."""

    def refuse(self, tmp, data_toml, words, files=(), gib=2.0, env=None, widths="[1, 1]"):
        for name, content in files:
            (tmp / name).write_bytes(bytes(content))
        cfg = write_config(tmp / "h.toml", f"""
name = "h"
[data]
{data_toml}
[model]
widths = {widths}
[optimizer]
lr = 0.01
steps = 5
""")
        start = time.time()
        out = run_limited("run", cfg, "--out", tmp / "out", gib=gib, env=env, timeout=120)
        self.assertEqual(out.returncode, 2, out.stdout + out.stderr)
        lines = out.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, out.stderr)
        for w in ["h.toml:", *words]:
            self.assertIn(w, lines[0])
        self.assertFalse((tmp / "out").exists())
        self.assertEqual(list(tmp.glob("out.*")), [])
        return time.time() - start

    def test_libsvm_indices_beyond_what_a_matrix_holds(self):
        with TempDir() as tmp:
            self.refuse(tmp, 'source = "libsvm"\npath = "a.svm"',
                        ["data.path", "a.svm:1", "18446744073709551615", "larger than"],
                        files=[("a.svm", b"1 1:1 18446744073709551615:1\n")])
            self.refuse(tmp, 'source = "libsvm"\npath = "b.svm"',
                        ["data.path", "b.svm", "500000000 x 1", "memory budget"],
                        files=[("b.svm", b"1 500000000:1\n")])

    def test_truncated_and_corrupt_gzip_is_refused(self):
        with TempDir() as tmp:
            text = "a,b,y\n" + "".join(f"{i},{2 * i},{i % 3}\n" for i in range(3000))
            whole = gzip.compress(text.encode())
            self.refuse(tmp, 'source = "csv"\npath = "cut.csv.gz"\ntarget_columns = ["y"]',
                        ["data.path", "cut.csv.gz", "truncated gzip"],
                        files=[("cut.csv.gz", whole[: len(whole) // 2])], widths="[2, 1]")
            bad = bytearray(whole)
            bad[len(bad) // 2] ^= 0xFF
            self.refuse(tmp, 'source = "csv"\npath = "bad.csv.gz"\ntarget_columns = ["y"]',
                        ["data.path", "bad.csv.gz", "gzip"], files=[("bad.csv.gz", bad)],
                        widths="[2, 1]")
            svm = gzip.compress("".join(f"{i} 1:{i}\n" for i in range(5000)).encode())
            self.refuse(tmp, 'source = "libsvm"\npath = "cut.svm.gz"',
                        ["data.path", "cut.svm.gz", "truncated gzip"],
                        files=[("cut.svm.gz", svm[: len(svm) - 12])])

    def test_a_gzip_bomb_stops_at_the_memory_budget(self):
        with TempDir() as tmp:
            c = zlib.compressobj(9, zlib.DEFLATED, 31)
            bomb = b"".join(c.compress(b"0" * (1 << 22)) for _ in range(128)) + c.flush()
            self.assertLess(len(bomb), 1 << 20)  # 1 KiB compresses 512 MiB
            seconds = self.refuse(tmp, 'source = "csv"\npath = "bomb.csv.gz"\ntarget_columns = ["y"]',
                                  ["data.path", "bomb.csv.gz", "memory budget of 64 MiB"],
                                  files=[("bomb.csv.gz", bomb)], env={"DLN_MEMORY_BUDGET": "64M"},
                                  gib=1.0, widths="[2, 1]")
            self.assertLess(seconds, 30)

    def test_npy_headers_and_shapes_that_lie(self):
        with TempDir() as tmp:
            hdr = "{'descr': '<f8', 'fortran_order': False, 'shape': (%s), }"

            def npy(shape, payload=b"\0" * 64):
                h = (hdr % shape).ljust(118) + "\n"
                return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h.encode() + payload

            np.save(tmp / "Y.npy", np.zeros((4, 1)))
            cases = [
                (b"\x93NUMPY\x02\x00" + struct.pack("<I", 0xFFFFFFFF) + b"x", "header claims"),
                (npy("4294967296, 4294967296, 16"), "too large"),
                (npy("0, 1676440368878592546"), "too large"),
                (npy("18446744073709551615, 2"), "too large"),
                (npy("99999999999999999999999, 2"), "too large"),
                (npy("1000000000, 4"), "truncated"),
                (b"\x93NUMPY\x01\x00\xff\xff", "truncated .npy header"),
            ]
            for content, words in cases:
                with self.subTest(words=words):
                    self.refuse(tmp, 'source = "npy"\nx = "X.npy"\ny = "Y.npy"',
                                ["data.x", "X.npy", words], files=[("X.npy", content)])

    def test_npz_members_whose_sizes_lie(self):
        with TempDir() as tmp:
            good = npz_bytes(X=np.random.rand(50, 3), Y=np.random.rand(50, 1))
            central = good.find(b"PK\x01\x02")
            claims = bytearray(good)
            claims[central + 24:central + 28] = struct.pack("<I", 0xFFFFFFFE)
            offset = bytearray(good)
            offset[central + 42:central + 46] = struct.pack("<I", 0xFFFFFFF0)
            entries = bytearray(good)
            eocd = entries.rfind(b"PK\x05\x06")
            entries[eocd + 10:eocd + 12] = struct.pack("<H", 0xFFFF)
            entries[eocd + 16:eocd + 20] = struct.pack("<I", 0xFFFFFFFF)
            # A zip64 extra field whose 64-bit sizes wrap around (2^64 - 1 compressed bytes).
            member = b"X.npy"
            local = (struct.pack("<IHHHHHIIIHH", 0x04034b50, 45, 0, 0, 0, 0, 0, 0xFFFFFFFF,
                                 0xFFFFFFFF, len(member), 0) + member + b"\0" * 16)
            extra = struct.pack("<HHQQ", 1, 16, 2**64 - 2, 2**64 - 1)
            central = (struct.pack("<IHHHHHHIIIHHHHHII", 0x02014b50, 45, 45, 0, 0, 0, 0, 0,
                                   0xFFFFFFFF, 0xFFFFFFFF, len(member), len(extra), 0, 0, 0, 0, 0)
                       + member + extra)
            eocd = struct.pack("<IHHHHIIH", 0x06054b50, 0, 0, 1, 1, len(central), len(local), 0)
            wrap = local + central + eocd
            for name, content, words in [("claims.npz", claims, "more than deflate can produce"),
                                         ("wrap.npz", wrap, "truncated"),
                                         ("offset.npz", offset, "truncated"),
                                         ("entries.npz", entries, "not a valid .npz")]:
                with self.subTest(name=name):
                    self.refuse(tmp, f'source = "npz"\npath = "{name}"', ["data.path", name, words],
                                files=[(name, content)], widths="[3, 1]")

    def test_devices_fifos_and_directories_are_refused_by_name(self):
        with TempDir() as tmp:
            os.mkfifo(tmp / "fifo")
            (tmp / "folder").mkdir()
            np.save(tmp / "Y.npy", np.zeros((4, 1)))
            for source, key in [('source = "npy"\nx = "{p}"\ny = "Y.npy"', "data.x"),
                                ('source = "csv"\npath = "{p}"\ntarget_columns = ["y"]', "data.path"),
                                ('source = "libsvm"\npath = "{p}"', "data.path"),
                                ('source = "npz"\npath = "{p}"', "data.path")]:
                for path, what in [("/dev/zero", "a device"), ("fifo", "FIFO"),
                                   ("folder", "a directory")]:
                    with self.subTest(source=source, path=path):
                        self.refuse(tmp, source.format(p=path), [key, what, "regular files only"])
            out = run_dln("run", "/dev/zero")
            self.assertEqual(out.returncode, 2)
            self.assertIn("/dev/zero: is a device", out.stderr)

    def test_idx_dimensions_whose_product_overflows(self):
        with TempDir() as tmp:
            head = bytes([0, 0, 8, 3]) + struct.pack(">III", 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF)
            labels = bytes([0, 0, 8, 1]) + struct.pack(">I", 2) + bytes([0, 1])
            self.refuse(tmp, 'source = "idx"\npath = "i.idx"\nlabel_path = "l.idx"',
                        ["data.path", "i.idx", "IDX size mismatch"],
                        files=[("i.idx", head + b"\0" * 16), ("l.idx", labels)])


class HostileValues(unittest.TestCase):
    def refuse(self, args, words, gib=2.0):
        out = run_limited(*args, gib=gib)
        self.assertEqual(out.returncode, 2, out.stdout + out.stderr)
        lines = out.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, out.stderr)
        for w in words:
            self.assertIn(w, lines[0])

    def test_integers_are_range_checked_in_64_bits_and_sizes_against_the_budget(self):
        with TempDir() as tmp:
            q = str(QUICKSTART)
            cases = [
                ("model.widths=[10,4294967296,3]", ["model.widths", "4294967296"]),
                ("model.widths=[4294967299,3]", ["model.widths", "4294967299"]),
                ("model.widths=[10,2147483647,3]", ["model.widths", "memory budget"]),
                ("model.widths=[10,1000000000,3]", ["model.widths", "memory budget"]),
                ("data.dim=100000", ["data.dim", "memory budget"]),
                ("data.samples=4294967297", ["data.samples", "4294967297"]),
                ("record.eigs=4294967296", ["record.eigs"]),
                ("record.slope_window=4294967296", ["record.slope_window"]),
                ("optimizer.steps=-1", ["optimizer.steps"]),
                ("record.every=1152921504606846977", ["record.every"]),
                ("seed=-1", ["seed"]),
            ]
            for setting, words in cases:
                with self.subTest(setting=setting):
                    self.refuse(("run", q, "--set", setting, "--out", tmp / "x"), words)
            self.refuse(("run", q, "--set", "optimizer.kind=e2e", "--set",
                         "optimizer.depth=4294967296", "--out", tmp / "x"), ["optimizer.depth"])
            flow = write_config(tmp / "flow.toml", QUICKSTART.read_text().replace(
                'kind = "gd"', 'kind = "flow"').replace("steps = 1000", "time = 1.0").replace(
                "lr = 0.002", ""))
            self.refuse(("run", flow, "--set", "record.every=1e-300", "--out", tmp / "x"),
                        ["record.every", "records"])
            self.assertFalse((tmp / "x").exists())

    def test_a_sweep_too_large_is_refused_before_it_is_expanded(self):
        with TempDir() as tmp:
            axis = ", ".join(str(i) for i in range(100000))
            cfg = write_config(tmp / "s.toml", QUICKSTART.read_text() +
                               f'[sweep]\n"seed" = [{axis}]\n"init.seed" = [{axis}]\n')
            start = time.time()
            self.refuse(("sweep", cfg, "--out", tmp / "s"), ["s.toml", "sweep.",
                                                              "1000000 points"], gib=1.0)
            self.assertLess(time.time() - start, 20)

    def test_every_message_is_one_line(self):
        with TempDir() as tmp:
            cfg = write_config(tmp / "t.toml", "a = t\n")
            self.refuse(("run", cfg), ["t.toml:1", "malformed TOML"])
            self.refuse(("run", QUICKSTART, "--jobs", "0"), ["--jobs", "from 1 to 1024"])
            self.refuse(("sweep", QUICKSTART, "--jobs", "9" * 300), ["--jobs"])
            self.refuse(("run", QUICKSTART, "--bogus"), ["--bogus"])


if __name__ == "__main__":
    unittest.main()
