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
    p.add_argument(
        "--follow-links", action="store_true", help="follow links to folders below the classes"
    )
    p.set_defaults(run=_manifest)

    p = sub.add_parser("validate", help="decode every file of a manifest and report problems")
    p.add_argument("manifest", help="manifest CSV or list of paths")
    p.add_argument("--kind", choices=["image", "audio", "text"], help="default: guessed")
    p.add_argument("--workers", type=int, default=None)
    _add_manifest_options(p)
    p.set_defaults(run=_validate)

    p = sub.add_parser("bench", help="compare bytefeed with the usual loaders on a manifest")
    p.add_argument("manifest", nargs="?", help="manifest CSV or list of paths")
    p.add_argument(
        "--scale",
        type=int,
        metavar="N",
        help="instead: time reading, writing and streaming an N-row manifest (no files read)",
    )
    p.add_argument("--kind", choices=["image", "audio", "text"], default="image")
    p.add_argument("--size", type=int, default=224, help="image side in pixels")
    p.add_argument("--batch", type=int, default=32, help="batch size")
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds per pipeline")
    p.add_argument("--pipelines", help="comma-separated subset of pipelines to run")
    p.add_argument("--workers", type=int, default=None, help="bytefeed's threads (default: cores)")
    p.add_argument(
        "--gil",
        action="store_true",
        help="instead: the GIL-held share of bytefeed's epochs and the ceiling it implies",
    )
    p.add_argument(
        "--processes",
        action="store_true",
        help="with --gil: measure bytefeed on worker processes (parallelism='processes')",
    )
    p.add_argument(
        "--isolate",
        action="store_true",
        help="run each pipeline's rounds in a fresh process of its own (still alternating)",
    )
    p.add_argument(
        "--first-batch",
        action="store_true",
        help="also time each pipeline's first batch from a fresh process (imports included)",
    )
    p.add_argument("--json", action="store_true", help="print JSON for machines")
    _add_manifest_options(p)
    p.set_defaults(run=_bench)

    p = sub.add_parser("demo", help="execute every notebook on data_sample/ and print a table")
    p.add_argument("--notebooks", default="notebooks", help="folder of .ipynb files")
    p.add_argument("--out", default="build/notebooks", help="where executed copies go")
    p.set_defaults(run=_demo)
    return parser


def _add_manifest_options(p: argparse.ArgumentParser) -> None:
    """``read_manifest``'s column options, for commands that read a manifest."""
    p.add_argument("--path-column", default="path", help="CSV column of paths (or ids)")
    p.add_argument("--label-column", default="label", help="CSV column of labels")
    p.add_argument("--no-labels", action="store_true", help="ignore any label column")
    p.add_argument("--root", default=None, help="folder relative paths start from")
    p.add_argument("--suffix", default="", help="append to ids without it, e.g. .jpg")


def _manifest_options(args: argparse.Namespace) -> dict:
    return {
        "path_column": args.path_column,
        "label_column": None if args.no_labels else args.label_column,
        "root": args.root,
        "suffix": args.suffix,
    }


def _manifest(args: argparse.Namespace) -> int:
    from .folders import build_manifest

    m = build_manifest(
        args.root, kind=args.kind, extensions=args.ext, follow_links=args.follow_links
    )
    out = m.write(args.output)
    counts = ", ".join(f"{k}: {v}" for k, v in m.counts().items()) or "unlabelled"
    print(f"{len(m)} files, {len(m.class_names)} classes ({counts}) -> {out}")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from .manifest import read_manifest

    try:
        manifest = read_manifest(args.manifest, **_manifest_options(args))
    except (OSError, ValueError) as exc:  # ManifestError is a ValueError
        print(f"validate: cannot read manifest {args.manifest}: {exc}", file=sys.stderr)
        return 2
    report = manifest.validate(args.kind, workers=args.workers)
    print(report)
    return 0 if report.ok else 1


def _bench(args: argparse.Namespace) -> int:
    if args.scale is not None:
        from .bench.scale import scale_command

        return scale_command(args)
    if args.manifest is None:
        print("bench: give a manifest, or --scale N", file=sys.stderr)
        return 2
    args.manifest_options = _manifest_options(args)
    if args.gil:
        from .bench.gil import gil_command

        return gil_command(args)
    from .bench.comparison import bench_command

    return bench_command(args)


#: Import names of the ``notebooks`` extra's packages, which only ``demo`` needs.
NOTEBOOK_MODULES = frozenset(
    {"IPython", "ipykernel", "ipywidgets", "jupyterlab", "matplotlib", "nbformat", "papermill"}
)


def _demo(args: argparse.Namespace) -> int:
    try:
        from .notebook.runner import format_runs, run_notebook
    except ModuleNotFoundError as exc:
        if (exc.name or "").partition(".")[0] not in NOTEBOOK_MODULES:
            raise  # not a missing extra: a real error
        print(
            f"demo: needs the notebooks extra ({exc}); "
            "install it with: pip install 'bytefeed-helpers[notebooks]'",
            file=sys.stderr,
        )
        return 2

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
