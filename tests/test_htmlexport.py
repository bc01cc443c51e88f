"""Tests for analysis.htmlexport (offline, deterministic Japanese HTML reports)."""

from __future__ import annotations

import base64
import os
import re
import stat
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from analysis.htmlexport import (
    FICTIONAL_DATA_BANNER_JA,
    WIDE_TABLE_COLUMNS,
    OfflineHTMLError,
    find_offline_violations,
    notebook_to_html,
    wrap_tables,
    write_text_atomic,
)

# 1x1 transparent PNG
TINY_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)

CODE_MARKER = "CODE_MARKER_SHOULD_NOT_APPEAR_42"
REMOVED_MARKER = "REMOVED_CELL_OUTPUT_77"
SCRIPT_INJECTION = "<script>alert(1)</script>"
IMG_INJECTION = "<img src=x onerror=alert(1)>"
TITLE = '評価レポート <b>FY2025</b> & "引用"'

KERNEL = {"name": "python3", "display_name": "Python 3", "language": "python"}

# src=/href= pointing at http(s) or protocol-relative URLs on anything that is
# not a plain <a> hyperlink.
EXTERNAL_RESOURCE_RE = re.compile(
    r"<(?!a\b)[a-z][a-z0-9]*\b[^>]*\b(?:src|href|data|poster)\s*=\s*[\"']?\s*(?:https?:)?//",
    re.IGNORECASE,
)


def _body(html: str) -> str:
    return html[html.index("<body") :]


def _build_notebook(tmp: Path) -> nbformat.NotebookNode:
    (tmp / "figures").mkdir(exist_ok=True)
    (tmp / "figures" / "logo.png").write_bytes(TINY_PNG)
    remove_cell = new_code_cell(f"print('{REMOVED_MARKER}')")
    remove_cell.metadata["tags"] = ["remove-cell"]
    return new_notebook(
        cells=[
            new_markdown_cell(
                "# 評価レポート\n\n"
                "本文です。[厚生労働省](https://www.mhlw.go.jp/) を参照。\n\n"
                "![ロゴ](figures/logo.png)\n\n"
                "| 市町 | 値 |\n|---|---|\n| A町 | 1 |\n"
            ),
            new_code_cell(
                f"%matplotlib inline\nimport matplotlib.pyplot as plt\nimport pandas as pd\n{CODE_MARKER} = 1"
            ),
            new_code_cell(
                "fig, ax = plt.subplots(figsize=(2, 1.5), dpi=50)\nax.plot([1, 2, 3], [3, 1, 2])\nplt.show()"
            ),
            new_code_cell(
                "pd.DataFrame({'name': ["
                f"{SCRIPT_INJECTION!r}, {IMG_INJECTION!r}], "
                "**{f'col{i}': [i, i + 1] for i in range(12)}})"
            ),
            remove_cell,
            new_code_cell("x = 1  # no output"),
        ],
        metadata={"kernelspec": KERNEL, "language_info": {"name": "python"}},
    )


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """A small notebook executed for real with nbclient, saved to disk."""
    from nbclient import NotebookClient

    tmp = tmp_path_factory.mktemp("nb")
    nb = _build_notebook(tmp)
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp)}}).execute()
    path = tmp / "executed.ipynb"
    nbformat.write(nb, path)
    return tmp, path, nb


@pytest.fixture(scope="module")
def exported(executed):
    tmp, path, _nb = executed
    out = notebook_to_html(path, tmp / "out" / "report.html", title=TITLE, banner_ja=FICTIONAL_DATA_BANNER_JA)
    return out, out.read_text(encoding="utf-8")


def test_returns_path_and_writes_file(exported):
    out, html = exported
    assert isinstance(out, Path)
    assert out.name == "report.html" and out.is_file()
    assert html.startswith("<!DOCTYPE html>")


