# Everything a fresh machine needs comes from here: `make test`, `make demo`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The demo needs the runtime and the local stack only: no linters, type checker, test runner or vendor SDKs.
DEMO_STAMP := $(VENV)/.installed-demo

.PHONY: test lint typecheck pytest chromium demo dev bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

$(DEMO_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[local]'
	touch $(DEMO_STAMP)

test: $(STAMP) lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

# Then once more with the emulator's strictest reading of every undocumented behaviour (docs/service-contract.md):
# the interleavings, the random schedules, exactly-once, the documented-service tests and the file-quota burst.
STRICT_TESTS := tests/pipeline/test_interleavings.py tests/pipeline/test_schedules.py \
	tests/pipeline/test_exactly_once.py tests/pipeline/test_documented_service.py \
	"tests/pipeline/test_admission.py::test_a_burst_of_six_datasets_with_room_for_three_files_ends_six_done"

pytest: $(STAMP) chromium
	$(BIN)/pytest -q
	BAILIAN_FLOW_EMULATOR_PROFILE=strict $(BIN)/pytest -q -p no:cacheprovider $(STRICT_TESTS)

# The status page is tested in Debian's chromium; CI runs as root and installs it, elsewhere the test is skipped.
chromium:
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	fi

demo: $(DEMO_STAMP)
	$(BIN)/bailian-flow demo

dev: $(DEMO_STAMP)
	$(BIN)/bailian-flow dev

bench: $(STAMP)
	$(BIN)/python bench/upload_memory.py
	$(BIN)/python bench/import_time.py
	$(BIN)/python bench/validate_speed.py --rounds 3
	$(BIN)/python bench/cold_start.py --rounds 3

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
