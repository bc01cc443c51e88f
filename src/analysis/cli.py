"""`python -m analysis ...`: argument parsing and messages only; the work is in other modules.

Internal module: its names serve the package and may change; the public interface is
``analysis.__all__`` (see CONTRIBUTING.md).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m analysis", description="包括的な支援体制の整備に関する市町支援の評価 / evaluation pipeline"
    )
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("sample", help="架空県のサンプルデータを生成 / write the fictional sample data")
    s.add_argument("--out", type=Path, default=None, help="出力先（既定: data/raw/sample）")
    s.add_argument(
        "--national", action="store_true", help="全国1,741市町村の合成データ（data/raw/national-synthetic）を生成"
    )
    s.add_argument(
        "--by-prefecture",
        action="store_true",
        help="--national と一緒に: 都道府県ごとの47データセット（data/raw/national_pref01〜47）も書き出す"
        " / with --national: also write one dataset per prefecture",
    )
    s.add_argument(
        "--scale",
        type=int,
        default=1,
        metavar="K",
        help="--national と一緒に: K倍の規模（K×1,741市町村、架空の市町村を追加; 既定 data/raw/national-synthetic-xK）"
        " / with --national: K times the national size, for scale tests",
    )

    r = sub.add_parser("run", help="全年度のレポートを作成 / run the reports")
    which = r.add_mutually_exclusive_group()
    which.add_argument("--dataset", default=None, help="データセット名（既定: sample）")
    which.add_argument(
        "--datasets",
        default=None,
        metavar="A,B,...",
        help="複数のデータセットをまとめて実行（ジョブを一緒に割り振る）/ several datasets, scheduled together",
    )
    which.add_argument(
        "--all", action="store_true", help="data/raw/ の全データセットを実行 / every dataset under data/raw/"
    )
    r.add_argument("--years", default=None, help="例: 2021-2025（既定: 全年度）")
    r.add_argument("--jobs", type=int, default=None, help="並列数（既定: CPU数）")
    r.add_argument("--force", action="store_true", help="変更がなくても作り直す")
    r.add_argument("--exposure-lag", type=int, choices=(0, 1), default=0, help="支援の時点（0: 同年度, 1: 前年度）")
    r.add_argument("--no-progress", action="store_true")
    r.add_argument(
        "--memory-limit-mb",
        type=int,
        default=None,
        help="各ノートブックのメモリ上限（MB, アドレス空間。既定: 8192、0 で無制限）/ memory limit per kernel",
    )
    r.add_argument(
        "--wait",
        action="store_true",
        help="同じデータセットの別の実行が終わるのを待つ（既定: すぐに終了）/ wait for a concurrent run",
    )
    r.add_argument(
        "--fresh-kernels",
        action="store_true",
        help="ノートブックごとに新しいカーネルを起動（既定: 作業プロセスごとに1つを初期化・検証して再利用）"
        "/ a fresh kernel per notebook (default: one verified-clean kernel reused per worker)",
    )
    r.add_argument(
        "--no-pdf",
        action="store_true",
        help="PDF と画像（summary.png）を作らない。HTML のレポートだけで速く確かめたいとき。次の通常の実行で作成 "
        "/ HTML only: no PDFs or slide images (a later run without it prints them)",
    )
    r.add_argument(
        "--executor",
        choices=("local", "dask"),
        default="local",
        help="実行方式: local（このマシンの作業プロセス、既定）か dask（dask.distributed）/ where the jobs run",
    )
    r.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="--executor dask のスケジューラ（例: tcp://10.0.0.5:8786）。省略時は --jobs 個のワーカーの"
        "LocalCluster / Dask scheduler address (default: a local cluster)",
    )

    st = sub.add_parser("site", help="レポート一覧（index.html）だけを作り直す / rebuild the index")
    st.add_argument("--dataset", default="sample")

    sub.add_parser("refresh-notebooks", help="ノートブックを既定値で実行し出力を保存（nbval の基準）")

    v = sub.add_parser("validate", help="調査ファイルを検査 / validate one survey file")
    v.add_argument("file", type=Path)
    v.add_argument("--dataset", required=True)
    v.add_argument("--fiscal-year", type=int, default=None)
    v.add_argument(
        "--tidy-out",
        type=Path,
        default=None,
        help="整形済みの表（CSV）の出力先。エラーがなければ書き出す / write the tidy table (CSV) when valid",
    )
    v.add_argument(
        "--issues-out", type=Path, default=None, help="問題の一覧（CSV）の出力先 / write the issues table (CSV)"
    )

    m = sub.add_parser(
        "master", help="実在の県の市町村マスタ（municipalities.xlsx）を作成 / write a municipality master"
    )
    m.add_argument("--prefecture", required=True, help="都道府県コード（例: 22）または都道府県名")
    m.add_argument(
        "--out",
        type=Path,
        default=Path("municipalities.xlsx"),
        help="出力先（.xlsx または .csv、既定: ./municipalities.xlsx）",
    )
    m.add_argument(
        "--fiscal-year",
        type=int,
        default=None,
        help="財政力指数をこの年度以前の最新の公表値にする（既定: 同梱の最新年度）",
    )
    m.add_argument("--replace", action="store_true", help="既にあるファイルを上書きする")

    tp = sub.add_parser(
        "template", help="コードブックから次年度の調査票（Excel）を作成 / write next year's questionnaire"
    )
    tp.add_argument("--dataset", required=True)
    tp.add_argument("--fiscal-year", type=int, required=True, help="調査の対象年度（例: 2026）")
    tp.add_argument(
        "--out", type=Path, default=None, help="全市町の調査票の出力先（既定: ./survey_FY<年度>_template.xlsx）"
    )
    tp.add_argument(
        "--per-municipality",
        type=Path,
        default=None,
        metavar="DIR",
        help="市町ごとの調査票（<コード>_<市町名>_FY<年度>.xlsx）を書き出すフォルダ",
    )
    tp.add_argument("--deadline", default=None, help="提出期限（例: 2026-10-31）")
    tp.add_argument("--replace", action="store_true", help="既にあるファイルを上書きする")

    co = sub.add_parser(
        "collect", help="返送された調査票をまとめて年度の調査ファイルにする / merge returned questionnaires"
    )
    co.add_argument("folder", type=Path, metavar="DIR", help="返送されたファイルを置いたフォルダ")
    co.add_argument("--dataset", required=True)
    co.add_argument("--fiscal-year", type=int, required=True)
    co.add_argument(
        "--out",
        type=Path,
        default=None,
        help="出力先（既定: data/raw/<データセット>/survey_FY<年度>.xlsx に書き、dataset.yaml に登録）",
    )
    co.add_argument("--replace", action="store_true", help="既にある調査ファイル・dataset.yaml の登録を置き換える")
    co.add_argument("--allow-missing", action="store_true", help="未回答の市町があっても書き出す")
    return p


def main(argv: list[str] | None = None) -> int:
    """Exit status: 0 done; 1 a report failed, an output could not be written or another run of the
    dataset is busy; 2 bad input or parameters (nothing done); 128+N stopped by signal N."""
    args = _parser().parse_args(argv)
    from .datasets import DatasetError
    from .errors import AnalysisError
    from .export import WRITE_ERRNOS, write_error_text
    from .runner import Interrupted, RunLocked
    from .survey import SurveyError

    try:
        return _dispatch(args)
    except Interrupted as exc:
        print(f"中断 / interrupted: {exc}", file=sys.stderr)
        return 128 + exc.signum
    except RunLocked as exc:
        print(f"エラー / error: {exc}", file=sys.stderr)
        return 1
    except (AnalysisError, DatasetError, SurveyError) as exc:
        print(f"エラー / error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        if exc.errno not in WRITE_ERRNOS:
            raise
        text = write_error_text(exc.errno, exc.filename)
        if text is None:  # not reached: every errno in WRITE_ERRNOS has a text
            raise
        ja, en = text
        print(f"エラー / error: {ja} / {en}", file=sys.stderr)
        return 1


def _dispatch(args) -> int:
    if args.command == "sample" and args.by_prefecture and not args.national:
        from .runner import RunError

        raise RunError("--by-prefecture は --national と一緒に指定してください", "--by-prefecture needs --national")
    if args.command == "sample" and args.scale != 1 and not args.national:
        from .runner import RunError

        raise RunError("--scale は --national と一緒に指定してください", "--scale needs --national")
    if args.command == "sample" and args.scale != 1 and args.by_prefecture:
        from .runner import RunError

        raise RunError(
            "--by-prefecture は倍率 1（実在の市町村だけ）のときに使えます", "--by-prefecture works only with --scale 1"
        )
    if args.command == "sample" and args.national:
        from .paths import raw_dir
        from .synthetic import (
            check_scale,
            national_dataset_name,
            prefecture_dataset_name,
            write_national,
            write_national_by_prefecture,
        )

        scale = check_scale(args.scale)
        out = args.out or raw_dir(national_dataset_name(scale))
        _check_sample_out(out)
        if args.by_prefecture:
            parent = out.parent
            for code in range(1, 48):
                _check_sample_out(parent / prefecture_dataset_name(f"{code:02d}"))
        info = write_national(out, scale=scale)
        print(f"全国合成データを書き出しました: {out}（{info['n_municipalities']} 市町村, シード {info['seed']}）")
        if args.by_prefecture:
            written = write_national_by_prefecture(out.parent)
            print(
                f"都道府県別の合成データを書き出しました / per-prefecture datasets written: {len(written)} 件 "
                f"（{written[0].name} 〜 {written[-1].name}）: {out.parent}"
            )
        return 0
    if args.command == "sample":
        from .paths import raw_dir
        from .synthetic import write_sample

        out = args.out or raw_dir("sample")
        _check_sample_out(out)
        info = write_sample(out)
        print(f"架空県サンプルを書き出しました: {out}（シード {info['seed']}）")
        for y, c in info["counts"].items():
            print(f"  FY{y}: 重層実施 {c['n_jusou']} 市町, 主要項目を全て実施 {c['n_full']} 市町")
        return 0
    if args.command == "run":
        return _run(args)
    if args.command == "site":
        from .datasets import load_dataset
        from .runner import build_index, validate_dataset_name

        print(build_index(load_dataset(validate_dataset_name(args.dataset))))
        return 0
    if args.command == "refresh-notebooks":
        from .runner import refresh_notebooks

        for path in refresh_notebooks():
            print(f"実行して保存しました / executed: {path}")
        return 0
    if args.command == "validate":
        return _validate(args)
    if args.command == "master":
        from .master import run_cli

        return run_cli(args)
    if args.command == "template":
        from .survey_template import run_cli

        return run_cli(args)
    if args.command == "collect":
        from .collect import run_cli

        return run_cli(args)
    raise AssertionError(args.command)


def _run(args) -> int:
    """`run`: one dataset (--dataset), several (--datasets A,B) or all (--all), on the chosen executor."""
    from .datasets import available
    from .paths import project_root, reports_dir
    from .runner import DEFAULT_MEMORY_LIMIT_MB, RunError, run_many, summary_table

    if args.all:
        names = available()
        if not names:
            raise RunError("data/raw/ にデータセットがありません", "no dataset under data/raw/")
    elif args.datasets is not None:
        names = [n.strip() for n in args.datasets.split(",") if n.strip()]
        if not names:
            raise RunError("--datasets にデータセット名がありません", "--datasets names no dataset")
    else:
        names = [args.dataset or "sample"]
    limit = DEFAULT_MEMORY_LIMIT_MB if args.memory_limit_mb is None else args.memory_limit_mb
    if args.executor == "dask" and not args.no_progress:
        where = args.scheduler or f"LocalCluster（ワーカー {args.jobs or 'CPU数'} / workers）"
        print(f"Dask で実行します / running on Dask: {where}", file=sys.stderr)
    by_dataset = run_many(
        names,
        args.years,
        jobs=args.jobs,
        force=args.force,
        exposure_lag=args.exposure_lag,
        progress=not args.no_progress,
        memory_limit_mb=limit,
        wait=args.wait,
        executor=args.executor,
        scheduler=args.scheduler,
        fresh_kernels=args.fresh_kernels,
        pdfs=not args.no_pdf,
    )
    n_failed = 0
    for name, results in by_dataset.items():
        if len(by_dataset) > 1:
            print(f"== データセット / dataset: {name} ==")
        print(summary_table(results))
        for warning in getattr(results, "warnings", []):
            print(f"注意 / warning: {warning}", file=sys.stderr)
        n_failed += sum(r.status == "failed" for r in results)
        print(f"レポート一覧 / index: {reports_dir(name) / 'index.html'}")
    if len(by_dataset) > 1:
        from .overview import build_overview

        overview = build_overview(project_root() / "reports", list(by_dataset))
        print(f"全データセットの一覧 / index of all datasets: {overview}")
    if n_failed:
        print(
            f"{n_failed} 件のレポートが失敗しました（以前のレポートはそのまま残しています）/ "
            f"{n_failed} report(s) failed; earlier reports were left in place",
            file=sys.stderr,
        )
        return 1
    return 0


def _validate(args) -> int:
    """Validate one survey file: report (ja / en) on stdout; 0 valid, 1 invalid, 2 unusable."""
    from .codebook import load_codebook
    from .datasets import load_dataset
    from .export import write_csv
    from .runner import validate_dataset_name
    from .survey import SurveyError, report_text

    ds = load_dataset(validate_dataset_name(args.dataset))
    protected = {Path(args.file).resolve()}
    protected |= {p.resolve() for p in ds.input_files()}
    outs = [o for o in (args.tidy_out, getattr(args, "issues_out", None)) if o is not None]
    for out in outs:
        check_output_path(out, ds.name, protected)
    if len(outs) == 2 and Path(outs[0]).resolve() == Path(outs[1]).resolve():
        from .runner import OutputError

        raise OutputError(
            "--tidy-out と --issues-out に同じファイルは指定できません",
            "--tidy-out and --issues-out must be different files",
            where=str(outs[0]),
        )
    try:
        result = ds.read_file(args.file, load_codebook(), fiscal_year=args.fiscal_year)
    except SurveyError as exc:
        print(report_text(None, exc.issues, path=args.file))
        if getattr(args, "issues_out", None):
            write_csv(exc.issues, args.issues_out)
        print(f"エラー / error: {exc}", file=sys.stderr)
        return 2
    print(report_text(result))
    if getattr(args, "issues_out", None):
        write_csv(result.issues, args.issues_out)
        print(f"問題の一覧を書き出しました / issues written: {args.issues_out}")
    if args.tidy_out:
        if result.ok:
            write_csv(result.tidy, args.tidy_out)
            print(f"整形済みの表を書き出しました / tidy table written: {args.tidy_out}")
        else:
            print(
                f"エラーがあるため整形済みの表は書き出していません / tidy table not written because of errors: "
                f"{args.tidy_out}"
            )
    return 0 if result.ok else 1


#: Folders under reports/<dataset>/ that the runner owns (an explicit out-path may not go there).
_RUNNER_OWNED = re.compile(
    r"^(FY\d{4}|trends|quality|\.staging|\.failed|\.logs|\.old-.*|index\.html|"
    r"assumptions\.html|\.run\.lock)$"
)


def check_output_path(path: Path | str, dataset: str, protected: set[Path] | frozenset[Path] = frozenset()) -> Path:
    """Refuse an explicit output file (--tidy-out, --issues-out) that would overwrite inputs or reports.

    Not allowed: an input file; anything under data/ except data/processed/ (raw surveys,
    masters, codebook, external reference data); another dataset's reports/<name>/; the folders
    and files the runner writes in reports/<dataset>/; an existing folder. Symlinks are resolved.
    """
    from .paths import project_root
    from .runner import OutputError

    target = Path(path).resolve()
    root = project_root().resolve()
    data, reports = root / "data", root / "reports"
    where = str(path)
    if target in protected:
        raise OutputError(
            "入力ファイルには書き出せません。別の出力先を指定してください",
            "refusing to overwrite an input file; choose another output path",
            where=where,
        )
    if target.is_relative_to(data) and not target.is_relative_to(data / "processed"):
        raise OutputError(
            f"data/ の中（調査ファイル・市町一覧・コードブック）には書き出せません（{target}）。"
            "data/ の外か data/processed/ を指定してください",
            f"refusing to write inside data/ ({target}); choose a path outside data/ or in data/processed/",
            where=where,
        )
    if target.is_relative_to(reports) and target != reports:
        parts = target.relative_to(reports).parts
        if parts[0] != dataset:
            raise OutputError(
                f"別のデータセット『{parts[0]}』のレポートの中には書き出せません（{target}）",
                f"refusing to write into the reports of another dataset ({parts[0]!r})",
                where=where,
            )
        if len(parts) < 2 or _RUNNER_OWNED.match(parts[1]):
            raise OutputError(
                f"レポートのフォルダ（run が作るもの）の中には書き出せません（{target}）",
                f"refusing to write into a report folder managed by `run` ({target})",
                where=where,
            )
    if target.is_dir():
        raise OutputError(
            "フォルダです。ファイル名を指定してください", "refusing to write to a folder; give a file name", where=where
        )
    return target


def _check_sample_out(out: Path) -> None:
    """`sample --out` may replace a generated dataset, never a real one (a dataset.yaml without synthetic: true)."""
    import yaml

    from .runner import OutputError

    meta_path = Path(out) / "dataset.yaml"
    if not meta_path.is_file():
        return
    try:
        meta = yaml.safe_load(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        meta = None
    if not (isinstance(meta, dict) and meta.get("synthetic") is True):
        raise OutputError(
            "このフォルダには合成データではないデータセットがあります。上書きしません。別の --out を指定してください",
            "this folder holds a dataset that is not synthetic; refusing to overwrite it",
            where=str(out),
        )


__all__ = ["check_output_path", "main"]