def test_code_input_and_prompts_hidden(exported):
    _, html = exported
    assert CODE_MARKER not in html
    assert "matplotlib.pyplot" not in html
    assert "plt.subplots" not in html
    body = _body(html)
    assert "In&nbsp;[" not in body and "In\xa0[" not in body
    assert "Out[" not in body and "Out&nbsp;[" not in body
    assert "jp-InputPrompt" not in _body(html)
    assert "jp-InputArea-editor" not in _body(html)


def test_head_lang_charset_viewport_title(exported):
    _, html = exported
    assert re.search(r'<html lang="ja">', html)
    assert re.search(r'<meta charset="utf-8"\s*/?>', html, re.IGNORECASE)
    assert re.search(r'<meta[^>]*name="viewport"[^>]*>', html)
    assert "width=device-width" in html
    m = re.search(r"<title>(.*?)</title>", html, re.DOTALL)
    assert m is not None
    assert m.group(1) == '評価レポート &lt;b&gt;FY2025&lt;/b&gt; &amp; "引用"'
    assert html.count("<title>") == 1


def test_images_embedded_as_data_uris(exported):
    _, html = exported
    imgs = re.findall(r"<img\b[^>]*>", html)
    # matplotlib output + markdown image
    assert len(imgs) >= 2
    for tag in imgs:
        src = re.search(r'src="([^"]*)"', tag).group(1)
        assert src.startswith("data:image/"), tag[:120]
        assert re.search(r'alt="[^"]+"', tag)
    assert re.search(r'<img\b[^>]*src="data:image/png;base64,iVBORw0KGgo', html)
    # the markdown image was embedded, not linked
    assert "figures/logo.png" not in html


def test_no_external_resources_and_no_script(exported):
    _, html = exported
    assert not EXTERNAL_RESOURCE_RE.findall(html)
    assert not re.search(r"<script\b", html, re.IGNORECASE)
    assert "require.js" not in html and "require.min.js" not in html
    assert "mathjax" not in html.lower()
    assert "cdnjs" not in html and "unpkg" not in html
    assert not re.search(r"@import\b", html)
    assert not re.search(r"url\(\s*['\"]?\s*(?:https?:)?//", html)
    assert find_offline_violations(html) == []
    # a plain hyperlink in markdown text is fine and kept
    assert '<a href="https://www.mhlw.go.jp/">' in html
    # CSP forbids scripts and remote loads even if something slipped through
    assert 'http-equiv="Content-Security-Policy"' in html
    assert "default-src 'none'" in html


def test_injected_cell_values_escaped(exported):
    _, html = exported
    assert "<script>alert(1)" not in html
    assert "<img src=x onerror" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html


def test_japanese_font_stack_and_table_scroll(exported):
    _, html = exported
    for font in ('"Hiragino Sans"', '"Yu Gothic"', '"Meiryo"', '"IPAexGothic"', '"Noto Sans CJK JP"'):
        assert font in html
    assert "sans-serif" in html
    assert re.search(r"\.table-scroll\s*\{[^}]*overflow-x:\s*auto", html)
    tables = re.findall(r"<table\b", html)
    wrapped = re.findall(r'<div[^>]*class="table-scroll( table-wide)?"[^>]*>\s*<table\b', html)
    assert len(tables) == 2  # markdown table + DataFrame
    assert len(wrapped) == len(tables)


def test_banner_shown_when_requested(exported, executed, tmp_path):
    _, html = exported
    assert FICTIONAL_DATA_BANNER_JA in html
    assert 'class="report-banner"' in html
    # the banner comes before the report content
    assert html.index('class="report-banner"') < html.index("jp-MarkdownCell", html.index("<body"))
    _, path, _ = executed
    plain = notebook_to_html(path, tmp_path / "plain.html", title="t").read_text(encoding="utf-8")
    assert 'class="report-banner"' not in plain
    assert FICTIONAL_DATA_BANNER_JA not in plain


def test_banner_text_is_escaped(executed, tmp_path):
    _, path, _ = executed
    html = notebook_to_html(path, tmp_path / "b.html", title="t", banner_ja="架空<script>x</script>").read_text(
        encoding="utf-8"
    )
    assert "架空&lt;script&gt;x&lt;/script&gt;" in html
    assert "<script>x" not in html


