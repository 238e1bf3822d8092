# One command to run, one to test. Both build .venv from pyproject.toml first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# Browser tests drive Debian's Chromium; nothing is downloaded by Playwright itself.
CHROMIUM := /usr/bin/chromium
# The deployment tests run Debian's nginx as a plain process and check the systemd unit with systemd-analyze.
NGINX := /usr/sbin/nginx
SYSTEMD_ANALYZE := /usr/bin/systemd-analyze

.PHONY: install run test bench bundle clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,bundle]'
	touch $@

run: install
	$(BIN)/fraud-app serve

$(CHROMIUM):
	apt-get install -y chromium || (apt-get update && apt-get install -y chromium)

$(NGINX):
	apt-get install -y nginx || (apt-get update && apt-get install -y nginx)

$(SYSTEMD_ANALYZE):
	apt-get install -y systemd || (apt-get update && apt-get install -y systemd)

test: install $(CHROMIUM) $(NGINX) $(SYSTEMD_ANALYZE)
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python bench/generate_import.py
	$(BIN)/python bench/bulk.py
	$(BIN)/python bench/quality.py
	$(BIN)/python bench/handbook.py
	$(BIN)/python bench/api_load.py
	$(BIN)/python bench/first_request.py

# The desktop app: dist/fraud-app/ and its archive in dist/; PyInstaller's work files in build/pyinstaller.
bundle: install
	$(BIN)/python -m PyInstaller --noconfirm --log-level WARN --distpath dist --workpath build/pyinstaller app.spec

clean:
	rm -rf $(VENV) build dist *.egg-info
