"""Figures that render in Chinese: a CJK font on each figure's own texts.

Matplotlib picks a text's font when the text is drawn, from the text's own font properties.
Setting the font through ``rcParams`` (or an ``rc_context`` around building the figure) only
reaches texts created under it, and tick labels are made again when the figure is drawn: a
notebook's display or a later ``savefig`` then falls back to DejaVu Sans, which has no CJK
glyphs, and draws empty boxes. So ``use_language`` sets the font family on every text the
figure holds and on its axes' tick labels, and the figure renders the same wherever it is drawn.

Matplotlib also caches the list of installed fonts (``fontlist-*.json`` in its cache folder):
a CJK font installed after that cache was written is invisible to it. ``cjk_font`` registers the
system font files the cache does not list before giving up, without touching the cache file.
"""

from __future__ import annotations

import warnings
from functools import cache

from matplotlib import font_manager
from matplotlib.figure import Figure
from matplotlib.text import Text

CJK_FONTS = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "Microsoft YaHei",
    "SimHei",
    "PingFang SC",
    "Heiti SC",
    "Arial Unicode MS",
)
"""Fonts with simplified Chinese glyphs, the first installed one is used."""


def _installed_cjk() -> str | None:
    installed = {font.name for font in font_manager.fontManager.ttflist}
    return next((name for name in CJK_FONTS if name in installed), None)


@cache
def cjk_font() -> str | None:
    """The family of an installed CJK font, or ``None`` (with a warning) when there is none.

    Font files on the system that matplotlib's cached font list misses (installed after the
    cache was written) are registered first, so a freshly installed font is found.
    """
    found = _installed_cjk()
    if found is None:
        known = {font.fname for font in font_manager.fontManager.ttflist}
        for path in font_manager.findSystemFonts():
            if path not in known:
                try:
                    font_manager.fontManager.addfont(path)
                except (OSError, RuntimeError, ValueError):  # not a font FreeType can read
                    continue
        found = _installed_cjk()
    if found is None:
        warnings.warn(
            "no CJK font is installed (e.g. Noto Sans CJK SC, Debian package fonts-noto-cjk): "
            "Chinese plot labels will not render; use language='en' or install one",
            UserWarning,
            stacklevel=3,
        )
    return found


def use_language(figure: Figure, language: str) -> Figure:
    """``figure`` with fonts that have ``language``'s glyphs on all its texts; returned as is
    for English. Call it once the figure's texts are set; tick labels made later follow too."""
    if language != "zh":
        return figure
    family = cjk_font()
    if family is None:
        return figure
    families = [family, "DejaVu Sans"]  # matplotlib's own font for any glyph the first lacks
    for text in figure.findobj(Text):
        text.set_fontfamily(families)
    for ax in figure.axes:
        ax.tick_params(labelfontfamily=families)
    return figure


def figure_name(name: str, language: str) -> str:
    """Where a plot in ``language`` is kept beside the English one: ``zh/<name>``."""
    return name if language == "en" else f"{language}/{name}"
