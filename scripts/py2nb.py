"""Turn a percent-format script (`# %%` code cells, `# %% [markdown]` text cells) into a clean notebook.

Notebooks are the source of truth; this is only a convenience for drafting them in a text editor:
    python scripts/py2nb.py draft.py notebooks/00_how_temporal_runs_your_code.ipynb
"""

import re
import sys

import nbformat


def convert(text: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for chunk in re.split(r"^# %%", text, flags=re.M)[1:]:
        header, _, body = chunk.partition("\n")
        body = body.strip("\n")
        if "[markdown]" in header:
            lines = [re.sub(r"^# ?", "", line) for line in body.splitlines()]
            nb.cells.append(nbformat.v4.new_markdown_cell("\n".join(lines)))
        else:
            nb.cells.append(nbformat.v4.new_code_cell(body))
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:02d}"
    return nb


if __name__ == "__main__":
    source, target = sys.argv[1], sys.argv[2]
    nbformat.write(convert(open(source).read()), target)
