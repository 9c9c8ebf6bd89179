# The two commands of the README: `make run` and `make test`. Everything the project
# needs is installed from here (Python packages into .venv, Debian packages through apt).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Debian packages the tests need: a virtual screen and Mesa's software GL for Kivy,
# shellcheck for the deploy scripts, gettext for the translations, systemd-analyze for the units,
# PostgreSQL for the clinic service's tests (they start a throwaway server of their own), chromium for
# the clinician pages' browser tests (Playwright drives Debian's build, never a downloaded one).
APT_TEST := xvfb xauth libgl1 libgl1-mesa-dri libmtdev1 shellcheck gettext systemd postgresql chromium
APT_RUN  := xvfb xauth libgl1 libgl1-mesa-dri libmtdev1
# The review's screenshots: a headless browser for the HTML page, poppler for the PDF page.
APT_REVIEW := chromium poppler-utils
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
XVFB   := xvfb-run -a -s "-screen 0 1280x800x24"

.PHONY: install run test bench fuzz screenshots review-screenshots apt-test apt-run clean clinic clinic-screenshots

install: $(BIN)/homeapp

$(BIN)/homeapp: pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("homeapp needs Python 3.11 or newer, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	@# Debian's own Python makes venvs only with python3-venv installed
	@$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || { echo "installing through apt: python3-venv"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq python3-venv; }
	[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	@# the clinic extra too: its tests run with the rest (the device image installs without it)
	$(BIN)/python -m pip install -q -e '.[test,clinic]'
	touch $@

# Installs only what is missing, so a machine that has everything needs no network.
define apt_missing
	@missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing through apt:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; fi
endef

apt-test:
	$(call apt_missing,$(APT_TEST))

apt-run:
	$(call apt_missing,$(APT_RUN))

# With no screen at all (a server, a CI box) the app still starts, on a virtual screen of
# the device's size, and says how to look at it (tools/run_headless.sh).
RUN_PICTURE ?= $(or $(TMPDIR),/tmp)/homeapp-screen-$(shell id -un).png
run: install apt-run
	@if [ -n "$$DISPLAY$$WAYLAND_DISPLAY" ] || [ -e /dev/dri/card0 -a -n "$$HOMEAPP_KMS" ]; then \
	  $(BIN)/homeapp; \
	else KIVY_NO_ARGS=1 xvfb-run -a -s "-screen 0 800x480x24" sh tools/run_headless.sh $(BIN)/homeapp $(RUN_PICTURE); fi

test: install apt-test
	KIVY_NO_ARGS=1 KIVY_HOME=$$(mktemp -d) KIVY_NO_CONSOLELOG=1 $(XVFB) $(BIN)/python -m pytest -q

bench: install apt-test
	KIVY_NO_ARGS=1 KIVY_HOME=$$(mktemp -d) KIVY_NO_CONSOLELOG=1 $(XVFB) $(BIN)/python -m tests.bench

fuzz: install
	$(BIN)/python -m pip install -q -e '.[fuzz]'
	$(BIN)/python -m tests.fuzz
	TIMELINE_EXAMPLES=300 $(BIN)/python -m pytest -q -p no:cacheprovider tests/test_timeline_properties.py

screenshots: install apt-test
	KIVY_NO_ARGS=1 KIVY_HOME=$$(mktemp -d) KIVY_NO_CONSOLELOG=1 $(XVFB) $(BIN)/python -m tests.uitools.screenshots docs/screens

# The clinician's review of a month and of one day (docs/review): HTML and PDF, and pictures of both.
review-screenshots: install
	$(call apt_missing,$(APT_REVIEW))
	$(BIN)/python -m tests.review_demo docs/review
	for n in month day; do \
	  chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1150,2300 \
	    --screenshot=$(CURDIR)/docs/review/$$n-html.png file://$(CURDIR)/docs/review/$$n.html 2>/dev/null; \
	  pdftoppm -png -r 90 -singlefile docs/review/$$n.pdf docs/review/$$n-pdf; \
	done

# The clinician's web pages, every one in English and Swedish (docs/clinic-screens), from a
# demo clinic (`homeapp-clinic demo`) served on loopback and photographed by Debian's chromium.
clinic-screenshots: install
	$(call apt_missing,chromium)
	$(BIN)/python -m tests.clinic_web.screens docs/clinic-screens
	$(BIN)/python -m tests.clinic_web.program_screens docs/clinic-screens

# The clinic service on an SQLite file in the clinic's data directory
# ($$HOMEAPP_CLINIC_DATA, default ~/.local/share/homeapp-clinic); it prints how to log in first.
CLINIC_PORT ?= 8443
clinic: install
	$(BIN)/homeapp-clinic serve --host 127.0.0.1 --port $(CLINIC_PORT)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .hypothesis
