"""The command line: ``python -m bytefeed_helpers manifest|validate|bench|demo ...``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path


def main(argv: Sequence[str] | None = None) -> int:
    """Run one sub-command; returns the process exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    return args.run(args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bytefeed_helpers",
        description="Feed folders of byte files to Keras: manifests, validation, benchmarks.",
    )
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    p = sub.add_parser("manifest", help="list a folder's files and labels into a CSV")
    p.add_argument("root", help="folder with one sub-folder per class (or loose files)")
    p.add_argument("-o", "--output", default="manifest.csv", help="CSV to write")
    p.add_argument("--kind", choices=["image", "audio", "text"], help="keep this kind's files")
    p.add_argument("--ext", action="append", help="keep these extensions (repeatable)")
    p.set_defaults(run=_manifest)

    p = sub.add_parser("validate", help="decode every file of a manifest and report problems")
    p.add_argument("manifest", help="manifest CSV or list of paths")
    p.add_argument("--kind", choices=["image", "audio", "text"], help="default: guessed")
    p.add_argument("--workers", type=int, default=None)
    p.set_defaults(run=_validate)

    p = sub.add_parser("bench", help="compare bytefeed with the usual loaders on a manifest")
    p.add_argument("manifest", help="manifest CSV or list of paths")
    p.add_argument("--kind", choices=["image", "audio", "text"], default="image")
    p.add_argument("--size", type=int, default=224, help="image side in pixels")
    p.add_argument("--batch", type=int, default=32, help="batch size")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds per pipeline")
    p.add_argument("--pipelines", help="comma-separated subset of pipelines to run")
    p.add_argument("--json", action="store_true", help="print JSON for machines")
    p.set_defaults(run=_bench)

    p = sub.add_parser("demo", help="execute every notebook on data_sample/ and print a table")
    p.add_argument("--notebooks", default="notebooks", help="folder of .ipynb files")
    p.add_argument("--out", default="build/notebooks", help="where executed copies go")
    p.set_defaults(run=_demo)
    return parser


def _manifest(args: argparse.Namespace) -> int:
    from .manifest import build_manifest

    m = build_manifest(args.root, kind=args.kind, extensions=args.ext)
    out = m.write(args.output)
    counts = ", ".join(f"{k}: {v}" for k, v in m.counts().items()) or "unlabelled"
    print(f"{len(m)} files, {len(m.class_names)} classes ({counts}) -> {out}")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from .manifest import read_manifest

    report = read_manifest(args.manifest).validate(args.kind, workers=args.workers)
    print(report)
    return 0 if report.ok else 1


def _bench(args: argparse.Namespace) -> int:
    from .bench.comparison import bench_command

    return bench_command(args)


def _demo(args: argparse.Namespace) -> int:
    from .notebook.runner import format_runs, run_notebook

    notebooks = sorted(Path(args.notebooks).glob("[0-9][0-9]_*.ipynb"))
    if not notebooks:
        print(f"no notebooks found in {args.notebooks}", file=sys.stderr)
        return 1
    runs = []
    for nb in notebooks:
        print(f"running {nb.name} ...", flush=True)
        runs.append(run_notebook(nb, args.out, raise_on_error=False))
    print(format_runs(runs))
    return 0 if all(r.ok for r in runs) else 1
