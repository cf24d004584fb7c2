"""Manifests: the list of files (and their labels) that a stream reads.

A manifest is built once from a folder tree (``build_manifest``) or read from a CSV or a plain
list of paths (``read_manifest``). Streams keep it in memory and never re-read it per epoch.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from .errors import reason_of

#: File extensions (lower case, with the dot) that each kind of stream reads by default.
EXTENSIONS: dict[str, tuple[str, ...]] = {
    "image": (".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff"),
    "audio": (".wav", ".flac", ".ogg", ".oga", ".mp3"),
    "text": (".txt", ".text", ".md"),
}
KINDS = tuple(EXTENSIONS)


class ManifestError(ValueError):
    """A manifest file that cannot be read; the message names the file and the line."""


def _check_kind(kind: str | None) -> None:
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS} or None, not {kind!r}")


class Manifest:
    """Files and their labels, in a fixed order.

    Attributes:
        paths: list of file paths (str), absolute unless built from relative input.
        labels: ``int32 [N]`` label ids into ``class_names``; ``-1`` marks an unlabelled row.
        class_names: sorted class names (the order ``keras.utils.image_dataset_from_directory``
            uses, so label ids match Keras's).
        columns: any extra CSV columns, ``name -> list[str]`` aligned with ``paths``.
        kind: ``"image"``, ``"audio"``, ``"text"`` or None when unknown.
    """

    def __init__(
        self,
        paths: Sequence[str | os.PathLike],
        labels: Sequence[int] | np.ndarray | None = None,
        class_names: Sequence[str] = (),
        *,
        columns: dict[str, Sequence[str]] | None = None,
        kind: str | None = None,
    ):
        _check_kind(kind)
        self.paths: list[str] = [os.fspath(p) for p in paths]
        n = len(self.paths)
        self.labels = (
            np.full(n, -1, np.int32) if labels is None else np.asarray(labels, dtype=np.int32)
        )
        self.class_names: list[str] = list(class_names)
        self.columns: dict[str, list[str]] = {k: list(v) for k, v in (columns or {}).items()}
        self.kind = kind
        if self.labels.shape != (n,):
            raise ValueError(f"labels must have shape ({n},), got {self.labels.shape}")
        if n and self.labels.max(initial=-1) >= len(self.class_names):
            raise ValueError("a label id is out of range of class_names")
        for name, values in self.columns.items():
            if len(values) != n:
                raise ValueError(f"column {name!r} has {len(values)} values for {n} paths")

    @classmethod
    def from_labelled(
        cls,
        paths: Sequence[str | os.PathLike],
        label_names: Sequence[str],
        class_names: Sequence[str] | None = None,
        **kwargs,
    ) -> Manifest:
        """Build from paths and label *names*; an empty name marks an unlabelled row.

        ``class_names`` defaults to the sorted set of names; pass the training manifest's
        ``class_names`` to keep ids aligned across splits. An unknown name raises ValueError.
        """
        names = sorted({n for n in label_names if n}) if class_names is None else class_names
        index = {name: i for i, name in enumerate(names)}
        unknown = sorted({n for n in label_names if n and n not in index})
        if unknown:
            raise ValueError(f"labels not in class_names: {unknown[:5]}")
        labels = [index[n] if n else -1 for n in label_names]
        return cls(paths, labels, names, **kwargs)

    # --- basic protocol -----------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.paths)

    def __repr__(self) -> str:
        kind = f" kind={self.kind!r}" if self.kind else ""
        return f"<Manifest {len(self)} files, {len(self.class_names)} classes{kind}>"

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Manifest)
            and self.paths == other.paths
            and np.array_equal(self.labels, other.labels)
            and self.class_names == other.class_names
            and self.columns == other.columns
        )

    @property
    def labelled(self) -> bool:
        """True when every row has a label."""
        return bool(len(self)) and bool((self.labels >= 0).all())

    def label_names(self) -> list[str]:
        """Each row's class name ('' for unlabelled rows)."""
        return [self.class_names[i] if i >= 0 else "" for i in self.labels]

    def counts(self) -> dict[str, int]:
        """Rows per class, in ``class_names`` order (classes with no rows count 0)."""
        counter = Counter(self.labels.tolist())
        return {name: counter.get(i, 0) for i, name in enumerate(self.class_names)}

    def plot_counts(self, ax: Any = None, title: str | None = None) -> Any:
        """Bar chart of rows per class (matplotlib); returns the Axes."""
        import matplotlib.pyplot as plt

        ax = ax or plt.subplots(figsize=(5, 3))[1]
        counts = self.counts() or {"(unlabelled)": len(self)}
        ax.bar(list(counts), list(counts.values()), color="tab:blue")
        ax.set_ylabel("files")
        ax.set_title(title or f"{self.kind or 'files'} per class ({len(self)} in all)")
        ax.tick_params(axis="x", labelrotation=30)
        return ax

    def subset(self, indices: Sequence[int] | np.ndarray) -> Manifest:
        """The rows at ``indices`` (in that order), keeping ``class_names`` and ``kind``."""
        idx = np.asarray(indices, dtype=np.int64)
        return Manifest(
            [self.paths[i] for i in idx],
            self.labels[idx],
            self.class_names,
            columns={k: [v[i] for i in idx] for k, v in self.columns.items()},
            kind=self.kind,
        )

    def fingerprint(self, *, stat: bool = False) -> str:
        """A hex digest of paths, labels and class names (plus sizes and mtimes with ``stat``).

        Used to key caches: a changed manifest, or with ``stat`` a changed file, gets a new
        fingerprint. Missing files hash as size -1.
        """
        h = hashlib.sha256()
        h.update("\0".join(self.class_names).encode())
        h.update(self.labels.tobytes())
        for p in self.paths:
            h.update(p.encode("utf-8", "surrogateescape") + b"\0")
            if stat:
                try:
                    st = os.stat(p)
                    h.update(f"{st.st_size}:{st.st_mtime_ns}\0".encode())
                except OSError:
                    h.update(b"-1\0")
        return h.hexdigest()

    # --- writing ------------------------------------------------------------------------
    def write(self, path: str | os.PathLike) -> Path:
        """Write a CSV (``path,label`` plus extra columns); paths relative to its folder.

        Paths are written relative to the CSV's own folder where possible (so a folder with
        its manifest can be moved), POSIX-style; labels as class names.
        """
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        base = out.parent.resolve()
        names = self.label_names()
        with open(out, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["path", "label", *self.columns])
            for i, p in enumerate(self.paths):
                extra = [v[i] for v in self.columns.values()]
                writer.writerow([_relative_to(p, base), names[i], *extra])
        return out

    # --- splitting ----------------------------------------------------------------------
    def split(
        self, val: float = 0.2, test: float = 0.0, *, seed: int = 0, stratify: bool = True
    ) -> tuple[Manifest, ...]:
        """Split into ``(train, val)``, or ``(train, val, test)`` when ``test > 0``.

        Deterministic for a seed; every row lands in exactly one part; each part keeps
        manifest order. With ``stratify`` each class (and the unlabelled rows as one group)
        is split separately, so class proportions are kept (each class with at least two
        rows gives ``val`` at least one row when ``val > 0``).
        """
        if not (0 <= val < 1 and 0 <= test < 1 and val + test < 1):
            raise ValueError("val and test must be fractions in [0, 1) with val + test < 1")
        rng = np.random.default_rng(seed)
        groups = (
            [np.flatnonzero(self.labels == c) for c in np.unique(self.labels)]
            if stratify
            else [np.arange(len(self))]
        )
        parts: list[list[np.ndarray]] = [[], [], []]
        for group in groups:
            order = rng.permutation(group)
            n_val, n_test = _part_sizes(len(order), val, test)
            parts[1].append(order[:n_val])
            parts[2].append(order[n_val : n_val + n_test])
            parts[0].append(order[n_val + n_test :])
        subsets = [self.subset(np.sort(np.concatenate(p or [np.empty(0, int)]))) for p in parts]
        return tuple(subsets) if test > 0 else tuple(subsets[:2])

    # --- validating ---------------------------------------------------------------------
    def validate(
        self, kind: str | None = None, *, workers: int | None = None, progress: bool = True
    ) -> ValidationReport:
        """Open and decode every file (in parallel, one at a time per worker) and report.

        Returns a ``ValidationReport`` listing every missing, unreadable or undecodable
        file with its reason. Decoded data is dropped right away, so memory stays flat.
        """
        kind = kind or self.kind or _guess_kind(self.paths)
        check = _checker(kind)
        workers = workers or min(32, (os.cpu_count() or 1) * 2)
        with ThreadPoolExecutor(workers, thread_name_prefix="bytefeed-validate") as pool:
            results = pool.map(check, self.paths)
            bar = tqdm(results, total=len(self), desc=f"validate {kind}", disable=not progress)
            problems = [(p, r) for p, r in zip(self.paths, bar, strict=True) if r is not None]
        return ValidationReport(kind=kind, checked=len(self), problems=problems)


@dataclass
class ValidationReport:
    """What ``Manifest.validate`` found: ``problems`` holds ``(path, reason)`` pairs."""

    kind: str
    checked: int
    problems: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        """One line: how many files were checked and how many have problems."""
        return f"{self.checked} {self.kind} files checked, {len(self.problems)} with problems"

    def __str__(self) -> str:
        return "\n".join([self.summary(), *(f"{p}: {r}" for p, r in self.problems)])

    def write(self, path: str | os.PathLike) -> None:
        """Write the problems as a CSV ``path,reason``."""
        with open(path, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(["path", "reason"])
            writer.writerows(self.problems)


# --- building from a folder -------------------------------------------------------------
def build_manifest(
    root: str | os.PathLike,
    kind: str | None = None,
    extensions: Iterable[str] | None = None,
    *,
    progress: bool = True,
) -> Manifest:
    """One row per file under ``root``, found recursively, labelled by first-level subfolder.

    Hidden files and folders (names starting with '.') are skipped; files are listed, never
    opened. ``kind`` picks the default extensions for that kind (see ``EXTENSIONS``);
    ``extensions`` overrides them (case-insensitive, with or without the dot); with neither,
    every file is taken. Class names are the sorted first-level subfolders, empty ones
    included, exactly as ``keras.utils.image_dataset_from_directory`` lists them. When
    ``root`` has no subfolders, the manifest is unlabelled. Files lying directly in a
    ``root`` that has class folders are left out (as Keras does) with a warning.
    Rows are ordered by class, then by path.
    """
    _check_kind(kind)
    root_path = Path(root)
    if not root_path.is_dir():
        raise FileNotFoundError(f"not a folder: {root}")
    exts = _normalise_extensions(extensions, kind)
    class_dirs = sorted(
        e.name for e in os.scandir(root_path) if e.is_dir() and not e.name.startswith(".")
    )
    paths: list[str] = []
    label_names: list[str] = []
    with tqdm(desc=f"scan {root_path.name}", unit=" files", disable=not progress, delay=1) as bar:
        if not class_dirs:
            paths = _scan(root_path, exts, bar, recurse=False)
            label_names = [""] * len(paths)
        else:
            loose = _scan(root_path, exts, bar, recurse=False)
            if loose:
                warnings.warn(
                    f"{len(loose)} files lie directly in {root} outside any class folder and "
                    "were left out (as keras.utils.image_dataset_from_directory does)",
                    stacklevel=2,
                )
            for name in class_dirs:
                found = _scan(root_path / name, exts, bar, recurse=True)
                paths += found
                label_names += [name] * len(found)
    class_names = class_dirs
    return Manifest.from_labelled(paths, label_names, class_names, kind=kind)


def _normalise_extensions(extensions: Iterable[str] | None, kind: str | None) -> set[str] | None:
    if extensions is not None:
        return {("." + e.lower().lstrip(".")) for e in extensions}
    return set(EXTENSIONS[kind]) if kind else None


def _scan(folder: Path, exts: set[str] | None, bar: tqdm, *, recurse: bool) -> list[str]:
    """Files under ``folder`` (sorted by relative path), without opening any of them."""
    found: list[str] = []
    stack = [os.fspath(folder)]
    while stack:
        current = stack.pop()
        with os.scandir(current) as it:
            for entry in it:
                if entry.name.startswith("."):
                    continue
                if entry.is_dir():
                    if recurse:
                        stack.append(entry.path)
                elif entry.is_file() and (
                    exts is None or os.path.splitext(entry.name)[1].lower() in exts
                ):
                    found.append(entry.path)
        bar.update(0)
    bar.update(len(found))
    # sort by path components so "a/b" < "a-b/c" stays stable across platforms
    return sorted(found, key=lambda p: Path(p).parts)


def _relative_to(path: str, base: Path) -> str:
    try:
        return Path(os.path.relpath(Path(path).resolve(), base)).as_posix()
    except ValueError:  # another drive on Windows
        return Path(path).as_posix()


def _part_sizes(n: int, val: float, test: float) -> tuple[int, int]:
    n_val = round(n * val)
    n_test = round(n * test)
    if val > 0 and n_val == 0 and n >= 2:
        n_val = 1
    if test > 0 and n_test == 0 and n - n_val >= 2:
        n_test = 1
    return n_val, min(n_test, n - n_val)


# --- reading a manifest file ------------------------------------------------------------
def read_manifest(
    path: str | os.PathLike, *, class_names: Sequence[str] | None = None, kind: str | None = None
) -> Manifest:
    """Read a manifest: a CSV with a header, or a plain list of paths, one per line.

    CSV: the header names a ``path`` column, optionally ``label``, and any extra columns
    (kept in ``Manifest.columns``). A plain list (no header naming ``path``) gives an
    unlabelled manifest. UTF-8 with or without BOM, CRLF or LF line ends, quoted fields with
    commas or newlines, and blank lines are all accepted. Relative paths resolve against the
    manifest's own folder. An empty label marks an unlabelled row. ``class_names`` fixes the
    label ids (e.g. a training manifest's), otherwise they are the sorted label names.

    Raises:
        FileNotFoundError: the manifest does not exist.
        ManifestError: a malformed row; the message names the file and the line number.
    """
    src = Path(path)
    raw = src.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ManifestError(f"{src}:{line}: manifest is not UTF-8 text ({exc.reason})") from exc
    base = src.resolve().parent
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    header = [h.strip().lower() for h in next(csv.reader([first]), [])]
    if "path" in header:
        paths, names, columns = _read_csv(src, text)
    else:
        paths, names, columns = _read_list(text), None, {}
    resolved = [p if os.path.isabs(p) else os.path.normpath(base / p) for p in paths]
    if names is None:
        return Manifest(resolved, None, class_names or (), columns=columns, kind=kind)
    try:
        return Manifest.from_labelled(resolved, names, class_names, columns=columns, kind=kind)
    except ValueError as exc:
        raise ManifestError(f"{src}: {exc}") from exc


def _read_list(text: str) -> list[str]:
    return [ln.strip() for ln in text.splitlines() if ln.strip()]


def _read_csv(src: Path, text: str) -> tuple[list[str], list[str] | None, dict[str, list[str]]]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: list[str] | None = None
    paths: list[str] = []
    names: list[str] = []
    extra: dict[str, list[str]] = {}
    try:
        for row in reader:
            if not row or all(not f.strip() for f in row):
                continue  # blank line
            if header is None:
                header = [h.strip() for h in row]
                lower = [h.lower() for h in header]
                if len(set(lower)) != len(lower):
                    raise ManifestError(f"{src}:{reader.line_num}: duplicate column names")
                extra = {
                    h: []
                    for h, lo in zip(header, lower, strict=True)
                    if lo not in ("path", "label")
                }
                continue
            if len(row) != len(header):
                raise ManifestError(
                    f"{src}:{reader.line_num}: expected {len(header)} fields "
                    f"({','.join(header)}), found {len(row)}"
                )
            record = dict(zip(header, row, strict=True))
            by_lower = {k.lower(): v for k, v in record.items()}
            if not by_lower["path"].strip():
                raise ManifestError(f"{src}:{reader.line_num}: empty path")
            paths.append(by_lower["path"].strip())
            names.append(by_lower.get("label", "").strip())
            for k in extra:
                extra[k].append(record[k])
    except csv.Error as exc:
        raise ManifestError(f"{src}:{reader.line_num}: malformed CSV ({exc})") from exc
    has_label = header is not None and "label" in [h.lower() for h in header]
    return paths, (names if has_label else None), extra


# --- validation helpers -----------------------------------------------------------------
def _guess_kind(paths: Sequence[str]) -> str:
    votes = Counter(
        kind
        for p in paths[:1000]
        for kind, exts in EXTENSIONS.items()
        if os.path.splitext(p)[1].lower() in exts
    )
    if not votes:
        raise ValueError("cannot tell the kind of these files; pass kind='image'|'audio'|'text'")
    return votes.most_common(1)[0][0]


def _checker(kind: str) -> Callable[[str], str | None]:
    """A function ``path -> None`` (fine) or a reason string, for ``kind``."""
    _check_kind(kind)
    if kind == "image":
        from .decoders.image import decode_image

        def decode(p: str) -> object:
            # a tiny target lets JPEGs decode at 1/8 scale: every byte is still parsed
            return decode_image(p, (16, 16))
    elif kind == "audio":
        from .decoders.audio import decode_audio

        def decode(p: str) -> object:
            return decode_audio(p, sample_rate=None, duration=None)
    else:
        from .decoders.text import decode_text

        decode = decode_text

    def check(p: str) -> str | None:
        try:
            decode(p)
        except Exception as exc:  # every failure is a finding, never a crash
            return reason_of(exc)
        return None

    return check
