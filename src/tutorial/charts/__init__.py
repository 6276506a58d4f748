"""Every chart the workbook draws, one module per subject; matplotlib is imported here and nowhere else.

Lesson modules compute figures; notebooks hand them to a chart. `readable(fig)` is the one house style.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.text import Text

FONT_SIZE = 9  # readable at notebook width (about 900 px)
NOTEBOOK_WIDTH_IN = 9.0  # a notebook's output area at matplotlib's 100 dpi: a wider figure is shrunk to fit it


def shown_size(fig, text: Text) -> float:
    """The font size a reader sees once the notebook has shrunk the figure to its width (points)."""
    return text.get_fontsize() * min(1.0, NOTEBOOK_WIDTH_IN / fig.get_figwidth())


def readable(fig):
    """The house style: every text (titles, labels, ticks, legends, annotations) at least FONT_SIZE - 1 points
    as shown at notebook width, so a wide figure gets larger fonts; tight layout."""
    smallest = (FONT_SIZE - 1) / min(1.0, NOTEBOOK_WIDTH_IN / fig.get_figwidth())
    for ax in fig.axes:  # ticks made later (at draw time) take the axis' label size, not a label's own
        for axis in ("x", "y"):
            size = getattr(ax, f"{axis}axis").get_ticklabels()[:1]
            ax.tick_params(axis=axis, labelsize=max(size[0].get_fontsize() if size else 0, smallest))
    for text in fig.findobj(Text):
        if text.get_text():
            text.set_fontsize(max(text.get_fontsize(), smallest))
    fig.tight_layout()
    return fig


__all__ = ["plt", "readable", "shown_size"]
