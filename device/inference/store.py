"""Models installed on this device beside the bundled ones, and which one is the default.

`mnist-edge models install|list|use|rollback`. Under $XDG_DATA_HOME/mnist-edge/models
(~/.local/share/mnist-edge/models):
  <name>/                 one installed family: its int8 model, its float32 reference when
                          it came with one, and the manifest.json that vouches for both
  <name>~<sha8>/          an older install of the same name, kept for rollback
  default, previous       one name each: what `--model` defaults to, and what it was before

Every change is atomic: a family is copied into a hidden staging folder, verified there
(hashes against its manifest, then loaded and invoked) and only then renamed into place;
the pointers are single files replaced whole. A crash leaves the old state or the new one.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

from mnist_edge.device import atomic
from mnist_edge.device.errors import BadModelError, UsageError
from mnist_edge.device.inference import bundled

NAME = re.compile(r"[a-z0-9][a-z0-9_.~-]{0,63}")
STAGING = ".install-"
# What a manifest may name as a model file: a plain file name in the family's own folder (no
# folder part, no "..", no control character), as `mnist-edge convert` writes them.
FILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}")
MAX_MODEL_BYTES = 64 << 20  # the bundled families are < 1 MiB; a model this size is not ours


def root() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "mnist-edge" / "models"


def installed() -> dict[str, Path]:
    """Installed name -> its int8 model (the file the manifest lists as the int8 variant)."""
    found = {}
    folder = root()
    if folder.is_dir():
        for family in sorted(p for p in folder.iterdir() if p.is_dir() and NAME.fullmatch(p.name)):
            int8 = _int8_of(family)
            if int8 is not None:
                found[family.name] = int8
    return found


def _int8_of(family: Path) -> Path | None:
    try:
        manifest = json.loads((family / "manifest.json").read_text())
        files = [m["file"] for m in manifest["models"] if m.get("variant") == "int8"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not files or not _plain(files[0]):
        return None
    path = family / files[0]
    return path if path.is_file() and not path.is_symlink() else None


def _plain(name: object) -> bool:
    """A plain file name (see FILE): never a path that could leave the folder it is joined to."""
    return isinstance(name, str) and FILE.fullmatch(name) is not None and ".." not in name


def _listed_files(manifest: dict, where: Path) -> dict[str, dict]:
    """File name -> its manifest entry, after checking every name is plain and listed once."""
    listed: dict[str, dict] = {}
    for entry in manifest["models"]:
        file = entry["file"]
        if not _plain(file):
            raise BadModelError(f"{where}: lists {file!r}, which is not a plain file name: "
                                "refused, nothing installed")
        if file in listed:
            raise BadModelError(f"{where}: lists {file} twice: refused, nothing installed")
        listed[file] = entry
    return listed


def _read_model_file(folder: Path, file: str) -> bytes:
    """The bytes of `folder/file`: a regular file inside `folder`, not a link, not huge."""
    path = folder / file
    if path.is_symlink() or not path.is_file():
        raise BadModelError(f"{path}: not a regular file (links are refused): not installed")
    if path.resolve().parent != folder.resolve():
        raise BadModelError(f"{path}: outside {folder}: not installed")
    size = path.stat().st_size
    if size > MAX_MODEL_BYTES:
        raise BadModelError(f"{path}: {size} bytes, more than a model of this toolkit "
                            f"({MAX_MODEL_BYTES >> 20} MiB): not installed")
    return path.read_bytes()


def _pointer(which: str) -> str | None:
    try:
        name = (root() / which).read_text().strip()
    except OSError:
        return None
    return name or None


def default_name() -> str:
    """The name `--model` defaults to: the one chosen with install/use/rollback, while it
    exists, else the bundled default."""
    name = _pointer("default")
    if name is not None and (name in bundled.NAMES or name in installed()):
        return name
    return bundled.DEFAULT


def path_of(name: str) -> Path | None:
    """A bundled or installed model by name."""
    return bundled.NAMES.get(name) or installed().get(name)


def use(name: str) -> str:
    """Make `name` the default; the old default becomes `previous`. Returns the old one."""
    if path_of(name) is None:
        raise UsageError(f"no model named {name!r}; `mnist-edge models list` shows them")
    old = default_name()
    if name != old:
        atomic.write_text(root() / "previous", old + "\n")
        atomic.write_text(root() / "default", name + "\n")
    return old


def rollback() -> tuple[str, str]:
    """Back to the previous default (which then becomes `previous` itself): (from, to)."""
    before = _pointer("previous")
    if before is None or path_of(before) is None:
        raise UsageError("nothing to roll back to: no previous default is installed")
    now = default_name()
    use(before)
    return now, before


def _chosen(source: Path) -> tuple[Path, dict, dict[str, dict], list[str]]:
    """The folder, its manifest, the files it lists and those `install` takes from `source`
    (a folder: its int8 and float32 models; a file: it and its reference)."""
    home = source if source.is_dir() else source.parent
    manifest_path = home / "manifest.json"
    if manifest_path.is_symlink():
        raise BadModelError(f"{manifest_path}: a link (refused): copy the folder `mnist-edge "
                            "convert` wrote")
    try:
        manifest = json.loads(manifest_path.read_text())
        listed = _listed_files(manifest, manifest_path)
    except FileNotFoundError:
        raise BadModelError(f"{source}: no manifest.json beside it (made by `mnist-edge "
                            "convert`): nothing vouches for the model") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise BadModelError(f"{manifest_path}: not a readable manifest ({e!r})") from None
    if source.is_dir():
        wanted = [f for f, m in listed.items() if m.get("variant") in ("int8", "float32")]
    else:
        if source.name not in listed:
            raise BadModelError(f"{source.name} is not listed in {manifest_path}")
        wanted = [source.name]
        reference = listed[source.name].get("reference")
        if isinstance(reference, str) and reference in listed and (home / reference).is_file():
            wanted.append(reference)
    if not any(listed[f].get("variant") == "int8" for f in wanted):
        raise BadModelError(f"{source}: the manifest lists no int8 model to install")

    return home, manifest, listed, wanted


def install(source: Path, name: str = "personal") -> str:
    """Install a converted family (a folder with manifest.json, or one .tflite with its
    manifest.json beside it) as `name` and make it the default. An older install of that
    name is kept as `name~sha8`. Returns the name of the previous default."""
    if not source.exists():
        raise UsageError(f"{source}: no such file or folder")
    if not NAME.fullmatch(name) or "~" in name or name in bundled.NAMES:
        raise UsageError(f"--name {name!r}: use lower-case letters, digits, '-', '_' or '.', "
                         "not a bundled model's name")
    home, manifest, listed, wanted = _chosen(source)

    folder = root()
    folder.mkdir(parents=True, exist_ok=True)
    atomic.remove_leftovers(folder, STAGING)
    staging = Path(tempfile.mkdtemp(prefix=STAGING, dir=folder))
    try:
        kept = {**manifest, "models": [listed[f] for f in wanted]}
        for file in wanted:
            content = _read_model_file(home, file)
            if hashlib.sha256(content).hexdigest() != listed[file].get("sha256"):
                raise BadModelError(f"{file}: its SHA-256 is not the one its manifest records "
                                    "(damaged or replaced): not installed")
            atomic.write_bytes(staging / file, content)
        atomic.write_json(staging / "manifest.json", kept)
        int8 = _int8_of(staging)
        assert int8 is not None
        from mnist_edge.device.inference import model as models

        models.load(int8)  # the same checks as every load: shapes, dtypes, one invoke
        target = folder / name
        if target.exists():  # the older install stays, under its own name
            old_int8 = _int8_of(target)
            digest = hashlib.sha256(old_int8.read_bytes()).hexdigest()[:8] if old_int8 else "broken"
            aside = f"{name}~{digest}"
            if (folder / aside).exists():
                shutil.rmtree(folder / aside)
            os.replace(target, folder / aside)
            for which in ("default", "previous"):
                if _pointer(which) == name:
                    atomic.write_text(folder / which, aside + "\n")
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    old = default_name()
    atomic.write_text(folder / "previous", old + "\n")
    atomic.write_text(folder / "default", name + "\n")
    return old
