# The two set-up commands of the README:
#   make demo   installs stemwatch (CPU onnxruntime, trainer) and runs the demo
#   make test   installs stemwatch with the dev tools, a headless browser and a PostgreSQL
#               server, then lints, type-checks and runs the tests (.ci/run calls exactly this)
PY ?= python3

.PHONY: demo test install install-dev lint typecheck pytest

install:
	$(PY) -m pip install --quiet -e '.[cpu,train]'

# bioimageio.core 0.11.0 pins bioimageio.spec 0.5.12.0, which breaks on current pydantic;
# spec 0.5.14.3 validates and tests our ONNX packages offline, so it replaces the pin.
install-dev:
	$(PY) -m pip install --quiet -e '.[cpu,train,dev,bioimageio,postgres,cluster]'
	$(PY) -m pip install --quiet --no-deps 'bioimageio.spec==0.5.14.3'
	bash scripts/ensure-browser.sh
	bash scripts/ensure-postgres.sh

demo: install
	stemwatch demo

lint:
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck:
	$(PY) -m mypy

pytest:
	$(PY) -m pytest

test: install-dev lint typecheck pytest
