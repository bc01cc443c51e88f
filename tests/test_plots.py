import warnings

import matplotlib
import matplotlib.pyplot as plt
import pytest

from analysis import plots, report


def _glyph_warnings(make):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fig = make()
        fig.canvas.draw()
        plt.close(fig)
    return [w for w in caught if "missing from font" in str(w.message)]


def test_japanese_renders_without_missing_glyphs():
    rep = report.fiscal_year_report("sample", 2025)
    for key, make in rep.figures.items():
        assert _glyph_warnings(make) == [], key
    trend = report.trends_report("sample")
    assert _glyph_warnings(trend.figures["share_trend"]) == []


def test_the_check_would_catch_a_font_without_kanji():
    # Control: the same kind of figure with a Latin-only font does warn, so the test above can fail.
    with matplotlib.rc_context({"font.family": ["DejaVu Sans"]}):

        def make():
            fig, ax = plt.subplots()
            ax.set_title("重層的支援体制整備事業")
            return fig

        assert _glyph_warnings(make)


def test_figures_are_deterministic():
    a = report.fiscal_year_report("sample", 2024)
    b = report.fiscal_year_report("sample", 2024)
    for key in a.figures:
        assert a.figure_png(key) == b.figure_png(key)


def test_palette_is_okabe_ito():
    assert plots.OKABE_ITO[:3] == ["#0072B2", "#E69F00", "#009E73"]


@pytest.mark.parametrize("key", ["main_items", "support", "items_heatmap"])
def test_every_figure_has_japanese_alt_text(key):
    rep = report.fiscal_year_report("sample", 2025)
    assert "令和7年度" in rep.figure_alts[key]


def _pngs(reports) -> dict[str, bytes]:
    """Every figure of the reports drawn afresh (a new Figure, so nothing cached on it)."""
    return {
        f"{i}:{name}": report.Figure(name, "", spec=make).png
        for i, rep in enumerate(reports)
        for name, make in rep.figures.items()
    }


def test_speed_ups_leave_every_png_byte_identical(monkeypatch):
    # plots.setup() shares text extents between Agg renderers, and the heatmap skips seaborn's
    # overlap-check render; drawn without either, every PNG must have the same bytes.
    import contextlib

    import matplotlib.text as mtext

    reps = [report.fiscal_year_report("sample", y) for y in (2021, 2025)] + [report.trends_report("sample")]
    shared = mtext._get_text_metrics_function
    assert getattr(shared, "_analysis_shared", False), "plots.setup() installed the shared text cache"
    fast = _pngs(reps)
    monkeypatch.setattr(mtext, "_get_text_metrics_function", shared._analysis_original)
    monkeypatch.setattr(plots, "_no_overlap_check_draw", contextlib.nullcontext)
    plain = _pngs(reps)
    assert len(fast) >= 9 and fast.keys() == plain.keys()
    assert [k for k in fast if fast[k] != plain[k]] == []


def test_shared_text_cache_is_installed_once():
    import matplotlib.text as mtext

    plots.setup()
    first = mtext._get_text_metrics_function
    plots.setup()
    assert mtext._get_text_metrics_function is first
    assert not getattr(first._analysis_original, "_analysis_shared", False)


def test_shared_text_cache_does_not_reuse_extents_measured_under_other_text_settings(monkeypatch):
    # extents measured under one hinting are not reused under another (a notebook that changes
    # rcParams, or a kept kernel's later notebook after the reset restored them): the PNG is the
    # one matplotlib's own per-renderer cache gives
    import io

    import matplotlib
    import matplotlib.pyplot as plt
    import matplotlib.text as mtext

    plots.setup()
    shared = mtext._get_text_metrics_function

    def draw() -> bytes:
        fig, ax = plt.subplots(figsize=(4, 2))
        ax.set_title("指針の主要項目の実施率（令和7年度）")
        ax.set_yticks([0, 1, 2], ["相談支援体制の整備", "見守りネットワーク", "就労支援"])
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=150, bbox_inches="tight", metadata={"Software": None})
        plots.close(fig)
        return buf.getvalue()

    themed = draw()  # measured under the theme's hinting
    with matplotlib.rc_context({"text.hinting": "no_hinting"}):
        fast = draw()
        monkeypatch.setattr(mtext, "_get_text_metrics_function", shared._analysis_original)
        plain = draw()
    assert plain != themed  # the hinting changes the extents, so a stale cache would show
    assert fast == plain
