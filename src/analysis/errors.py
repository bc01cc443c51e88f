"""One base class for every error the project raises on purpose.

A prefectural analyst reads the Japanese text, a researcher or a log the English one; both are
kept as separate attributes so that nothing has to split a "ja / en" string again. ``str(err)``
gives both, Japanese first, which is what the command line prints.

Internal module: its names serve the package and may change; the public interface is
``analysis.__all__`` (see CONTRIBUTING.md).
"""

from __future__ import annotations


class AnalysisError(Exception):
    """An error with a Japanese and an English message (and, optionally, where it happened).

    Parameters
    ----------
    ja, en : str
        The same message in Japanese and in English.
    where : str, optional
        File (and row, column, value) the message is about, printed before the text.

    Examples
    --------
    >>> err = AnalysisError("年度が不正です", "invalid fiscal year", where="dataset.yaml")
    >>> str(err)
    'dataset.yaml: 年度が不正です / invalid fiscal year'
    >>> err.ja, err.en
    ('年度が不正です', 'invalid fiscal year')
    """

    def __init__(self, ja: str, en: str | None = None, *, where: str | None = None):
        self.ja = ja
        self.en = en if en is not None else ja
        self.where = where
        super().__init__(self._text())

    def _text(self) -> str:
        body = self.ja if self.en == self.ja else f"{self.ja} / {self.en}"
        return f"{self.where}: {body}" if self.where else body


__all__ = ["AnalysisError"]
