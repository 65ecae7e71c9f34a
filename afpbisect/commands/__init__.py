"""One module per command (run, verify-patch, nightly, selftest, doctor, status, clean,
rerender) and what they share: the command context and the console progress."""
