"""``print_kit_warnings()``: the kit's own warnings as plain output lines, for a notebook cell
that reads broken files on purpose.

A stream warns once per epoch in which it skipped files (``BytefeedWarning``: "image_batches:
skipped 4 bad file(s) in epoch 0 ..."). In a script that is what it should be, a real warning
on stderr. JupyterLab draws stderr in red, though, and a cell that *demonstrates* skipping
would look as if it had failed. Inside ``with print_kit_warnings():`` those warnings are
recorded and printed to stdout as ``warning: <message>`` when the block ends, so the reader
still sees what the kit said, as an ordinary line.

Only ``BytefeedWarning`` (and its subclasses) is turned into a line. Every other warning raised
in the block is handed on as it was (``warnings.showwarning`` with its own category, file and
line), after the block, in the order raised: a library's deprecation notice still shows up
where it always does. Like ``warnings.catch_warnings``, which it uses, this swaps module-wide
state and is not thread-safe: use it around a cell's lines, not inside worker code.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager

from ..errors import BytefeedWarning

#: What each printed line starts with.
PREFIX = "warning: "


@contextmanager
def print_kit_warnings() -> Iterator[list[str]]:
    """Record the kit's ``BytefeedWarning``s raised inside the block and print each once to
    stdout as ``"warning: <message>"`` when the block ends, whether it ends normally or raises.

    Yields a list, empty until the block ends, then holding the printed messages (``str``, in
    the order raised, without the prefix), for a notebook that counts them. "Once" is Python's
    own ``"default"`` rule: a repeat of the same message from the same line (a loop over
    epochs that warns about the same thing) is printed once; the same text from another line
    (a second stream, a resumed one) is printed again, as a script would show it.

    Inside the block every ``BytefeedWarning`` is recorded, even one a filter outside would
    hide or one already shown before (the block exists to show them). Other warnings go
    through the filters in force and, when those let them through, are re-emitted unchanged
    after the block with ``warnings.showwarning``; one a filter turns into an error raises
    inside the block as usual.
    """
    shown: list[str] = []
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            # The filters in force stay; "always" for the kit's warnings only, so that one
            # already shown (Python remembers where) or hidden by a filter is recorded too.
            warnings.simplefilter("always", BytefeedWarning)
            yield shown
    finally:
        # Outside catch_warnings by now: the warnings handed on reach the showwarning in
        # force around the block (a terminal, pytest's recorder), not this block's list.
        _hand_on(caught, shown)


def _hand_on(caught: list[warnings.WarningMessage], shown: list[str]) -> None:
    """Print the kit's warnings of ``caught`` (each once) into ``shown`` and stdout; re-emit
    the others as they were."""
    seen: set[tuple[type[Warning], str, str, int]] = set()
    for w in caught:
        if issubclass(w.category, BytefeedWarning):
            text = str(w.message)
            key = (w.category, text, w.filename, w.lineno)
            if key not in seen:
                seen.add(key)
                shown.append(text)
                print(f"{PREFIX}{text}", flush=True)
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno, w.file, w.line)
