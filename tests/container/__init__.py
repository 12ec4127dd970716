# A package, so that this directory's conftest.py is imported as container.conftest and does not
# take the name `conftest` that the suites in tests/ import their helpers from.
