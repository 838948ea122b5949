# make train : set up .venv (if missing) and train IMPALA on Atari Pong (configs/atari.py).
# make test  : set up .venv (if missing) and run the whole test suite.
# TensorFlow 2.15 has wheels for CPython 3.9-3.11 only; set PYTHON=/path/to/python3.11
# to choose the interpreter.

VENV    := .venv
LOGDIR  ?= logs/pong
CONFIG  ?= configs/atari.py
PYTHON  ?= $(shell for p in python3.11 python3.10 python3.9 python3; do \
             if command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(not ((3, 9) <= sys.version_info[:2] <= (3, 11)))' 2>/dev/null; \
             then command -v $$p; break; fi; done)

.PHONY: train test setup clean-venv

setup: $(VENV)/.installed

$(VENV)/.installed: setup.py
	@if [ -z "$(PYTHON)" ]; then \
	  echo "error: no Python 3.9-3.11 interpreter found (TensorFlow 2.15 has no wheels for newer ones)."; \
	  echo "       Install python3.11 (e.g. 'apt-get install python3.11-venv' or pyenv) or run 'make PYTHON=/path/to/python3.11 ...'."; \
	  exit 1; fi
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip setuptools wheel
	$(VENV)/bin/python -m pip install --quiet -e '.[test]'
	@touch $@

train: setup
	$(VENV)/bin/python -m launch.train --config=$(CONFIG) --logdir=$(LOGDIR)

test: setup
	$(VENV)/bin/python -m pytest -q -p no:cacheprovider tests

clean-venv:
	rm -rf $(VENV)
