# fashiontag — the two commands a newcomer needs: `make run` and `make test`.
SHELL      := /bin/bash
PYTHON     ?= python3
VENV       ?= .venv
PY         := $(VENV)/bin/python
ARTIFACTS  ?= artifacts
MODEL      := $(ARTIFACTS)/fashiontag.onnx
INT8       := $(ARTIFACTS)/fashiontag.int8.onnx
STAMP      := $(VENV)/.installed
FMNIST     ?= /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz
CLOTHING   ?= data/clothing
SHARED_CLOTHING ?= $(abspath ..)/shared/datasets/clothing
CLOTHING_UPSTREAM ?= https://github.com/alexeygrigorev/clothing-dataset
CLOTHING_COMMIT   ?= 7ed86a9cc56763b6acb35e41cb35184e43a5d218
SUDO       := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
PYTEST_ARGS ?=

BENCH_VENV ?= .venv-bench
PEERS_VENV ?= .venv-peers
BENCH_STAMP := $(BENCH_VENV)/.installed
PEERS_STAMP := $(PEERS_VENV)/.installed

.PHONY: run test unit functional bench bench-smoke bench-venvs java install data model int8 repository \
        lint lint-imports clean constraints train-full browser model-card

## run: install, build the model, start tritonserver, tag samples/ (ONCE=1 exits after the demo)
run: model
	$(PY) -m fashiontag demo $(if $(ONCE),--once,)

## test: unit + functional tests (real tritonserver on free ports); slow suites excluded.
## Includes a smoke run of the benchmarks, so it needs perf_analyzer's venv (.venv-bench); the
## peer servers' venv and their smoke checks belong to `make bench`.
test: model $(BENCH_STAMP) lint-imports browser
	$(PY) -m pytest tests -m "not slow" $(PYTEST_ARGS)

unit: install
	$(PY) -m pytest tests/unit $(PYTEST_ARGS)

functional: model $(BENCH_STAMP)
	$(PY) -m pytest tests/functional -m "not slow" $(PYTEST_ARGS)

## bench: the benchmark suite (~25 min on 2 cores); results in benchmarks/results/<timestamp>/.
## BENCH_ARGS="--rounds 3" for medians of three rounds; see benchmarks/README.md
bench: model bench-venvs
	$(PY) -m pytest tests -m slow $(PYTEST_ARGS) || [ $$? -eq 5 ]  # 5: no slow suite yet
	$(PY) benchmarks/run_all.py $(BENCH_ARGS)
	$(PY) benchmarks/runtimes.py
	$(PY) benchmarks/tagging_throughput.py
	$(PY) benchmarks/fewshot.py
	$(PY) benchmarks/soak.py
	$(PY) benchmarks/studio.py

bench-smoke: model bench-venvs
	$(PY) benchmarks/run_all.py --smoke $(BENCH_ARGS)

## bench-venvs: perf_analyzer (.venv-bench) and the peer servers (.venv-peers) in their own venvs,
## Java for TorchServe. Their pins live in constraints-bench.txt / constraints-peers.txt.
bench-venvs: $(BENCH_STAMP) $(PEERS_STAMP) java

# perf_analyzer (bundled in tritonclient 2.51) needs libb64.so.0d and libcudart.so.12; copies ship
# in the main venv's nvidia_pytriton.libs under mangled names: link them where it looks.
$(BENCH_STAMP): constraints-bench.txt $(STAMP)
	@test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install -q --upgrade "pip>=24"
	$(BENCH_VENV)/bin/python -m pip install -q -c constraints-bench.txt "tritonclient[grpc]"
	mkdir -p $(BENCH_VENV)/perf-libs
	libs=$$($(PY) -c 'import pathlib, pytriton; print(pathlib.Path(pytriton.__file__).resolve().parents[1] / "nvidia_pytriton.libs")'); \
	  ln -sf $$(ls $$libs/libb64-*.so.0d | head -1) $(BENCH_VENV)/perf-libs/libb64.so.0d && \
	  ln -sf $$(ls $$libs/libcudart-*.so.12* | head -1) $(BENCH_VENV)/perf-libs/libcudart.so.12
	@touch $@

