# mnist-edge: every target works from a fresh clone (it installs .venv when missing).
# MNIST comes from MNIST_EDGE_DATA, --data, the cache, or a verified download.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
MODELS ?= models
PYTEST_ARGS ?=

.PHONY: install train convert check bundle bench demo test test-fast lint clean

$(BIN)/mnist-edge: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install -e '.[train,camera,dev]'
	touch $@

install: $(BIN)/mnist-edge  ## .venv with the project and its train, camera and dev extras

train: $(BIN)/mnist-edge  ## train the tutorial's CNN -> models/mnist_cnn.keras
	$(BIN)/python -m train --out $(MODELS) $(TRAIN_ARGS)

$(MODELS)/mnist_cnn.keras:
	$(MAKE) train

convert: $(BIN)/mnist-edge $(MODELS)/mnist_cnn.keras  ## four TFLite models, measured and gated
	$(BIN)/python -m convert --model $(MODELS)/mnist_cnn.keras --layer-report --c-array $(CONVERT_ARGS)

check: $(BIN)/mnist-edge  ## accuracy gate on the converted models (exit 1 when int8 loses accuracy)
	$(BIN)/mnist-edge check --model $(MODELS)/mnist_cnn_float32.tflite \
	  --model $(MODELS)/mnist_cnn_float16.tflite --model $(MODELS)/mnist_cnn_dynamic.tflite \
	  --model $(MODELS)/mnist_cnn_int8.tflite $(CHECK_ARGS)

bundle: $(BIN)/mnist-edge  ## convert, and when the gate passes copy int8+float32 into device/models
	$(BIN)/python -m convert --model $(MODELS)/mnist_cnn.keras --bundle $(CONVERT_ARGS)

bench: $(BIN)/mnist-edge  ## latency of every converted model, as ratios
	$(BIN)/mnist-edge bench --model $(MODELS)/mnist_cnn_float32.tflite \
	  --model $(MODELS)/mnist_cnn_float16.tflite --model $(MODELS)/mnist_cnn_dynamic.tflite \
	  --model $(MODELS)/mnist_cnn_int8.tflite

demo: $(BIN)/mnist-edge  ## classify the sample photos in examples/ with the bundled model
	$(BIN)/mnist-edge classify examples/digit*
	$(BIN)/mnist-edge classify --multi examples/number_*.png

test: $(BIN)/mnist-edge  ## the whole suite, slow tests included
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: $(BIN)/mnist-edge  ## skip the slow (TensorFlow, full-data) tests
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

lint: $(BIN)/mnist-edge
	$(BIN)/ruff check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
