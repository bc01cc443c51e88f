"""A report is an ordered sequence of frozen sections that show themselves and are saved by one loop.

The before/after byte comparison of every published file is benchmarks/output_hashes.py (a
full run of two code versions); here the saved files of a report are compared with what a fresh
run of the pipeline published from the notebook.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import pandas as pd
import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from analysis import report
from analysis.errors import AnalysisError
from analysis.report import Figure, Report, Section, SectionNotFound

PNG_1PX = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cfc00000030101001816a8e80000000049454e44ae426082"
)


@pytest.fixture(scope="module")
def fy2025() -> Report:
    return report.fiscal_year_report("sample", 2025)


def _small(sample) -> Report:
    rep = Report(dataset=sample, title="テスト")
    rep.add(Section("a", "表A <一>", pd.DataFrame({"区分": ["x&y"], "市町数": [3]})))
    rep.add(Section("words", "文章だけ", text="一段落目。\n\n二段落目 <b>。"))
    rep.add(
        Section(
            "b",
            "表B",
            pd.DataFrame({"市町数": [1, 2]}),
            Figure("b_chart", "図の代替テキスト", data=PNG_1PX),
            sentences=["結果その一。"],
            layout=("sentences", "figure", "table"),
        )
    )
    return rep


def test_sections_are_frozen(sample):
    sec = _small(sample)["a"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        sec.title = "別の題"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        sec.figure = None  # type: ignore[misc]
    assert isinstance(Section("s", "題", sentences=["一"]).sentences, tuple)  # a list given is frozen too


def test_order_getitem_and_views(sample):
    rep = _small(sample)
    assert [s.key for s in rep] == ["a", "words", "b"] == rep.keys() and len(rep) == 3
    assert rep["words"].text.startswith("一段落目") and "b" in rep and "zz" not in rep
    assert list(rep.tables) == ["a", "b"] and rep.titles["a"] == "表A <一>"  # only sections with a table
    assert rep.figure_alts == {"b_chart": "図の代替テキスト"} and rep.figure_png("b_chart") == PNG_1PX
    rep.add(Section("first", "先頭"), first=True)
    assert rep.keys()[0] == "first"
    with pytest.raises(SectionNotFound) as err:
        rep["zz"]
    assert isinstance(err.value, KeyError) and isinstance(err.value, AnalysisError)
    assert "zz" in err.value.ja and "zz" in err.value.en and str(err.value).startswith("analysis.report: ")
    with pytest.raises(AnalysisError, match="duplicate"):
        rep.add(Section("a", "もう一つ"))
    assert rep.get("zz") is None


def test_mimebundle_is_escaped_html_and_plain_text(sample):
    rep = _small(sample)
    bundle = rep["a"]._repr_mimebundle_()
    assert set(bundle) == {"text/html", "text/plain"}
    html = bundle["text/html"]
    assert "<caption>表A &lt;一&gt;</caption>" in html and "x&amp;y" in html and '<td class="num">3</td>' in html
    assert bundle["text/plain"].splitlines()[0] == "[a] 表A <一>" and "x&y" in bundle["text/plain"]
    words = rep["words"]._repr_mimebundle_()["text/html"]
    assert "<p>一段落目。</p><p>二段落目 &lt;b&gt;。</p>" in words  # paragraphs, escaped
    b = rep["b"]._repr_mimebundle_()
    # layout order: sentences, figure (embedded, with alt text), table
    h = b["text/html"]
    assert h.index("results-in-words") < h.index('<img src="data:image/png;base64,') < h.index("<table")
    assert 'alt="図の代替テキスト"' in h
    assert b["text/plain"].splitlines()[1:3] == ["・結果その一。", "[図] 図の代替テキスト"]


def test_ipython_shows_one_output_per_part(sample):
    InteractiveShell.instance()
    rep = _small(sample)
    with capture_output() as cap:
        rep["b"]._ipython_display_()
    kinds = ["figure" if "image/png" in o.data else "html" for o in cap.outputs]
    assert kinds == ["html", "figure", "html"]
    assert cap.outputs[1].data["text/plain"] == "[図] 図の代替テキスト"
    assert "<table" in cap.outputs[2].data["text/html"] and "results-in-words" in cap.outputs[0].data["text/html"]


def test_fiscal_year_report_sections(fy2025):
    assert fy2025.keys() == [
        "quality",
        "status",
        "progress",
        "main_items",
        "support",
        "challenges",
        "support_by_full",
        "association",
        "municipality_items",
    ]
    assoc = fy2025["association"]
    kinds = [k for k, _ in assoc.parts()]
    assert kinds == ["html", "figure", "html", "html"]  # sentences, forest, reading, table
    assert assoc.figure is not None and assoc.figure.name == "forest"
    assert fy2025.association_sentences == list(assoc.sentences) and fy2025.association_text == assoc.text
    assert fy2025["quality"].see_also == "../quality/FY2025/report.html" and fy2025["quality"].table is None
    plain = fy2025["status"]._repr_mimebundle_()["text/plain"]  # the table itself, not an object repr
    assert plain.startswith("[status] 県内市町の実施状況（令和7年度（FY2025））") and "回答市町数" in plain
    assert fy2025["status"].table is fy2025.tables["status"]


def test_save_writes_one_file_per_table_and_figure_in_order(sample, tmp_path):
    rep = _small(sample)
    rep.save(tmp_path)
    assert sorted(p.name for p in (tmp_path / "tables").iterdir()) == ["01_a.csv", "02_b.csv"]
    assert (tmp_path / "figures" / "b_chart.png").read_bytes() == PNG_1PX
    from openpyxl import load_workbook

    assert load_workbook(tmp_path / "tables.xlsx").sheetnames[:2] == ["01 a", "02 b"]


def _digest(folder: Path) -> dict[str, str]:
    files = [*folder.glob("tables/*.csv"), *folder.glob("figures/*.png"), folder / "tables.xlsx"]
    files.append(folder / "summary.json")
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


@pytest.mark.parametrize("make, out", [(lambda: report.fiscal_year_report("sample", 2025), "FY2025")])
def test_saved_files_are_byte_identical_to_a_fresh_pipeline_run(sample_run, tmp_path, make, out):
    """What `Report.save` writes here is, byte for byte, what the notebook run published."""
    project, proc = sample_run
    assert proc.returncode == 0, proc.stderr[-2000:]
    published = project / "reports" / "sample" / out
    make().save(tmp_path)
    assert _digest(tmp_path) == _digest(published)
    assert len(_digest(published)) >= 12  # 8 tables, 4 figures, the workbook and the summary
