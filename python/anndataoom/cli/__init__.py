"""The ``anndataoom`` command line: ``info``, ``run``, ``convert``."""
