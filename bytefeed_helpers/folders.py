"""``build_manifest``: the files of a folder tree, labelled by their class folders.

Walks the tree as Keras's ``index_directory`` does (same file order, ``labels=None``,
``class_names``, ``follow_links``), never opening or stat-ing a file, and lists each real
folder once; what it leaves out (broken links, link loops, special files, unreadable
folders) goes to ``Manifest.skipped`` with a stable reason and one warning.
"""

from __future__ import annotations

import errno
import operator
import os
import stat
import warnings
from collections import Counter, deque
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .errors import BytefeedWarning, SkippedFile, reason_of
from .manifest import EXTENSIONS, Manifest, check_kind

# --- building from a folder -------------------------------------------------------------
#: Reasons ``build_manifest`` records in ``Manifest.skipped`` (stable texts, no addresses).
BROKEN_LINK = "broken link"
LINK_LOOP = "link loop"
NOT_REGULAR = "not a regular file"
LINK_NOT_FOLLOWED = "link to a folder, not followed (pass follow_links=True)"
FOLDER_SEEN = "folder already listed (a link loop or a second link to it)"


def build_manifest(
    root: str | os.PathLike,
    kind: str | None = None,
    extensions: Iterable[str] | None = None,
    *,
    labels: str | None = "inferred",
    class_names: Sequence[str] | None = None,
    follow_links: bool = False,
    progress: bool = True,
) -> Manifest:
    """One row per file under ``root``, found recursively, labelled by first-level subfolder.

    Hidden files and folders (names starting with '.') are skipped; files are listed, never
    opened, and never stat-ed: a plain entry's type comes with its name from the directory
    listing (``os.scandir``), so a million files cost a million names, not a million system
    calls. ``kind`` picks the default extensions for that kind (see ``EXTENSIONS``);
    ``extensions`` overrides them (case-insensitive, with or without the dot); with neither,
    every file is taken.

    Labels, as ``keras.utils.image_dataset_from_directory``'s ``labels`` and
    ``class_names``: with ``labels="inferred"`` class names are the sorted first-level
    subfolders, empty ones included; ``class_names=[...]`` picks some of them and fixes
    their order (label ``i`` is ``class_names[i]``); files outside those folders (other
    folders, and files lying directly in ``root``) are left out with one warning. When
    ``root`` has no subfolders, the manifest is unlabelled. With ``labels=None`` every file
    at any depth is a row, unlabelled (label -1, no class names).

    Order, exactly Keras's (``index_directory`` with ``shuffle=False``), so a list of
    labels made for Keras lines up: by class, then folder by folder in the order of the
    folders' path strings (``a`` < ``a/sub`` < ``a/sub-x`` < ``a/sub/y``), each folder's
    files by name. So ``a/sub-x.png`` (a file of ``a``) comes before ``a/sub/x.png``.

    Links, as in Keras (``follow_links=False`` by default): a link to a file is listed under
    the link's own path; a class folder that is itself a link is a class and is listed (Keras
    lists it too); a link to a folder further down is followed only with
    ``follow_links=True``. Every real folder is listed once, whatever the number of ways to
    reach it: real folders are listed before links are followed, so a link into another
    class's folder never takes its files, and a link loop (``a/b -> a``) is noticed, not
    followed again (Keras lists such files twice, or loops). Nothing here raises for a bad
    entry below ``root``: broken links, link loops, links not followed, entries that are
    not regular files (FIFOs, sockets, devices) and folders that cannot be listed are left
    out, recorded in ``Manifest.skipped`` with a stable reason, and summed up in one
    ``BytefeedWarning``. Entries whose extension is not wanted are ignored without a record.

    Raises:
        FileNotFoundError: ``root`` is not a folder.
        OSError: ``root`` itself cannot be listed (e.g. ``PermissionError``), naming it.
        ValueError: unknown ``kind``, ``labels`` not ``"inferred"`` or None, ``class_names``
            with ``labels=None``, naming a folder ``root`` does not have, empty or with a
            name twice, or ``follow_links`` not a bool.
    """
    check_kind(kind)
    inferred = isinstance(labels, str) and labels == "inferred"
    if not inferred and labels is not None:
        raise ValueError(f"labels must be 'inferred' or None. Received: labels={labels!r}")
    chosen = _check_class_names(class_names, inferred)
    if not isinstance(follow_links, bool):
        raise ValueError(
            f"follow_links must be True or False. Received: follow_links={follow_links!r}"
        )
    root_path = Path(root)
    if not root_path.is_dir():
        raise FileNotFoundError(f"not a folder: {root}")
    exts = _normalise_extensions(extensions, kind)
    top = os.fspath(root_path)
    with tqdm(desc=f"scan {root_path.name}", unit=" files", disable=not progress, delay=1) as bar:
        walker = _Walker(exts, follow_links, bar)
        if not inferred:
            order: list[str] = []
            found = walker.classes([("", top, False)], strict=True)
        else:
            loose, classes = walker.top(top)
            folders = sorted(name for name, _, _ in classes)
            order = folders if chosen is None else chosen
            if chosen is not None and not set(chosen) <= set(folders):
                raise ValueError(
                    "class_names must name folders of root (Keras: 'The `class_names` passed "
                    f"did not match the names of the subdirectories'). Expected: {folders} (or "
                    f"a subset of it), but received: class_names={chosen}"
                )
            found = walker.classes(classes) if classes else {"": [(top, loose)]}
            _warn_left_out(root, loose if classes else [], found, order, chosen)
    paths: list[str] = []
    counts: list[int] = []
    for name in order or [""]:
        # Keras's order: os.walk's folders sorted by path string, each one's files by name
        files = [f for _, group in sorted(found.get(name, []), key=lambda g: g[0]) for f in group]
        paths += files
        counts.append(len(files))
    ids = np.repeat(np.arange(len(order)) if order else np.array([-1]), counts).astype(np.int32)
    manifest = Manifest(paths, ids, order, kind=kind)
    manifest.skipped = [s for s, name in walker.skipped if name is None or name in (order or [""])]
    if manifest.skipped:
        counted = Counter(s.reason for s in manifest.skipped).most_common()
        summary = "; ".join(f"{n} {reason}" for reason, n in counted)
        n = len(manifest.skipped)
        warnings.warn(
            f"build_manifest left out {n} {'entry' if n == 1 else 'entries'} under {root} "
            f"({summary}); Manifest.skipped lists them",
            BytefeedWarning,
            stacklevel=2,
        )
    return manifest


