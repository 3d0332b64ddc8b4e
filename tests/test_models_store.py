"""`mnist-edge models install|list|use|rollback` and the reload of `serve` on SIGHUP: a model
is verified before it is installed, every change is atomic, the default follows, and a running
server takes the new default without dropping its viewers."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mnist_edge.device.cli import app
from mnist_edge.device.inference import bundled, store

from .conftest import ROOT, ServeProcess

TUTORIAL = bundled.MODELS_DIR / "tutorial"
EXAMPLE7 = ROOT / "examples" / "digit7_test0.png"


def cli(*args: str):
    return CliRunner().invoke(app, list(args))


def model_used() -> str:
    res = cli("classify", str(EXAMPLE7), "--json")
    assert res.exit_code == 0, res.output
    return Path(json.loads(res.stdout.splitlines()[0])["model"]).name


def snapshot() -> dict[str, bytes]:
    """Every file under the store, with its content."""
    return {str(p.relative_to(store.root())): p.read_bytes()
            for p in sorted(store.root().rglob("*")) if p.is_file()} if store.root().exists() else {}


def test_install_makes_the_default_and_rollback_goes_back():
    assert model_used() == "mnist_robust_int8.tflite"
    res = cli("models", "install", str(TUTORIAL), "--name", "mine")
    assert res.exit_code == 0, res.output
    assert "default: mine (was robust" in res.output
    assert model_used() == "mnist_cnn_int8.tflite"  # every command's default now
    listed = {r["name"]: r for r in json.loads(cli("models", "list", "--json").stdout)}
    assert listed["mine"]["default"] and listed["mine"]["installed"]
    assert listed["mine"]["sha256"] == listed["tutorial"]["sha256"]
    assert sorted(p.name for p in (store.root() / "mine").iterdir()) == [
        "manifest.json", "mnist_cnn_float32.tflite", "mnist_cnn_int8.tflite"]

    assert cli("models", "rollback").exit_code == 0
    assert model_used() == "mnist_robust_int8.tflite"
    assert cli("models", "rollback").exit_code == 0  # twice: forward again
    assert model_used() == "mnist_cnn_int8.tflite"
    assert cli("models", "use", "robust").exit_code == 0
    assert model_used() == "mnist_robust_int8.tflite"
    assert cli("classify", str(EXAMPLE7), "--model", "mine").exit_code == 0  # by name


def test_reinstalling_a_name_keeps_the_older_one_for_rollback(tmp_path):
    assert cli("models", "install", str(TUTORIAL / "mnist_cnn_int8.tflite")).exit_code == 0
    first = store.installed()["personal"].read_bytes()
    newer = tmp_path / "newer"
    shutil.copytree(bundled.MODELS_DIR / "robust", newer)
    assert cli("models", "install", str(newer)).exit_code == 0
    names = set(store.installed())
    older = next(n for n in names if n.startswith("personal~"))
    assert store.default_name() == "personal"
    assert store.installed()["personal"].name == "mnist_robust_int8.tflite"
    assert cli("models", "rollback").exit_code == 0
    assert store.default_name() == older and store.installed()[older].read_bytes() == first


@pytest.mark.parametrize("damage", ["bytes", "no-manifest", "not-listed"])
def test_a_model_nothing_vouches_for_is_refused_and_nothing_changes(tmp_path, damage):
    assert cli("models", "install", str(TUTORIAL), "--name", "good").exit_code == 0
    before = snapshot()
    family = tmp_path / "family"
    shutil.copytree(TUTORIAL, family)
    int8 = family / "mnist_cnn_int8.tflite"
    if damage == "bytes":
        data = bytearray(int8.read_bytes())
        data[len(data) // 2] ^= 0xFF
        int8.write_bytes(bytes(data))
        target: Path = family
    elif damage == "no-manifest":
        (family / "manifest.json").unlink()
        target = int8
    else:
        target = family / "other.tflite"
        shutil.copy(int8, target)
    res = cli("models", "install", str(target), "--name", "good")
    assert res.exit_code == 2 and res.output.startswith("error: ") and len(res.output.splitlines()) == 1
    assert snapshot() == before  # the installed model, the pointers: untouched
    assert model_used() == "mnist_cnn_int8.tflite"


def _tree(top: Path) -> dict[str, bytes]:
    """Every file and link under `top`, with its content (links by their target)."""
    return {str(p.relative_to(top)): (os.readlink(p).encode() if p.is_symlink() else p.read_bytes())
            for p in sorted(top.rglob("*")) if p.is_file() or p.is_symlink()}


HOSTILE = {  # what the manifest names as the int8 model's file
    "parent": "../../../../bin/payload",
    "absolute": "/tmp/mnist-edge-payload",
    "folder": "sub/mnist_cnn_int8.tflite",
    "dotdot": "..",
    "nul": "mnist_cnn_int8.tflite\x00.txt",
    "newline": "mnist\ncnn_int8.tflite",
    "backslash": "..\\..\\payload",
    "not-a-string": 7,
}


@pytest.mark.parametrize("case", [*HOSTILE, "twice", "twice-two-hashes", "link", "huge",
                                  "models-not-a-list"])
def test_a_manifest_cannot_write_outside_the_store(tmp_path, case):
    """A manifest from elsewhere names files: only plain names inside the source folder, each
    once, regular files of a model's size are accepted; anything else is refused with one line
    and nothing is written anywhere (the store, the source, the folders around them)."""
    assert cli("models", "install", str(TUTORIAL), "--name", "good").exit_code == 0
    family = tmp_path / "src" / "a" / "b" / "family"
    shutil.copytree(TUTORIAL, family)
    manifest = json.loads((family / "manifest.json").read_text())
    int8 = next(m for m in manifest["models"] if m["variant"] == "int8")
    payload = (family / int8["file"]).read_bytes()
    if case in HOSTILE:
        named = HOSTILE[case]
        int8["file"] = named
        if isinstance(named, str) and "\x00" not in named:
            if case in ("parent", "backslash"):  # the file it names exists, hash matching
                target = family.joinpath(*named.replace("\\", "/").split("/"))
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(payload)
    elif case == "twice":
        manifest["models"].append(dict(int8))
    elif case == "twice-two-hashes":
        manifest["models"].append({**int8, "sha256": "0" * 64, "variant": "float32"})
    elif case == "link":
        (family / int8["file"]).unlink()
        outside = tmp_path / "outside.tflite"
        outside.write_bytes(payload)
        (family / int8["file"]).symlink_to(outside)
    elif case == "huge":
        with open(family / int8["file"], "ab") as f:
            f.truncate(store.MAX_MODEL_BYTES + 1)
    else:
        manifest["models"] = "mnist_cnn_int8.tflite"
    (family / "manifest.json").write_text(json.dumps(manifest))
    before_store, before_tmp = snapshot(), _tree(tmp_path)
    res = cli("models", "install", str(family), "--name", "good")
    assert res.exit_code == 2, res.output
    assert res.output.startswith("error: ") and len(res.output.splitlines()) == 1, res.output
    assert snapshot() == before_store and _tree(tmp_path) == before_tmp
    assert not Path("/tmp/mnist-edge-payload").exists()
    assert model_used() == "mnist_cnn_int8.tflite"


def test_an_installed_manifest_cannot_point_outside_its_folder(tmp_path):
    assert cli("models", "install", str(TUTORIAL), "--name", "mine").exit_code == 0
    outside = tmp_path / "elsewhere.tflite"
    shutil.copy(TUTORIAL / "mnist_cnn_int8.tflite", outside)
    installed = store.root() / "mine" / "manifest.json"
    manifest = json.loads(installed.read_text())
    for m in manifest["models"]:
        m["file"] = os.path.relpath(outside, installed.parent) if m["variant"] == "int8" else m["file"]
    installed.write_text(json.dumps(manifest))
    assert "mine" not in store.installed()  # not a model of the store any more
    assert store.default_name() == "robust"


def test_an_install_interrupted_at_any_point_leaves_the_old_state(monkeypatch):
    from mnist_edge.device.inference import model as models

    assert cli("models", "install", str(TUTORIAL), "--name", "mine").exit_code == 0
    before = snapshot()

    def killed(*_a, **_k):
        raise KeyboardInterrupt  # Ctrl-C while the copy is being verified

    with monkeypatch.context() as patched, pytest.raises(KeyboardInterrupt):
        patched.setattr(models, "load", killed)
        store.install(bundled.MODELS_DIR / "robust", "mine")
    assert snapshot() == before and not list(store.root().glob(".install-*"))
    (store.root() / ".install-left-by-a-crash").mkdir()  # a killed process's staging folder
    assert cli("models", "install", str(bundled.MODELS_DIR / "robust"), "--name", "other").exit_code == 0
    assert not list(store.root().glob(".install-*"))
    assert "left-by-a-crash" not in " ".join(store.installed())


def test_bad_names_and_unknown_models_are_usage_errors():
    assert cli("models", "install", str(TUTORIAL), "--name", "robust").exit_code == 2
    assert cli("models", "install", str(TUTORIAL), "--name", "../up").exit_code == 2
    assert cli("models", "install", "/nonexistent/family").exit_code == 2
    res = cli("models", "use", "nope")
    assert res.exit_code == 2 and "models list" in res.output
    assert cli("models", "rollback").exit_code == 2  # nothing to roll back to


def _health(url: str) -> dict:
    import httpx

    return httpx.get(url + "/healthz").json()


def test_serve_takes_a_new_default_on_sighup_without_dropping_viewers(tmp_path):
    """A running `serve` (no token on loopback) reads with the bundled default; `models use
    tutorial`, SIGHUP: /healthz and uploads name the new model, an event-stream viewer that was
    connected is still counted. A model file that breaks leaves the running one, said on
    stderr."""
    httpx = pytest.importorskip("httpx")
    pytest.importorskip("starlette")
    with ServeProcess() as serve:
        url = serve.listening().url
        assert _health(url)["model"] == "mnist_robust_int8.tflite"
        with httpx.Client(timeout=30) as viewer, viewer.stream("GET", url + "/api/events") as events:
            lines = events.iter_lines()
            next(lines)  # connected
            assert cli("models", "use", "tutorial").exit_code == 0
            serve.proc.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 30
            while _health(url)["model"] != "mnist_cnn_int8.tflite" and time.monotonic() < deadline:
                time.sleep(0.1)
            assert _health(url)["model"] == "mnist_cnn_int8.tflite"
            answer = httpx.post(url + "/api/classify", content=EXAMPLE7.read_bytes()).json()
            assert answer["digit"] == 7 and Path(answer["model"]).name == "mnist_cnn_int8.tflite"
            metrics = httpx.get(url + "/metrics").text
            assert 'mnist_edge_open_streams{stream="events"} 1' in metrics  # still connected
            assert any(line.startswith("event: status") for line in lines)  # and still served
        code, err = serve.stop()
    assert code == 0 and "reload: now reading with mnist_cnn_int8.tflite" in err


def test_a_reload_that_fails_keeps_the_running_model(tmp_path):
    httpx = pytest.importorskip("httpx")
    pytest.importorskip("starlette")
    family = tmp_path / "robust"
    shutil.copytree(bundled.MODELS_DIR / "robust", family)
    model = family / "mnist_robust_int8.tflite"
    with ServeProcess("--model", str(model)) as serve:
        url = serve.listening().url
        model.write_bytes(b"not a model any more")
        serve.proc.send_signal(signal.SIGHUP)
        serve.line_with("still reading with mnist_robust_int8.tflite")
        assert httpx.post(url + "/api/classify", content=EXAMPLE7.read_bytes()).json()["digit"] == 7
        assert _health(url)["model"] == "mnist_robust_int8.tflite"
        assert serve.stop()[0] == 0


def test_models_help_is_uncut():
    listing = cli("models", "--help").stdout.split("Commands:")[1]
    assert "..." not in listing and len(listing.strip().splitlines()) == 4


def test_help_says_rollback_is_one_step_and_how_to_install_for_the_service():
    assert "twice" in " ".join(cli("models", "rollback", "--help").stdout.split())
    for args in (("models", "--help"), ("models", "install", "--help")):
        text = " ".join(cli(*args).stdout.split())
        assert "sudo -u mnist-edge" in text, args
