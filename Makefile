# The two entry points the README opens with: `make tutorial` and `make test`.
# Both install what they need, so they work on a fresh machine of this kind.
# `make lab` serves notebooks/ in JupyterLab on 127.0.0.1 (LAB_PORT, default 8888).
PYTHON ?= python
LAB_PORT ?= 8888
export PIP_DISABLE_PIP_VERSION_CHECK = 1

.PHONY: install ui-deps labext daemons tutorial lab test proto-check

# An editable install skips the wheel's data files: enable the server extension as the wheel does.
install:
	$(PYTHON) -m pip install -q -e '.[dev]'
	install -D -m 0644 jupyter-config/jupyter_server_config.d/envd_jupyter.json \
	  "$$($(PYTHON) -c 'import sys; print(sys.prefix)')/etc/jupyter/jupyter_server_config.d/envd_jupyter.json"

# Debian's chromium and tests/ui's node modules, for the real-browser tests.
ui-deps:
	scripts/ui-deps

# The JupyterLab panel (labextension/) built into envd_jupyter/labextension/ (jlpm from the lockfile).
labext: install
	scripts/labext-build

daemons:
	scripts/buildkit-up

proto-check: install
	scripts/gen-proto --check

tutorial: install daemons
	$(PYTHON) scripts/run-notebooks notebooks/01-getting-started.ipynb notebooks/02-envd-environments.ipynb \
	  notebooks/03-scheduling-across-builders.ipynb notebooks/04-debugging-builds.ipynb

lab: install daemons
	scripts/labext-build --develop
	$(PYTHON) -m jupyterlab --no-browser --ip=127.0.0.1 --port=$(LAB_PORT) --allow-root \
	  --ServerApp.root_dir='$(CURDIR)/notebooks'

test: install ui-deps labext daemons proto-check
	$(PYTHON) -m pytest -q -p no:cacheprovider