def _check_class_names(class_names: Sequence[str] | None, inferred: bool) -> list[str] | None:
    if class_names is None:
        return None
    if not inferred:
        raise ValueError(
            "class_names picks class folders, so it needs labels='inferred'; with labels=None "
            f"there are no classes. Received: class_names={class_names!r}"
        )
    if isinstance(class_names, (str, bytes)) or not all(isinstance(n, str) for n in class_names):
        raise ValueError(
            f"class_names must be a list of folder names. Received: class_names={class_names!r}"
        )
    chosen = list(class_names)
    if not chosen or len(set(chosen)) != len(chosen):
        raise ValueError(
            "class_names must name at least one folder, each once. "
            f"Received: class_names={class_names!r}"
        )
    return chosen


def _warn_left_out(
    root: str | os.PathLike,
    loose: list[str],
    found: dict[str, list[tuple[str, list[str]]]],
    order: list[str],
    chosen: list[str] | None,
) -> None:
    """One warning for the files ``build_manifest`` leaves out of a labelled tree."""
    if chosen is None:
        if loose:
            warnings.warn(
                f"{len(loose)} files lie directly in {root} outside any class folder and "
                "were left out (as keras.utils.image_dataset_from_directory does)",
                stacklevel=3,
            )
        return
    others = {
        name: sum(len(g) for _, g in groups)
        for name, groups in found.items()
        if name not in order and groups
    }
    if not loose and not others:
        return
    parts = [f"{len(loose)} directly in {root}"] if loose else []
    parts += [f"{n} in {name!r}" for name, n in sorted(others.items())]
    total = len(loose) + sum(others.values())
    warnings.warn(
        f"{total} files lie outside the folders of class_names and were left out "
        f"({', '.join(parts)})",
        stacklevel=3,
    )


def _normalise_extensions(extensions: Iterable[str] | None, kind: str | None) -> set[str] | None:
    if extensions is not None:
        return {("." + e.lower().lstrip(".")) for e in extensions}
    return set(EXTENSIONS[kind]) if kind else None


def _entry_kind(entry: os.DirEntry) -> tuple[str, str]:
    """``("file" | "dir" | "link_dir" | "skip", reason)`` for one directory entry.

    Only links cost a ``stat``: plain entries are told apart by the type ``scandir`` read
    with the names. ``DirEntry.is_dir()`` on a link loop raises ``OSError`` (ELOOP), which
    is why links are stat-ed here and every error becomes a reason.
    """
    try:
        if entry.is_symlink():
            try:
                mode = os.stat(entry.path).st_mode
            except FileNotFoundError:
                return "skip", BROKEN_LINK
            except OSError as exc:
                return "skip", LINK_LOOP if exc.errno == errno.ELOOP else reason_of(exc)
            if stat.S_ISDIR(mode):
                return "link_dir", ""
            return ("file", "") if stat.S_ISREG(mode) else ("skip", NOT_REGULAR)
        if entry.is_dir(follow_symlinks=False):
            return "dir", ""
        if entry.is_file(follow_symlinks=False):
            return "file", ""
        return "skip", NOT_REGULAR
    except OSError as exc:  # the entry vanished or cannot be stat-ed
        return "skip", reason_of(exc)


