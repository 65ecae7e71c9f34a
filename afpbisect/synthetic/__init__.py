"""The synthetic target: a generated git repository with the bug's mechanism and a planted
bad commit (selftest, the end-to-end tests)."""
