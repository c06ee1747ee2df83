# Quick start: `make run` (the whole pipeline on this machine) and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed
TEX_PACKAGES = latexmk texlive-latex-recommended texlive-publishers texlive-fonts-recommended

.PHONY: run test lint tex clean

$(STAMP): pyproject.toml requirements.lock
	@./.ci/make-venv "$(PYTHON)" "$(VENV)"
	$(BIN)/pip install --quiet --disable-pip-version-check -c requirements.lock -e '.[test]'
	@touch $(STAMP)

run: $(STAMP) tex
	$(BIN)/invoke provision run-experiment report

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The paper PDF needs TeX Live; as root on a Debian-family system we install it, otherwise
# the report says how and still writes the HTML report.
tex:
	@if ! command -v latexmk >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing TeX Live for the paper PDF: apt-get install $(TEX_PACKAGES)"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(TEX_PACKAGES) >/dev/null \
		|| { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(TEX_PACKAGES) >/dev/null; } \
		|| echo "TeX Live could not be installed; the HTML report will still be written"; \
	fi

clean:
	rm -rf build paper/build paper/generated
