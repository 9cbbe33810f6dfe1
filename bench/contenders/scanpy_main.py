"""Contender (main-job workload): ``anndataoom run --embedding scanpy`` step by step."""

from _main_job import main

main("scanpy")
