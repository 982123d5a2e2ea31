#!/usr/bin/env bash
# The official JSON-Schema-Test-Suite through each candidate validator of request and
# response bodies (issue 25), and a precompiled 1 KB validation timed. The suite comes from
# Debian's json-schema-test-suite package (drafts 3 to 7; fetched into a temporary
# directory, never copied in). Prints Markdown tables.
#
#   test/interop/jsonschema/run.sh
#
# Needs apt-get (no root: `apt-get download`) and Go.
set -euo pipefail
cd "$(dirname "$0")"
export GOTOOLCHAIN=${GOTOOLCHAIN:-go1.27.3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download -q json-schema-test-suite >/dev/null 2>&1) || { echo "could not fetch Debian's json-schema-test-suite" >&2; exit 1; }
dpkg-deb -x "$work"/json-schema-test-suite_*.deb "$work/x"
echo "JSON-Schema-Test-Suite $(dpkg-deb -f "$work"/json-schema-test-suite_*.deb Version) (Debian), $(go version | cut -d' ' -f3)"
echo
go run . -suite "$work/x/usr/share/json-schema-test-suite"
