"""Reader-facing Japanese sentences used in more than one place (kept import-light).

Internal module: its names serve the package and may change; the public interface is
``analysis.__all__`` (see CONTRIBUTING.md).
"""

SYNTHETIC_BANNER_JA = (
    "架空データ：このレポートは架空の県（架空県）のデータから作成した見本です。"
    "市町名・数値は実在の自治体とは関係ありません。"
)

#: for synthetic data on real municipalities (the national synthetic data): real codes and names, fictional answers
REAL_NAMES_SYNTHETIC_BANNER_JA = (
    "架空データ：市区町村のコード・名称は実在のものですが、回答と数値はすべてプログラムで作成した架空のもの"
    "です。実在の自治体の回答・実績とは関係ありません。"
)

__all__ = ["REAL_NAMES_SYNTHETIC_BANNER_JA", "SYNTHETIC_BANNER_JA"]