$(PEERS_STAMP): constraints-peers.txt pyproject.toml
	@test -x $(PEERS_VENV)/bin/python || $(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/python -m pip install -q --upgrade "pip>=24"
	$(PEERS_VENV)/bin/python -m pip install -q -c constraints-peers.txt "torch==2.13.0" -e ".[peers]"
	@touch $@

java:
	@command -v java >/dev/null || $(SUDO) apt-get install -y -q openjdk-17-jre-headless || \
	  ( $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q openjdk-17-jre-headless )

## browser: Debian's chromium and chromedriver for the studio's browser test (nothing downloaded
## by a test tool at run time)
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
	  $(SUDO) apt-get install -y -q chromium chromium-driver || \
	  ( $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium chromium-driver )

install: $(STAMP)

# torch is named in the same pip command so pip takes the local CPU wheel (2.13.0), never a CUDA one.
$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade "pip>=24"
	$(PY) -m pip install -q -c constraints.txt "torch==2.13.0" -e ".[all,dev,bench]"
	@touch $@

## data: the real garment photos (data/clothing: the shared copy next to the checkout when there
## is one, else the public upstream at the commit its README pins) and Fashion-MNIST (Debian's
## dataset-fashion-mnist; the few-shot benchmark and its tests use it)
data: $(CLOTHING)/labels.csv $(FMNIST)
$(CLOTHING)/labels.csv:
	@mkdir -p $(dir $(CLOTHING))
	@if [ -f $(SHARED_CLOTHING)/labels.csv ]; then \
	  ln -sfn $(SHARED_CLOTHING) $(CLOTHING); \
	else \
	  rm -rf $(CLOTHING).tmp && git clone -q $(CLOTHING_UPSTREAM) $(CLOTHING).tmp && \
	  git -C $(CLOTHING).tmp checkout -q $(CLOTHING_COMMIT) && \
	  cp $(CLOTHING).tmp/images.csv $(CLOTHING).tmp/labels.csv && mv $(CLOTHING).tmp $(CLOTHING); \
	fi
	@test -f $@ && echo "real garment photos: $$(readlink -f $(CLOTHING))"
$(FMNIST):
	$(SUDO) apt-get install -y -q dataset-fashion-mnist || \
	  ( $(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q dataset-fashion-mnist )

## model: fine-tune on real photos, fit + calibrate heads, export ONNX (parity-checked), INT8
## (gated on real photos), score the test photographers, generate model_repository/ serving the
## fastest passing model. SERVE=fp32 serves FP32 whatever the INT8 gate said.
model: install data
	$(PY) -m fashiontag build --artifacts $(ARTIFACTS) $(if $(SERVE),--serve $(SERVE),)

## train-full: the longer schedule (last six blocks tuned, 6 views; ~5 min more; see docs/model-quality.md)
train-full: install data
	$(PY) -m fashiontag build --artifacts $(ARTIFACTS) --schedule full $(if $(SERVE),--serve $(SERVE),)

## model-card: docs/model-card.md written from the build's training and evaluation reports
model-card: $(MODEL)
	$(PY) -m fashiontag model-card --artifacts $(ARTIFACTS) --out docs/model-card.md

## int8: the INT8 (QDQ) model alone; refused unless it passes its gate on real photos
int8: $(INT8)
$(INT8): $(MODEL)
	$(PY) -m fashiontag export --artifacts $(ARTIFACTS) --precision int8

lint: install lint-imports
	$(VENV)/bin/ruff check fashiontag tests benchmarks

## lint-imports: the layers contract in pyproject.toml (arrows only point down)
lint-imports: install
	$(VENV)/bin/lint-imports

constraints: install
	( sed -n '1,2p' constraints.txt; $(PY) -m pip freeze --exclude-editable | grep -vi '^fashiontag' ) > constraints.new && mv constraints.new constraints.txt
	@if [ -x $(BENCH_VENV)/bin/python ]; then ( sed -n '1,2p' constraints-bench.txt; $(BENCH_VENV)/bin/python -m pip freeze --exclude-editable ) > constraints.new && mv constraints.new constraints-bench.txt; fi
	@if [ -x $(PEERS_VENV)/bin/python ]; then ( sed -n '1,2p' constraints-peers.txt; $(PEERS_VENV)/bin/python -m pip freeze --exclude-editable | grep -vi '^fashiontag' ) > constraints.new && mv constraints.new constraints-peers.txt; fi

clean:
	rm -rf $(ARTIFACTS) out build .pytest_cache
	rm -f model_repository/*/config.pbtxt model_repository/*/[0-9]*/model.onnx
	find model_repository -mindepth 2 -maxdepth 2 -type d -regex '.*/[0-9]+' \
	  ! -name 1 -exec rm -rf {} +
