# mnist-edge: every target works from a fresh clone (it installs .venv when missing).
# MNIST comes from MNIST_EDGE_DATA, --data, the cache, or a verified download.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
MODELS ?= models
PYTEST_ARGS ?=

ROBUST ?= $(MODELS)/robust
MNISTC ?= ../shared/mnistc
REALPHOTOS ?= ../shared/realphotos-dev

.PHONY: install train convert check bundle bench demo test test-fast lint clean \
	train-robust convert-robust check-robust bundle-robust robustness kfold dense pi-check fonts \
	localiser convert-localiser bundle-localiser localiser-ab reproduce record-prefixes test-deps \
	reference-distribution params-sweep

$(BIN)/mnist-edge: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install -e '.[train,camera,serve,mqtt,dev]'
	touch $@

install: $(BIN)/mnist-edge  ## .venv with the project and its train, camera, serve, mqtt and dev extras

train: $(BIN)/mnist-edge  ## train the tutorial's CNN -> models/mnist_cnn.keras
	$(BIN)/mnist-edge train --out $(MODELS) $(TRAIN_ARGS)

$(MODELS)/mnist_cnn.keras:
	$(MAKE) train

convert: $(BIN)/mnist-edge $(MODELS)/mnist_cnn.keras  ## four TFLite models, measured and gated
	$(BIN)/mnist-edge convert --model $(MODELS)/mnist_cnn.keras --layer-report --c-array $(CONVERT_ARGS)

check: $(BIN)/mnist-edge  ## accuracy gate on the converted models (exit 1 when int8 loses accuracy)
	$(BIN)/mnist-edge check --model $(MODELS)/mnist_cnn_float32.tflite \
	  --model $(MODELS)/mnist_cnn_float16.tflite --model $(MODELS)/mnist_cnn_dynamic.tflite \
	  --model $(MODELS)/mnist_cnn_int8.tflite $(CHECK_ARGS)

bundle: $(BIN)/mnist-edge  ## convert, and when the gate passes copy int8+float32 into device/models
	$(BIN)/mnist-edge convert --model $(MODELS)/mnist_cnn.keras --layer-report --c-array --bundle $(CONVERT_ARGS)

params-sweep: $(BIN)/mnist-edge  ## each reading parameter up and down: which changes no fast reading test notices
	$(BIN)/python tools/params_sweep.py --jobs 2

reference-distribution: $(BIN)/mnist-edge  ## record the bundled models' reference distributions (what `convert` records for new ones)
	$(BIN)/python -m mnist_edge.convert.reference device/models/robust device/models/tutorial

FONTS := fonts/node_modules/.package-lock.json

$(FONTS): fonts/package.json fonts/package-lock.json
	cd fonts && npm ci --no-audit --no-fund --loglevel=error
	touch $@

fonts: $(FONTS)  ## the open-licence handwriting fonts the robust recipe renders (npm; fonts/FONTS.md)

train-robust: $(BIN)/mnist-edge $(FONTS)  ## the robust device model -> models/robust/mnist_robust.keras
	$(BIN)/mnist-edge train --recipe robust --out $(ROBUST) $(TRAIN_ARGS)

$(ROBUST)/mnist_robust.keras:
	$(MAKE) train-robust

convert-robust: $(BIN)/mnist-edge $(ROBUST)/mnist_robust.keras  ## its four TFLite models, measured and gated
	$(BIN)/mnist-edge convert --model $(ROBUST)/mnist_robust.keras $(CONVERT_ARGS)

check-robust: $(BIN)/mnist-edge  ## the gate on the robust family's converted models
	$(BIN)/mnist-edge check --model $(ROBUST)/mnist_robust_float32.tflite \
	  --model $(ROBUST)/mnist_robust_float16.tflite --model $(ROBUST)/mnist_robust_dynamic.tflite \
	  --model $(ROBUST)/mnist_robust_int8.tflite $(CHECK_ARGS)

bundle-robust: $(BIN)/mnist-edge $(ROBUST)/mnist_robust.keras  ## gate, then bundle int8+float32 as device/models/robust
	$(BIN)/mnist-edge convert --model $(ROBUST)/mnist_robust.keras --bundle $(CONVERT_ARGS)
	$(BIN)/python -c "from mnist_edge.device import atomic; atomic.copy_file('$(ROBUST)/mnist_robust.keras', 'train/base/mnist_robust.keras')"  # fine-tuning starts from it

LOCALISER ?= $(MODELS)/localiser

localiser: $(BIN)/mnist-edge $(FONTS)  ## the digit localiser, trained on generated pages -> models/localiser/localiser.keras
	$(BIN)/python -m mnist_edge.train.localiser --out $(LOCALISER) $(LOCALISER_ARGS)

$(LOCALISER)/localiser.keras:
	$(MAKE) localiser

convert-localiser: $(BIN)/mnist-edge $(LOCALISER)/localiser.keras  ## float32 + int8, measured, int8 gated against float32
	$(BIN)/python -m mnist_edge.convert.localiser --model $(LOCALISER)/localiser.keras

