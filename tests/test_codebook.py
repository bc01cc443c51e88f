import pytest
import yaml

from analysis.codebook import header_key, load_codebook


def test_definitions(book):
    assert len(book.main_items) == 8
    assert book.support_measures == [
        "sup_advisor",
        "sup_staff_training",
        "sup_study_group",
        "sup_workshop",
        "sup_multiprof",
        "sup_helper_course",
    ]
    assert book.viewpoint_of("sup_multiprof").startswith("相談対応力強化")
    assert book.label("sup_advisor") == "アドバイザー派遣"
    assert book.label("sup_advisor", "en") == "Advisor dispatch"
    assert book.label("population") == "人口"
    assert len(book.challenges) == 4
    assert {c["variable"] for c in book.covariates} == {"population", "aging_rate", "kaso", "fiscal_strength"}


@pytest.mark.parametrize(
    "spelling,value",
    [
        ("○", True),
        ("〇", True),
        ("◯", True),
        ("×", False),
        ("✕", False),
        ("有", True),
        ("無", False),
        ("実施", True),
        ("未実施", False),
        ("はい", True),
        ("いいえ", False),
        ("1", True),
        ("0", False),
        ("１", True),
        ("TRUE", True),
        ("FALSE", False),
        ("―", None),
        ("－", None),
    ],
)
def test_yes_no_answer_map(book, spelling, value):
    from analysis.codebook import answer_key

    assert book.answer_maps["yes_no"][answer_key(spelling)] is value


def test_headers_match_after_nfkc_and_spaces(book):
    q = book.question("sup_workshop")
    assert header_key("ワークショップ(孤独・孤立対策)") in q.header_keys
    assert header_key("ワークショップ（孤独・孤立対策） ") in q.header_keys


def test_main_items_are_configurable(tmp_path, root):
    raw = yaml.safe_load((root / "data" / "codebook" / "survey.yaml").read_text(encoding="utf-8"))
    raw["main_items"] = raw["main_items"][:3]
    path = tmp_path / "cb.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    assert len(load_codebook(path).main_items) == 3


def test_undefined_variable_in_a_list_is_rejected(tmp_path, root):
    raw = yaml.safe_load((root / "data" / "codebook" / "survey.yaml").read_text(encoding="utf-8"))
    raw["main_items"].append("item_typo")
    path = tmp_path / "cb.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ValueError, match="item_typo"):
        load_codebook(path)
