"""Contender (main-job workload): ``anndataoom run --embedding anndataoom`` step by step."""

from _main_job import main

main("anndataoom")
