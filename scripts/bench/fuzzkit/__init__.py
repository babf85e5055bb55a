"""Generators, drivers and checks of the intake fuzz campaign (scripts/bench/fuzz_intake.py)."""
