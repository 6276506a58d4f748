"""Write each notebook's navigation from the notebooks' own titles; `--check` fails when any has drifted.

A notebook's title is its first line, `# NN · Short title: what it is about`. From the titles this writes:
- in the first cell, the paragraph that starts with `**Contents**`: every numbered notebook, this one in bold;
- at the end of the last cell, the paragraph that starts with `**Next:**`: a link to the next notebook with
  what it is about, and a link back to the previous one.
Run it after adding, renaming or retitling a notebook:
    .venv/bin/python scripts/navigation.py            # rewrite
    .venv/bin/python scripts/navigation.py --check    # exit 1 and name the notebooks that differ
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

import nbformat

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
TITLE = re.compile(r"^# (\d\d) · ([^:\n]+?)(?::\s*(.+))?$")


@dataclass(frozen=True)
class Entry:
    path: Path
    number: str
    short: str  # "Signals and queries"
    about: str  # "the workflow is the entity" (may be empty)

    @property
    def label(self) -> str:
        return f"{self.number} · {self.short}"


def entries(folder: Path = NOTEBOOKS) -> list[Entry]:
    """The numbered notebooks in order, read from their titles."""
    found = []
    for path in sorted(folder.glob("[0-9][0-9]_*.ipynb")):
        first = nbformat.read(path, as_version=4).cells[0].source.splitlines()[0]
        match = TITLE.match(first)
        if not match:
            raise SystemExit(f"{path.name}: the first line must read '# NN · Short title: what it is about', "
                             f"not {first!r}")
        found.append(Entry(path, match.group(1), match.group(2).strip(), (match.group(3) or "").strip()))
    return found


def contents(all_: list[Entry], here: Entry) -> str:
    parts = [f"**{e.label}**" if e == here else f"[{e.label}]({e.path.name})" for e in all_]
    return "**Contents** · " + " · ".join(parts)


def footer(all_: list[Entry], here: Entry) -> str:
    i = all_.index(here)
    if i + 1 < len(all_):
        after = all_[i + 1]
        text = f"**Next:** [{after.label} →]({after.path.name})" + (f": {after.about}." if after.about else ".")
    else:
        text = f"**Next:** back to [{all_[0].label}]({all_[0].path.name}), the start."
    if i > 0:
        before = all_[i - 1]
        text += f" **Previous:** [← {before.label}]({before.path.name})."
    return text


def _replace_paragraph(source: str, start: str, new: str, *, last: bool) -> str:
    """Replace the paragraph beginning with `start` (up to the next blank line, or the end) with `new`."""
    paragraphs = source.split("\n\n")
    hits = [i for i, p in enumerate(paragraphs) if p.lstrip().startswith(start)]
    if not hits:
        if last:  # no footer yet: add one
            return source.rstrip("\n") + "\n\n" + new
        raise ValueError(f"no paragraph starting with {start!r}")
    paragraphs[hits[-1] if last else hits[0]] = new
    return "\n\n".join(paragraphs)


def render(entry: Entry, all_: list[Entry]):
    nb = nbformat.read(entry.path, as_version=4)
    first, final = nb.cells[0], nb.cells[-1]
    first.source = _replace_paragraph(first.source, "**Contents**", contents(all_, entry), last=False)
    final.source = _replace_paragraph(final.source, "**Next:**", footer(all_, entry), last=True)
    return nb


def drifted(folder: Path = NOTEBOOKS, *, write: bool = False) -> list[str]:
    """Names of the notebooks whose navigation differs from what their titles give (rewritten if `write`)."""
    all_ = entries(folder)
    found = []
    for entry in all_:
        new = render(entry, all_)
        old = nbformat.read(entry.path, as_version=4)
        if [c.source for c in new.cells] != [c.source for c in old.cells]:
            found.append(entry.path.name)
            if write:
                nbformat.write(new, entry.path)
    return found


def main(argv: list[str]) -> int:
    check = "--check" in argv
    found = drifted(write=not check)
    if check and found:
        print("navigation out of date in: " + ", ".join(found) + " (run scripts/navigation.py)")
        return 1
    print(("rewrote: " + ", ".join(found)) if found else "navigation up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
