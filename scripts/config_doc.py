"""Writes the key tables of docs/config.md from the schema that `dln list config` prints, so
the reference cannot drift from the code (a test compares them).

Usage: /usr/bin/python3 scripts/config_doc.py DLN_BINARY [--check]
Replaces the text between the markers <!-- keys:begin --> and <!-- keys:end -->; with
--check, exits 1 if the file is not up to date instead.
"""
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "config.md"
BEGIN, END = "<!-- keys:begin -->", "<!-- keys:end -->"
TITLES = {"": "Top level", "data": "[data]", "model": "[model]", "init": "[init]",
          "loss": "[loss]", "optimizer": "[optimizer]", "record": "[record]", "stop": "[stop]"}


def tables(dln):
    out = subprocess.run([dln, "list", "config"], capture_output=True, text=True, check=True)
    sections = {}
    for line in out.stdout.splitlines():
        key, kind, default, when, doc = line.split("\t")
        section = key.split(".")[0] if "." in key else ""
        sections.setdefault(section, []).append((key, kind, default, when, doc))
    text = []
    for section, rows in sections.items():
        text += [f"### {TITLES.get(section, section)}", "",
                 "| key | type | default | applies when | meaning |", "| --- | --- | --- | --- | --- |"]
        for key, kind, default, when, doc in rows:
            when = "`" + when.replace("|", "\\|") + "`" if when else "always"
            default = default.replace("|", "\\|")
            doc = doc.replace("|", "\\|").replace("<", "&lt;")
            text.append(f"| `{key}` | {kind} | {default} | {when} | {doc} |")
        text.append("")
    return "\n".join(text)


def main():
    dln, check = sys.argv[1], "--check" in sys.argv
    doc = DOC.read_text()
    head, rest = doc.split(BEGIN)
    _, tail = rest.split(END)
    new = f"{head}{BEGIN}\n{tables(dln)}{END}{tail}"
    if check:
        if new != doc:
            print(f"{DOC.name} is out of date: run scripts/config_doc.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
