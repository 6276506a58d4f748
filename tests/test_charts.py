"""The house style of every chart: fonts a reader can read once the notebook has shrunk the figure to its width."""

from __future__ import annotations

import ast
from pathlib import Path

from tutorial import charts
from tutorial.charts import plt, readable, shown_size

CHARTS = Path(charts.__file__).parent


def smallest_shown(fig) -> float:
    fig.canvas.draw()  # ticks and legends exist for sure once drawn
    return min(shown_size(fig, t) for t in fig.findobj(charts.Text) if t.get_text() and t.get_visible())


def busy_figure(width: float):
    fig, ax = plt.subplots(figsize=(width, 3))
    ax.plot(range(30), label="a line")
    ax.annotate("a note", (3, 3), fontsize=6)
    ax.set_xticks(range(0, 30, 5), [str(i) for i in range(0, 30, 5)], fontsize=7)
    ax.legend(fontsize=6)
    ax.set_title("title", fontsize=7)
    return fig


def test_every_text_of_a_wide_figure_reads_at_notebook_width():
    for width in (6, 10, 17):
        fig = readable(busy_figure(width))
        assert smallest_shown(fig) >= charts.FONT_SIZE - 1, width
        plt.close(fig)


def test_counterfactual_a_wide_figure_without_the_style_has_tiny_text():
    fig = busy_figure(17)
    assert smallest_shown(fig) < 4  # a 6-point note on a 17-inch figure shows at 3.2 points
    plt.close(fig)


def test_every_chart_function_returns_through_the_house_style():
    missing = []
    for path in CHARTS.glob("*.py"):
        if path.name == "__init__.py":
            continue
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_") and "subplots" in ast.unparse(node):
                returns = [r for r in ast.walk(node) if isinstance(r, ast.Return)]
                if not any("readable(" in ast.unparse(r) for r in returns):
                    missing.append(f"{path.name}:{node.name}")
    assert not missing, missing