bundle-localiser: $(BIN)/mnist-edge $(LOCALISER)/localiser.keras  ## gate, then bundle into device/models/localiser
	$(BIN)/python -m mnist_edge.convert.localiser --model $(LOCALISER)/localiser.keras --bundle
	$(BIN)/python -c "from mnist_edge.device import atomic; atomic.copy_file('$(LOCALISER)/localiser.keras', 'train/base/localiser.keras')"  # CI converts it again

# CI reproduces each recipe's first steps against the hashes recorded when the bundle was made
# (train/base/prefixes.json); `make record-prefixes` records them anew after a recipe changes
# and its full run (make train-robust bundle-robust, make localiser bundle-localiser).
ROBUST_PREFIX ?= 30
LOCALISER_PREFIX ?= 30

reproduce: $(BIN)/mnist-edge $(FONTS)  ## each recipe's first steps, against the recorded hashes (exit 1 when they differ)
	status=0; \
	$(BIN)/mnist-edge train --recipe robust --prefix-steps $(ROBUST_PREFIX) --out $(MODELS)/prefix --no-plot || status=1; \
	$(BIN)/python -m mnist_edge.train.localiser --prefix-steps $(LOCALISER_PREFIX) --out $(MODELS)/prefix || status=1; \
	exit $$status  # both run: record-prefixes records both

record-prefixes: $(BIN)/mnist-edge $(FONTS)  ## record the hashes `make reproduce` checks
	rm -f $(MODELS)/prefix/prefix-*.json
	-$(MAKE) reproduce  # exits 1 while the recorded hashes are the old ones: what is recorded anew
	$(BIN)/python -c "import json, pathlib; d = pathlib.Path('$(MODELS)/prefix'); \
	  r = {p.stem[7:]: json.loads(p.read_text()) for p in sorted(d.glob('prefix-*.json'))}; \
	  assert set(r) == {'robust', 'localiser'}, f'prefix runs missing: {sorted(r)}'; \
	  [v.pop('seconds') for v in r.values()]; \
	  from mnist_edge.device import atomic; atomic.write_json('train/base/prefixes.json', r)"

localiser-ab: $(BIN)/mnist-edge  ## classical, learned and hybrid localisation side by side -> models/localiser-ab.md
	$(BIN)/python bench/localiser_ab.py --markdown $(MODELS)/localiser-ab.md

robustness: $(BIN)/mnist-edge  ## side-by-side robustness table of both families -> models/robustness.md
	$(BIN)/mnist-edge robustness --mnistc $(MNISTC) --markdown $(MODELS)/robustness.md \
	  $(if $(wildcard $(REALPHOTOS)/labels.csv),--realphotos $(REALPHOTOS)) \
	  --report $(MODELS)/report.md $(ROBUSTNESS_ARGS)

kfold: $(BIN)/mnist-edge  ## 5-fold validation of a recipe (RECIPE=tutorial|robust)
	$(BIN)/mnist-edge train --kfold 5 --recipe $(or $(RECIPE),tutorial) --out $(MODELS)/kfold-$(or $(RECIPE),tutorial)

dense: $(BIN)/mnist-edge  ## the previous post's dense network, trained and converted into models/dense
	$(BIN)/mnist-edge train --variant dense
	$(BIN)/mnist-edge convert --model $(MODELS)/dense/mnist_dense.keras

pi-check: $(BIN)/mnist-edge  ## the device path as ARM code in an emulated Debian root (ARCH=arm64|armhf SUITE=bookworm|trixie; root)
	ARCH=$(or $(ARCH),arm64) SUITE=$(or $(SUITE),bookworm) LIMIT=$(or $(LIMIT),1000) bash tools/pi-check.sh

bench: $(BIN)/mnist-edge  ## latency of every converted model, as ratios
	$(BIN)/mnist-edge bench --model $(MODELS)/mnist_cnn_float32.tflite \
	  --model $(MODELS)/mnist_cnn_float16.tflite --model $(MODELS)/mnist_cnn_dynamic.tflite \
	  --model $(MODELS)/mnist_cnn_int8.tflite

# The demo installs what a Pi would (numpy, Pillow, typer, LiteRT: no TensorFlow, no dev tools).
DEMO_VENV ?= .venv-device

$(DEMO_VENV)/bin/mnist-edge: pyproject.toml
	$(PYTHON) -m venv $(DEMO_VENV)
	$(DEMO_VENV)/bin/pip install -q -e .
	touch $@

demo: $(DEMO_VENV)/bin/mnist-edge  ## classify the sample photos in examples/ (installs the device package only)
	$(DEMO_VENV)/bin/mnist-edge classify examples/digit*
	$(DEMO_VENV)/bin/mnist-edge classify --multi examples/number_*.png

test-deps:  ## the Debian packages the tests use (Chromium, Mosquitto, openssl, npm), when missing
	bash tools/test-deps.sh

test: test-deps $(BIN)/mnist-edge $(FONTS)  ## the whole suite, slow tests included (browser and broker too)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: $(BIN)/mnist-edge  ## skip the slow (TensorFlow, full-data) tests
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

lint: $(BIN)/mnist-edge
	$(BIN)/ruff check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) $(DEMO_VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
