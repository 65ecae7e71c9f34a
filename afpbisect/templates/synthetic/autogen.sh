#!/bin/sh
# Nothing to generate: `configure` is a hand-written POSIX shell script.
# Kept so the build contract (./autogen.sh; ./configure; make; make install)
# is the same as for a Suricata git checkout.
exit 0
