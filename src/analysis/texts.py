"""Reader-facing Japanese sentences used in more than one place (kept import-light)."""

SYNTHETIC_BANNER_JA = ("架空データ：このレポートは架空の県（架空県）のデータから作成した見本です。"
                       "市町名・数値は実在の自治体とは関係ありません。")
ASSOCIATION_NOTE_JA = ("注：ここに示す関係は「関連」であり、県の支援施策の「効果」を示すものではありません。"
                       "支援を活用する市町と活用しない市町では、人口規模や体制などがもともと異なるためです。")
