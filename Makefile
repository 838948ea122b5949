# make train : set up .venv (if missing) and train IMPALA on Atari Pong (configs/atari.py).
# make test  : set up .venv (if missing) and run the whole test suite.
# TensorFlow 2.15 has wheels for CPython 3.9-3.11 only; set PYTHON=/path/to/python3.11
# to choose the interpreter.

VENV    := .venv
LOGDIR  ?= logs/pong
CONFIG  ?= configs/atari.py
PYCHECK := import sys; sys.exit(not ((3, 9) <= sys.version_info[:2] <= (3, 11)))
PYTHON  ?= $(shell for p in python3.11 python3.10 python3.9 python3; do \
             if command -v $$p >/dev/null 2>&1 && $$p -c '$(PYCHECK)' 2>/dev/null; \
             then command -v $$p; break; fi; done)

.PHONY: train test setup clean-venv

setup: $(VENV)/.installed

$(VENV)/.installed: setup.py
	@if [ -x $(VENV)/bin/python ]; then \
	  $(VENV)/bin/python -c '$(PYCHECK)' || { \
	    echo "error: $(VENV) uses $$($(VENV)/bin/python -V 2>&1), but TensorFlow 2.15 needs Python 3.9-3.11."; \
	    echo "       Run 'make clean-venv' and retry."; exit 1; }; \
	else \
	  if [ -z "$(PYTHON)" ]; then \
	    echo "error: no Python 3.9-3.11 interpreter found (TensorFlow 2.15 has no wheels for newer ones)."; \
	    echo "       Install python3.11 (e.g. 'apt-get install python3.11-venv' or pyenv) or run 'make PYTHON=/path/to/python3.11 ...'."; \
	    exit 1; fi; \
	  $(PYTHON) -c '$(PYCHECK)' 2>/dev/null || { \
	    echo "error: $(PYTHON) is $$($(PYTHON) -V 2>&1); TensorFlow 2.15 needs Python 3.9-3.11."; exit 1; }; \
	  $(PYTHON) -m venv $(VENV); \
	fi
	$(VENV)/bin/python -m pip install --quiet --upgrade pip setuptools wheel
	$(VENV)/bin/python -m pip install --quiet -e '.[test]'
	@touch $@

train: setup
	$(VENV)/bin/python -m launch.train --config=$(CONFIG) --logdir=$(LOGDIR)

test: setup
	$(VENV)/bin/python -m pytest -q -p no:cacheprovider -n 2 --dist loadgroup tests

clean-venv:
	rm -rf $(VENV)
