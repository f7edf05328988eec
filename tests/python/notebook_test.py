"""examples/quickstart.ipynb runs from top to bottom (nbclient, a fresh kernel) and makes its
figure and its balancedness check."""
import os
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]


def test_the_quickstart_notebook_runs(tmp_path):
    nb = nbformat.read(ROOT / "examples" / "quickstart.ipynb", as_version=4)
    # The kernel is this interpreter (Debian's), with the same dln on its path.
    os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
    NotebookClient(nb, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "the figure is shown"
    printed = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "from the weights:" in printed and "recorded:" in printed
