"""Reader-facing Japanese sentences used in more than one place (kept import-light).

Internal module: its names serve the package and may change; the public interface is
``analysis.__all__`` (see CONTRIBUTING.md).
"""

SYNTHETIC_BANNER_JA = (
    "架空データ：このレポートは架空の県（架空県）のデータから作成した見本です。"
    "市町名・数値は実在の自治体とは関係ありません。"
)

__all__ = ["SYNTHETIC_BANNER_JA"]
