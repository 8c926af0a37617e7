# Every target installs what it needs first, so each works on a fresh clone.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: install demo test test-slow bench clean

install: $(STAMP)

# Re-install when the dependency set changes. constraints.txt pins every transitive package.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

demo: install
	$(BIN)/effconvert demo

test: install
	$(BIN)/python -m pytest -m "not slow" -q

test-slow: install
	$(BIN)/python -m pytest -m slow -q

bench: install
	$(BIN)/python bench/suite.py

clean:
	rm -rf $(VENV) effconvert-out .pytest_cache
