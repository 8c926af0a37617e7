# Every target installs what it needs first, so each works on a fresh clone.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: install demo test test-slow bench bench-int8 docs clean

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

# FastViT-S12 int8 decisions at 256x256 on a head fitted to the digits (top-1 on a random head means nothing).
bench-int8: install
	$(BIN)/python bench/int8_decisions.py

# The documentation site (MkDocs Material) into site/; --strict: a broken link or reference fails.
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

clean:
	rm -rf $(VENV) effconvert-out .pytest_cache site