def _folder_id(path: str) -> tuple[int, int] | None:
    """``(st_dev, st_ino)`` of the folder ``path`` leads to (through links), None if gone."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


_NAME = operator.attrgetter("name")
#: Files per folder: ``[(folder, [file paths, by name]), ...]``, the folders in walk order.
_Groups = list[tuple[str, list[str]]]


class _Walker:
    """Lists folders without opening a file; every real folder is listed at most once."""

    def __init__(self, exts: set[str] | None, follow_links: bool, bar: tqdm):
        self.exts = exts
        self.follow_links = follow_links
        self.bar = bar
        self.skipped: list[tuple[SkippedFile, str | None]] = []  # with the class it is in
        self.seen: set[tuple[int, int]] = set()
        self.current: str | None = None  # the class being listed (None: root's own entries)

    def _wanted(self, name: str) -> bool:
        # os.path.splitext(name)[1] for a name that does not start with a dot, only faster
        dot = name.rfind(".")
        return self.exts is None or (name[dot:].lower() if dot > 0 else "") in self.exts

    def _skip(self, path: str, reason: str) -> None:
        self.skipped.append((SkippedFile(path, reason), self.current))

    def _list(
        self, folder: str, *, strict: bool = False
    ) -> tuple[list[str], list[str], list[str]] | None:
        """``(files, folders, folder links)`` directly in ``folder``, by name.

        A folder that cannot be listed is recorded and gives None (``strict``: raises the
        ``OSError`` again, naming the folder).
        """
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=_NAME)
        except OSError as exc:
            if strict:
                raise type(exc)(
                    exc.errno, f"cannot list the folder ({exc.strerror})", folder
                ) from exc
            self._skip(folder, f"cannot list folder: {reason_of(exc)}")
            return None
        files: list[str] = []
        dirs: list[str] = []
        links: list[str] = []
        for entry in entries:
            name = entry.name
            if name[0] == ".":
                continue
            try:  # the common case first: a regular file, told by the listing's type alone
                regular = entry.is_file(follow_symlinks=False)
            except OSError:
                regular = False
            if regular:
                if self._wanted(name):
                    files.append(entry.path)
                continue
            what, reason = _entry_kind(entry)
            if what == "dir":
                dirs.append(entry.path)
            elif what == "link_dir":
                links.append(entry.path)
            elif self._wanted(entry.name):
                if what == "file":
                    files.append(entry.path)
                else:
                    self._skip(entry.path, reason)
        self.bar.update(len(files))
        return files, dirs, links

    def top(self, root: str) -> tuple[list[str], list[tuple[str, str, bool]]]:
        """The files directly in ``root`` and its class folders ``(name, path, is_link)``."""
        root_id = _folder_id(root)
        if root_id is not None:
            self.seen.add(root_id)  # a class link back to root is a loop, not a class's files
        self.current = None
        files, dirs, links = self._list(root, strict=True) or ([], [], [])
        classes = [(os.path.basename(d), d, False) for d in dirs]
        classes += [(os.path.basename(d), d, True) for d in links]
        return files, classes

    def classes(
        self, classes: list[tuple[str, str, bool]], *, strict: bool = False
    ) -> dict[str, _Groups]:
        """Files per class name, folder by folder; real class folders first, then class links
        (as Keras, a class that is a link is listed whether or not links are followed), then,
        with ``follow_links``, the links found below, in the order they were found.
        ``strict``: the class folders themselves must be listable (``root`` with
        ``labels=None``)."""
        found: dict[str, _Groups] = {name: [] for name, _, _ in classes}
        pending: deque[tuple[str, str]] = deque()
        for name, path, _ in sorted(classes, key=lambda c: (c[2], c[0])):
            self._tree(name, path, found[name], pending, strict=strict)
        while pending:  # only filled with follow_links
            name, link = pending.popleft()
            self._tree(name, link, found[name], pending)
        return found

    def _tree(
        self,
        name: str,
        top: str,
        out: _Groups,
        pending: deque[tuple[str, str]],
        *,
        strict: bool = False,
    ) -> None:
        """List ``top`` and its real subfolders into ``out``; links below go to ``pending``."""
        self.current = name
        stack = [top]
        while stack:
            folder = stack.pop()
            folder_id = _folder_id(folder)
            if folder_id is not None and folder_id in self.seen:
                self._skip(folder, FOLDER_SEEN)
                continue
            if folder_id is not None:
                self.seen.add(folder_id)
            listing = self._list(folder, strict=strict and folder is top)
            if listing is None:
                continue
            files, dirs, links = listing
            if files:
                out.append((folder, files))
            stack += reversed(dirs)  # depth first, by name
            for link in links:
                if self.follow_links:
                    pending.append((name, link))
                else:
                    self._skip(link, LINK_NOT_FOLLOWED)