def test_removed_and_empty_cells_absent(exported):
    _, html = exported
    assert REMOVED_MARKER not in html
    assert "jp-mod-noOutputs" not in _body(html)
    assert "cell-id=" not in html


def test_deterministic_output(executed, exported, tmp_path):
    _, path, nb = executed
    _, first = exported
    a = notebook_to_html(path, tmp_path / "a.html", title=TITLE, banner_ja=FICTIONAL_DATA_BANNER_JA)
    b = notebook_to_html(path, tmp_path / "b.html", title=TITLE, banner_ja=FICTIONAL_DATA_BANNER_JA)
    # from an in-memory node too; markdown images resolve against resources_dir
    c = notebook_to_html(
        nb, tmp_path / "c.html", title=TITLE, banner_ja=FICTIONAL_DATA_BANNER_JA, resources_dir=path.parent
    )
    assert a.read_bytes() == b.read_bytes() == c.read_bytes() == first.encode("utf-8")
    # no timestamps / random ids
    html = a.read_text(encoding="utf-8")
    assert not re.search(r"\b20\d\d-\d\d-\d\dT\d\d:\d\d", html)
    assert not re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", html)


def test_input_notebook_not_modified(executed, tmp_path):
    _, path, nb = executed
    before = nbformat.writes(nb)
    notebook_to_html(nb, tmp_path / "x.html", title="t", resources_dir=path.parent)
    assert nbformat.writes(nb) == before


def test_atomic_write_leaves_no_temp_files_and_is_readable(executed, tmp_path):
    _, path, _ = executed
    out = tmp_path / "site" / "report.html"
    out.parent.mkdir()
    out.write_text("old", encoding="utf-8")
    os.chmod(out, 0o640)
    notebook_to_html(path, out, title="t")
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert sorted(p.name for p in out.parent.iterdir()) == ["report.html"]
    assert stat.S_IMODE(out.stat().st_mode) == 0o640  # existing mode kept
    fresh = notebook_to_html(path, tmp_path / "new" / "r.html", title="t")
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o644


def _static_nb(*outputs) -> nbformat.NotebookNode:
    cell = new_code_cell("pass", execution_count=1)
    cell.outputs = list(outputs)
    return new_notebook(cells=[new_markdown_cell("# t"), cell], metadata={"kernelspec": KERNEL})


def test_external_script_in_output_is_rejected(tmp_path):
    nb = _static_nb(
        new_output(
            "display_data",
            data={"text/html": '<script src="https://cdn.example.com/lib.js"></script><p>x</p>'},
        )
    )
    out = tmp_path / "r.html"
    with pytest.raises(OfflineHTMLError) as excinfo:
        notebook_to_html(nb, out, title="t")
    assert "script" in str(excinfo.value)
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_remote_markdown_image_is_rejected(tmp_path):
    nb = new_notebook(cells=[new_markdown_cell("![x](https://example.com/a.png)")])
    with pytest.raises(OfflineHTMLError):
        notebook_to_html(nb, tmp_path / "r.html", title="t")


def test_stderr_dropped_by_default(tmp_path):
    nb = _static_nb(
        new_output("stream", name="stdout", text="STDOUT_TEXT\n"),
        new_output("stream", name="stderr", text="/tmp/ipykernel_1/1.py:1: UserWarning: STDERR_TEXT\n"),
    )
    html = notebook_to_html(nb, tmp_path / "a.html", title="t").read_text(encoding="utf-8")
    assert "STDOUT_TEXT" in html and "STDERR_TEXT" not in html
    assert len(nb.cells[1].outputs) == 2  # caller's notebook untouched
    html = notebook_to_html(nb, tmp_path / "b.html", title="t", include_stderr=True).read_text(encoding="utf-8")
    assert "STDERR_TEXT" in html


