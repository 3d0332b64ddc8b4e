"""Print the project's declared requirements (the device dependencies and the extras named on
the command line) one per line, for an install at their floors:
    uv pip install --resolution lowest-direct --only-binary :all: -r <(python .ci/floors.py serve mqtt)
Every requirement becomes direct, so lowest-direct takes each at its declared floor (the
lowest with a wheel for this Python)."""

import sys
from pathlib import Path

import tomllib

project = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())["project"]
extras = project["optional-dependencies"]
wanted = list(project["dependencies"])
for name in sys.argv[1:]:
    wanted += extras[name]
print("\n".join(wanted))
