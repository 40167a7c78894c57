# fashiontag — the two commands a newcomer needs: `make run` and `make test`.
SHELL      := /bin/bash
PYTHON     ?= python3
VENV       ?= .venv
PY         := $(VENV)/bin/python
ARTIFACTS  ?= artifacts
MODEL      := $(ARTIFACTS)/fashiontag.onnx
STAMP      := $(VENV)/.installed
FMNIST     ?= /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz
SUDO       := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PYTEST_ARGS ?=

.PHONY: run test unit functional bench install data model repository lint clean constraints

## run: install, build the model, start tritonserver, tag samples/ (ONCE=1 exits after the demo)
run: model
	$(PY) -m fashiontag demo $(if $(ONCE),--once,)

## test: unit + functional tests (real tritonserver on free ports); slow suites excluded
test: model
	$(PY) -m pytest tests -m "not slow" $(PYTEST_ARGS)

unit: install
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

functional: model
	$(PY) -m pytest tests/functional -m "not slow" $(PYTEST_ARGS)

## bench: benchmarks (minutes); results in benchmarks/results/<timestamp>/
bench: model
	$(PY) -m pytest tests -m slow $(PYTEST_ARGS)
	$(PY) benchmarks/served_vs_inprocess.py

install: $(STAMP)

# torch is named in the same pip command so pip takes the local CPU wheel (2.13.0), never a CUDA one.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip>=24"
	$(PY) -m pip install -q -c constraints.txt "torch==2.13.0" -e ".[all,dev,bench]"
	@touch $@

## data: Fashion-MNIST from Debian's dataset-fashion-mnist package (real garment photos)
data: $(FMNIST)
$(FMNIST):
	$(SUDO) apt-get install -y -q dataset-fashion-mnist || \
	  ( $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q dataset-fashion-mnist )

## model: train heads (cached features), export ONNX with parity check, generate model_repository/
model: install data
	$(PY) -m fashiontag build --artifacts $(ARTIFACTS)

lint: install
	$(VENV)/bin/ruff check fashiontag tests benchmarks

constraints: install
	( sed -n '1,2p' constraints.txt; $(PY) -m pip freeze --exclude-editable | grep -vi '^fashiontag' ) > constraints.new && mv constraints.new constraints.txt

clean:
	rm -rf $(ARTIFACTS) out build .pytest_cache
	rm -f model_repository/*/config.pbtxt model_repository/*/[0-9]*/model.onnx
	find model_repository -mindepth 2 -maxdepth 2 -type d -regex '.*/[0-9]+' \
	  ! -name 1 -exec rm -rf {} +