def test_javascript_and_widget_outputs_fall_back_to_static(tmp_path):
    nb = _static_nb(
        new_output(
            "display_data",
            data={"application/javascript": "alert('js')", "text/plain": "PLAIN_FALLBACK"},
        ),
        new_output(
            "display_data",
            data={
                "application/vnd.jupyter.widget-view+json": {"model_id": "abc", "version_major": 2},
                "text/plain": "WIDGET_FALLBACK",
            },
        ),
    )
    html = notebook_to_html(nb, tmp_path / "r.html", title="t").read_text(encoding="utf-8")
    assert "PLAIN_FALLBACK" in html and "WIDGET_FALLBACK" in html
    assert "alert('js')" not in html
    assert "<script" not in html


def test_argument_validation(tmp_path):
    nb = _static_nb()
    with pytest.raises(ValueError):
        notebook_to_html(nb, tmp_path / "r.html", title="t", lang='ja" onload="x')
    with pytest.raises(TypeError):
        notebook_to_html(42, tmp_path / "r.html", title="t")  # type: ignore[arg-type]
    html = notebook_to_html(nb, tmp_path / "r.html", title="t", lang="en").read_text(encoding="utf-8")
    assert '<html lang="en">' in html


@pytest.mark.parametrize(
    "snippet",
    [
        "<script>alert(1)</script>",
        '<link rel="stylesheet" href="https://fonts.googleapis.com/css">',
        '<img src="http://example.com/a.png">',
        '<img src="//example.com/a.png">',
        '<img src="figures/a.png">',
        '<style>@import url("x.css");</style>',
        "<style>body{background:url(https://e.com/b.png)}</style>",
        "<div style=\"background:url('http://e.com/x')\"></div>",
        '<p onclick="x()">a</p>',
        '<a href="javascript:alert(1)">a</a>',
        '<iframe src="https://e.com"></iframe>',
        '<img srcset="data:image/png;base64,AA 1x, https://e.com/b.png 2x">',
    ],
)
def test_find_offline_violations_flags(snippet):
    assert find_offline_violations(snippet)


@pytest.mark.parametrize(
    "snippet",
    [
        '<a href="https://example.org/">link</a>',
        '<a href="FY2025/report.html">r</a>',
        '<img src="data:image/png;base64,AAAA" alt="">',
        "<style>.x{background:url(data:image/svg+xml;base64,AA)}</style>",
        "<p>&lt;script&gt;alert(1)&lt;/script&gt; src=&quot;https://e.com&quot;</p>",
        '<a href="#sec">s</a>',
    ],
)
def test_find_offline_violations_allows(snippet):
    assert find_offline_violations(snippet) == []


def test_wrap_tables():
    html = '<p>&lt;table&gt;</p><table class="x"><tr><td>1</td></tr></table>'
    out = wrap_tables(html)
    assert out.count('class="table-scroll"') == 1
    assert re.search(r'<div class="table-scroll"[^>]*><table class="x">.*</table></div>', out)
    assert "<p>&lt;table&gt;</p>" in out
    assert wrap_tables("") == ""


def test_write_text_atomic(tmp_path):
    p = write_text_atomic(tmp_path / "d" / "f.txt", "あ\n")
    assert p.read_bytes() == "あ\n".encode()
    assert [x.name for x in p.parent.iterdir()] == ["f.txt"]


def test_pandas_escapes_cell_content_by_default():
    """The exporter does not sanitize HTML outputs; it relies on pandas.

    DataFrame._repr_html_/to_html escape cells, index and column labels by
    default.  (pandas' Styler does NOT escape unless escape="html" is set.)
    """
    df = pd.DataFrame({"<b>c</b>": [SCRIPT_INJECTION]}, index=[IMG_INJECTION])
    for html in (df._repr_html_(), df.to_html()):
        assert "<script>" not in html and "<img src=x" not in html and "<b>c" not in html
        assert "&lt;script&gt;" in html and "&lt;img src=x" in html


