# Every target installs what it needs first, so each works on a fresh clone.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: install demo lint test test-slow bench bench-int8 bench-int8-table matrix matrix-qnn matrix-executorch docs clean

install: $(STAMP)

# Re-install when the dependency set changes. constraints.txt pins every transitive package.
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

demo: install
	$(BIN)/effconvert demo

# Lint, format and types first (seconds), then the suite.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest -m "not slow" -q

test-slow: install
	$(BIN)/python -m pytest -m slow -q

bench: install
	$(BIN)/python bench/suite.py

# FastViT-S12 int8 decisions at 256x256 on a head fitted to the digits (top-1 on a random head means nothing).
bench-int8: install
	$(BIN)/python bench/int8_decisions.py

# The support matrix: every variant x target x fp32/fp16 through `effconvert batch` (about an hour on
# 2 cores; --resume keeps what an interrupted run finished). Its matrix.md is the README's table.
MATRIX_OUT ?= effconvert-batch/zoo
matrix: install
	$(BIN)/effconvert batch bench/zoo.toml --out $(MATRIX_OUT) --resume; test $$? -le 1
	cp $(MATRIX_OUT)/matrix.md bench/results/support_matrix.md
	cp $(MATRIX_OUT)/batch.json bench/results/support_matrix.json

# The Snapdragon NPU column: every variant x qnn x fp16/w8a16 on the HTP simulator (about two hours
# on 2 cores).
MATRIX_QNN_OUT ?= effconvert-batch/zoo-qnn
matrix-qnn: install
	$(BIN)/effconvert batch bench/zoo_qnn.toml --out $(MATRIX_QNN_OUT) --resume; test $$? -le 1
	cp $(MATRIX_QNN_OUT)/matrix.md bench/results/support_matrix_qnn.md
	cp $(MATRIX_QNN_OUT)/batch.json bench/results/support_matrix_qnn.json

# The ExecuTorch columns: every variant x executorch x fp32/int8 (all-int8, no fallback), validated on
# ExecuTorch's runtime.
MATRIX_ET_OUT ?= effconvert-batch/zoo-executorch
matrix-executorch: install
	$(BIN)/effconvert batch bench/zoo_executorch.toml --out $(MATRIX_ET_OUT) --resume; test $$? -le 1
	cp $(MATRIX_ET_OUT)/matrix.md bench/results/support_matrix_executorch.md
	cp $(MATRIX_ET_OUT)/batch.json bench/results/support_matrix_executorch.json

# int8 by family x target (all-int8 and with the fallback): one variant per family, then the table.
INT8_TABLE_OUT ?= effconvert-batch/zoo-int8
bench-int8-table: install
	$(BIN)/effconvert batch bench/zoo_int8.toml --out $(INT8_TABLE_OUT) --resume; test $$? -le 1
	$(BIN)/python bench/int8_table.py $(INT8_TABLE_OUT)

# The documentation site (MkDocs Material) into site/; --strict: a broken link or reference fails.
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

clean:
	rm -rf $(VENV) effconvert-out .pytest_cache site
