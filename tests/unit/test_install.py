"""`pip install bytefeed-helpers` without extras is enough to stream: with every package of
the `notebooks` extra made unimportable, a fresh interpreter builds manifests and iterates an
image, an audio (waveform and log-mel) and a text stream over data_sample/."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from support import DATA, NOTEBOOK_MODULES, ROOT

BLOCKED = sorted(NOTEBOOK_MODULES)

# Runs in a fresh interpreter so that nothing this test session imported leaks in. A finder
# first on sys.meta_path answers every blocked import as a missing package would; libraries
# that try one optionally (Keras tries matplotlib and IPython) then take their fallback, as
# they would after an install without the extra.
WITHOUT_EXTRA = r"""
import importlib.abc
import json
import os
import sys

BLOCKED = set(sys.argv[1].split(","))
tried = set()  # (blocked module, file whose import statement asked for it)


def importer():  # the file of the innermost frame outside the import machinery
    frame = sys._getframe(2)
    while frame is not None and (
        frame.f_code.co_filename.startswith("<frozen") or "importlib" in frame.f_code.co_filename
    ):
        frame = frame.f_back
    return frame.f_code.co_filename if frame is not None else ""


class Absent(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            tried.add((name, importer()))
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, Absent())
for name in BLOCKED:  # the blocker itself works, or this test would prove nothing
    try:
        __import__(name)
    except ModuleNotFoundError:
        pass
    else:
        raise SystemExit(f"{name} was importable")
if {where for _, where in tried} != {"<string>"}:  # this script asked: importer() finds it
    raise SystemExit(f"the finder names the wrong importers: {sorted(tried)}")
tried.clear()
"""

SCRIPT = (
    WITHOUT_EXTRA
    + r"""
import bytefeed_helpers as bf

data = sys.argv[2]
images = bf.build_manifest(f"{data}/images", kind="image", progress=False)
clips = bf.build_manifest(f"{data}/audio", kind="audio", progress=False)
docs = bf.build_manifest(f"{data}/text", kind="text", progress=False)
streams = {
    "image": (images, bf.image_batches(images, 8, (32, 32), seed=0)),
    "audio": (clips, bf.audio_batches(clips, 8, 8000, 0.5, seed=0)),
    "logmel": (clips, bf.audio_batches(clips, 8, 8000, 0.5, features="logmel", n_mels=20,
                                       shuffle=False)),
    "text": (docs, bf.text_batches(docs, 8, seed=0)),
}
out = {}
for kind, (manifest, stream) in streams.items():
    samples, shapes, dtypes = 0, set(), set()
    for x, y in stream:
        samples += len(y)
        shapes.add(tuple(x.shape[1:]))
        dtypes.add((str(x.dtype), str(y.dtype)))
    out[kind] = {
        "rows": len(manifest),
        "samples": samples,
        "skipped": len(stream.errors),
        "shapes": sorted(shapes),
        "dtypes": sorted(dtypes),
    }
out["loaded"] = sorted(m for m in sys.modules if m.partition(".")[0] in BLOCKED)
out["tried"] = sorted(tried)
out["package"] = os.path.dirname(bf.__file__) + os.sep
print("RESULT " + json.dumps(out))
"""
)

# The one command that needs the extra says so, instead of a traceback.
DEMO = (
    WITHOUT_EXTRA
    + r"""
from bytefeed_helpers.cli import main

sys.exit(main(["demo", "--notebooks", sys.argv[2], "--out", sys.argv[3]]))
"""
)


def _run(script: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONNOUSERSITE="1")
    env.pop("MPLBACKEND", None)  # nothing here may need a plotting backend
    return subprocess.run(
        [sys.executable, "-c", script, ",".join(BLOCKED), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def result() -> dict:
    done = _run(SCRIPT, str(DATA))
    assert done.returncode == 0, done.stderr[-4000:]
    (line,) = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
    return json.loads(line.removeprefix("RESULT "))


@pytest.mark.parametrize("kind", ["image", "audio", "logmel", "text"])
def test_every_sample_streams_without_the_notebooks_extra(result, kind):
    got = result[kind]
    assert got["rows"] > 0 and got["skipped"] == 0
    assert got["samples"] == got["rows"]  # none lost, none duplicated


def test_batches_have_the_documented_shapes_and_dtypes(result):
    assert result["image"]["shapes"] == [[32, 32, 3]]
    assert result["image"]["dtypes"] == [["uint8", "int32"]]
    assert result["audio"]["shapes"] == [[4000]]
    assert result["audio"]["dtypes"] == [["float32", "int32"]]
    assert result["logmel"]["shapes"] == [[1 + 4000 // 160, 20]]  # hop_length 160
    assert result["logmel"]["dtypes"] == [["float32", "int32"]]
    assert result["text"]["dtypes"] == [["int32", "int32"]]
    assert all(len(shape) == 1 and shape[0] > 0 for shape in result["text"]["shapes"])


def test_no_notebook_package_was_loaded(result):
    assert result["loaded"] == []


def test_the_kit_itself_never_asks_for_a_notebook_package(result):
    # Libraries may try one and fall back (Keras tries matplotlib and IPython); no import
    # statement of bytefeed_helpers may ask for one on these paths.
    asked = [
        (name, where) for name, where in result["tried"] if where.startswith(result["package"])
    ]
    assert asked == []


def test_demo_without_the_extra_says_how_to_install_it(tmp_path):
    (tmp_path / "01_x.ipynb").write_text("{}", encoding="utf-8")  # never opened
    done = _run(DEMO, str(tmp_path), str(tmp_path / "out"))
    assert done.returncode == 2, done.stderr[-4000:]
    assert "pip install 'bytefeed-helpers[notebooks]'" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out").exists()
