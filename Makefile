# Every target that runs code depends on `install`, so each works as the first command on a
# fresh machine.  Override the environment's location with `make test VENV=/path/to/venv`.
VENV    ?= .venv
PYTHON  ?= python3
PROFILE ?= toy
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.ws_fm-installed

# torch and torchvision are installed first, as a pair that imports together.  On the project's
# machines pip is capped at torch 2.14.1 / torchvision 0.29.1, which lie on local disk, so this
# downloads nothing; elsewhere pip takes the newest matching pair.
TORCH_SPEC ?= torch torchvision

.PHONY: install test lint benchmark clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet $(TORCH_SPEC)
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

test: install
	$(PY) -m pytest -q tests

lint: install
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

benchmark: install
	$(PY) -m benchmarks.run --profile $(PROFILE)

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache
