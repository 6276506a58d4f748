"""Every chart the workbook draws, one module per subject; matplotlib is imported here and nowhere else.

Lesson modules compute figures; notebooks hand them to a chart. `readable(fig)` is the one house style.
"""

from __future__ import annotations

import matplotlib.pyplot as plt

FONT_SIZE = 9  # readable at notebook width (about 900 px)


def readable(fig):
    """The house style: fonts sized for a notebook at its usual width, tight layout."""
    for ax in fig.axes:
        for item in [ax.title, ax.xaxis.label, ax.yaxis.label, *ax.get_xticklabels(), *ax.get_yticklabels()]:
            item.set_fontsize(max(item.get_fontsize(), FONT_SIZE - 1))
    fig.tight_layout()
    return fig


__all__ = ["plt", "readable"]
