"""Fonts for Chinese figures: found even when matplotlib's font cache predates them."""

from __future__ import annotations

import copy

import pytest
from matplotlib import font_manager
from matplotlib.figure import Figure

from recoverscore.modelling import plotting
from tests.conftest import no_missing_glyphs


@pytest.fixture()
def stale_font_cache(monkeypatch) -> font_manager.FontManager:
    """matplotlib's font list as it was cached before any CJK font was installed."""
    stale = copy.copy(font_manager.fontManager)
    # whole files are missing from such a cache (a .ttc holds the SC, TC, JP and KR faces)
    cjk_files = {f.fname for f in stale.ttflist if f.name in plotting.CJK_FONTS}
    stale.ttflist = [f for f in stale.ttflist if f.fname not in cjk_files]
    monkeypatch.setattr(font_manager, "fontManager", stale)
    plotting.cjk_font.cache_clear()
    yield stale
    plotting.cjk_font.cache_clear()  # the real font manager answers again


def test_a_font_missing_from_the_cache_is_found_on_disk(stale_font_cache):
    found = plotting.cjk_font()
    assert found in plotting.CJK_FONTS
    assert found in {f.name for f in stale_font_cache.ttflist}


def test_no_cjk_font_anywhere_is_one_warning_and_an_unchanged_figure(stale_font_cache, monkeypatch):
    monkeypatch.setattr(font_manager, "findSystemFonts", lambda *a, **k: [])
    figure = Figure()
    figure.subplots().set_title("回收概率")
    with pytest.warns(UserWarning, match="no CJK font is installed.*fonts-noto-cjk"):
        assert plotting.cjk_font() is None
    before = figure.axes[0].title.get_fontfamily()
    assert plotting.use_language(figure, "zh") is figure
    assert figure.axes[0].title.get_fontfamily() == before


def test_texts_and_later_tick_labels_carry_the_font(tmp_path):
    figure = Figure()
    ax = figure.subplots()
    ax.set_title("按账龄段的回收率")
    ax.set_xticks([0, 1], ["诉讼", "调解"])
    with no_missing_glyphs():
        plotting.use_language(figure, "zh")
        ax.set_xticks([0, 1, 2], ["诉讼", "调解", "支付令"])  # a tick made after
        figure.savefig(tmp_path / "zh.png")
    family = plotting.cjk_font()
    assert ax.title.get_fontfamily()[0] == family
    assert {t.get_fontfamily()[0] for t in ax.get_xticklabels()} == {family}
    english = Figure()
    english.subplots().set_title("recovery")
    assert plotting.use_language(english, "en").axes[0].title.get_fontfamily() == ["sans-serif"]
