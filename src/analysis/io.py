"""Compatibility name of the survey reader: `analysis.io` is `analysis.survey._reader`.

The reader is the package `analysis.survey` (public interface in its `__init__`). Code and tests
written against the old single module import `analysis.io`; this module makes that name refer to
the reader module itself (not a copy), so names such as `read_survey`, `SurveyError`,
`ISSUE_COLUMNS`, `report_text` and `what_to_do` keep working, and so does patching a step of the
reader through `analysis.io` in a test.

Internal module: its names serve the package and may change; the public interface is
``analysis.__all__`` (see CONTRIBUTING.md).
"""

import sys

from .survey import _reader

sys.modules[__name__] = _reader
