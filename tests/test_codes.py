import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from analysis import codes


def test_check_digit_published_example():
    # shared/data/README.md (総務省): 静岡市 22100 -> 221007
    assert codes.check_digit("22100") == 7
    assert codes.normalize("22100") == "221007"


def test_every_code_in_the_master_list_passes(root):
    master = codes.load_master(root / "data" / "external" / "municipality_codes.csv")
    assert len(master) == 1788
    assert (master["municipality"] != "").sum() == 1741
    assert master["lg_code"].map(codes.is_valid).all()


@pytest.mark.parametrize("value", ["011002", "01100", "01-100", " 011002 ", "０１１００２"])
def test_unambiguous_spellings_of_sapporo(value):
    assert codes.normalize(value) == "011002"


@pytest.mark.parametrize("value", [11002, 11002.0, "11002", "１１００２"])
def test_zero_dropped_code_is_resolved_against_the_master(value):
    # 11002 reads as 埼玉 11002 (no check digit) or as 札幌 011002 without its zero: the master decides
    assert set(codes.candidates(value)) == {"110027", "011002"}
    assert codes.normalize(value, known=frozenset({"011002"})) == "011002"
    assert codes.normalize(value, known=frozenset({"110027"})) == "110027"


def test_four_digit_number_lost_its_leading_zero():
    assert codes.normalize(1100) == "011002"


@pytest.mark.parametrize("bad", ["011003", "abc", "", None, 1.5, "1234567", True])
def test_invalid_codes_raise_with_a_reason(bad):
    with pytest.raises(codes.CodeError) as exc:
        codes.normalize(bad)
    assert "/" in str(exc.value)  # Japanese / English


def test_wrong_check_digit_names_the_correct_one():
    with pytest.raises(codes.CodeError, match="221007"):
        codes.normalize("221001")


def test_unknown_code_with_master_is_an_error():
    with pytest.raises(codes.CodeError):
        codes.normalize("221007", known=frozenset({"011002"}))


@given(st.integers(min_value=1000, max_value=47999).map(lambda n: f"{n:05d}"))
def test_five_digits_plus_check_digit_is_valid_and_idempotent(code5):
    code6 = codes.normalize(code5)
    assert codes.is_valid(code6) and code6[:5] == code5
    assert codes.normalize(code6) == code6
    assert codes.normalize(code6.translate(str.maketrans("0123456789", "０１２３４５６７８９"))) == code6


@given(st.integers(min_value=0, max_value=99999).map(lambda n: f"{n:05d}"), st.integers(0, 9))
def test_exactly_one_check_digit_is_valid(code5, digit):
    assert codes.is_valid(code5 + str(digit)) == (digit == codes.check_digit(code5))


def test_names_are_compared_after_nfkc():
    assert codes.normalize_name("ｻｯﾎﾟﾛ 市") == codes.normalize_name("サッポロ市")
    assert isinstance(pd.Series(["a"]).map(codes.normalize_name).iat[0], str)
