# The two commands of the README, and the shared setup step.
SHELL := /bin/bash
.DEFAULT_GOAL := help

.PHONY: help setup demo test lint unit integration

help:
	@echo "make demo   run the main job on the embedded defaults (local lab)"
	@echo "make test   lint and run the whole test suite"
	@echo "make setup  idempotent setup shared by both (packages, virtualenv, collections, lab image)"

setup:
	@bash scripts/setup.sh

demo: setup
	@bash scripts/demo.sh

lint: setup
	@bash scripts/lint.sh

test: setup
	@bash scripts/lint.sh
	@bash scripts/test.sh