def test_wrap_tables_marks_wide_tables_and_names_each_region():
    head = "".join(f"<th>列{i}</th>" for i in range(WIDE_TABLE_COLUMNS))
    wide = f"<table><caption>支援施策と全項目実施の関連 &amp; 注記</caption><thead><tr>{head}</tr></thead></table>"
    narrow = '<table><caption>実施状況</caption><tr><th colspan="2">区分</th><th>市町数</th></tr></table>'
    out = wrap_tables(wide + narrow)
    divs = re.findall(r"<div [^>]*>", out)
    assert len(divs) == 2
    assert 'class="table-scroll table-wide"' in divs[0] and f'data-columns="{WIDE_TABLE_COLUMNS}"' in divs[0]
    assert 'aria-label="表「支援施策と全項目実施の関連 &amp; 注記」（横にスクロールできます）"' in divs[0]
    assert 'class="table-scroll"' in divs[1] and 'data-columns="3"' in divs[1]  # colspan counted
    assert 'aria-label="表「実施状況」（横にスクロールできます）"' in divs[1]
    assert out.count("</table></div>") == 2


def test_navigation_links_and_print_css(executed, tmp_path):
    _, path, _ = executed
    html = notebook_to_html(
        path,
        tmp_path / "nav.html",
        title='令和7年度 "報告"</style>',
        banner_ja="架空データ",
        index_href="../index.html",
        nav_links=[("summary.html", "1枚の要約")],
    ).read_text("utf-8")
    nav = re.search(r'<nav [^>]*class="report-nav"[^>]*>(.*?)</nav>', html, re.S).group(1)
    assert 'href="../index.html"' in nav and '<a href="summary.html">1枚の要約</a>' in nav
    style = html[html.index("<style") : html.index("</head>")]
    assert "@page wide" in style and "size: A4 landscape" in style and "page: wide" in style
    assert "counter(pages)" in style and "@top-right" in style  # page numbers, 架空データ on every page
    assert "</style>\n</head>" in html and '"報告"</style>' not in html  # the title cannot end the <style>
    assert find_offline_violations(html) == []


def test_report_exporter_gives_the_page_of_nbconvert_html_exporter(executed):
    """Same page, byte for byte, as nbconvert's own HTMLExporter with the same settings.

    The report exporter skips nbconvert's validations after its disabled preprocessors (they
    return the notebook unchanged); an nbconvert whose disabled preprocessors did change it
    would make this fail.
    """
    import copy

    from nbconvert import HTMLExporter

    from analysis.htmlexport import _exporter_settings, _new_exporter

    tmp, _path, nb = executed
    nb = copy.deepcopy(nb)
    png = base64.b64encode(TINY_PNG).decode()
    nb.cells.append(new_code_cell("x", execution_count=9))
    nb.cells[-1].outputs = [
        new_output("display_data", data={"text/html": f'<p><img src="data:image/png;base64,{png}"></p>'})
    ]
    resources = {
        "metadata": {"name": "t", "path": str(tmp)},
        "report_title": "t",
        "report_lang": "ja",
        "banner_ja": "",
        "index_href": "",
        "nav_links": [],
        "print_css": "",
        "image_alt_default": "図",
    }
    config, options = _exporter_settings()
    stock = HTMLExporter(config=config, **options)
    stock.register_filter("wrap_tables", wrap_tables)
    expected, _ = stock.from_notebook_node(nb, resources=copy.deepcopy(resources))
    page, _ = _new_exporter().from_notebook_node(nb, resources=copy.deepcopy(resources))
    assert page == expected
    assert "No description has been provided for this image" in page  # the <img> without alt got one
    assert page.count('tabindex="0"') >= len(nb.cells) - 2  # each output (and input) area focusable
    assert '<div class="jp-Cell-inputWrapper" tabindex="0">' in page  # the markdown cells'


def test_invalid_notebook_is_rejected(tmp_path):
    nb = _static_nb(new_output("stream", name="stdout", text="x\n"))
    del nb.cells[1]["outputs"][0]["name"]  # a stream output needs its name
    with pytest.raises(nbformat.ValidationError):
        notebook_to_html(nb, tmp_path / "r.html", title="t")
    assert list(tmp_path.iterdir()) == []
