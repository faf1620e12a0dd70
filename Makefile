# The two entry points the README opens with: `make tutorial` and `make test`.
# Both install what they need, so they work on a fresh machine of this kind.
PYTHON ?= python
export PIP_DISABLE_PIP_VERSION_CHECK = 1

.PHONY: install ui-deps daemons tutorial test proto-check

install:
	$(PYTHON) -m pip install -q -e '.[dev]'

# Debian's chromium and tests/ui's node modules, for the real-browser tests.
ui-deps:
	scripts/ui-deps

daemons:
	scripts/buildkit-up

proto-check: install
	scripts/gen-proto --check

tutorial: install daemons
	$(PYTHON) scripts/run-notebooks notebooks/tutorial.ipynb

test: install ui-deps daemons proto-check
	$(PYTHON) -m pytest -q -p no:cacheprovider
