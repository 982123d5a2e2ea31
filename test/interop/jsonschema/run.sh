#!/usr/bin/env bash
# The official JSON-Schema-Test-Suite through each candidate validator of request and
# response bodies (issue 25), and a precompiled 1 KB validation timed. The suite comes from
# Debian: its json-schema-test-suite package (drafts 3 to 7) and the copy of drafts 2019-09
# and 2020-12 that its golang-github-flowstack-go-jsonschema-dev package ships as testdata;
# fetched into a temporary directory, never copied in. Prints Markdown tables.
#
#   test/interop/jsonschema/run.sh
#
# Needs apt-get (no root: `apt-get download`) and Go.
set -euo pipefail
cd "$(dirname "$0")"
export GOTOOLCHAIN=${GOTOOLCHAIN:-go1.27.3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && apt-get download -q json-schema-test-suite golang-github-flowstack-go-jsonschema-dev >/dev/null 2>&1) || { echo "could not fetch the suites from Debian" >&2; exit 1; }
dpkg-deb -x "$work"/json-schema-test-suite_*.deb "$work/x"
dpkg-deb -x "$work"/golang-github-flowstack-go-jsonschema-dev_*.deb "$work/y"
echo "JSON-Schema-Test-Suite $(dpkg-deb -f "$work"/json-schema-test-suite_*.deb Version) (Debian's json-schema-test-suite: drafts 3-7), $(go version | cut -d' ' -f3)"
echo
go run . -suite "$work/x/usr/share/json-schema-test-suite"
# Drafts 2019-09 and 2020-12 (OpenAPI 3.1's dialect): the suite's copy that Debian's
# golang-github-flowstack-go-jsonschema-dev ships as its testdata.
flow=$work/y/usr/share/gocode/src/github.com/flowstack/go-jsonschema/testdata
echo
echo "JSON-Schema-Test-Suite drafts 2019-09 and 2020-12 (as golang-github-flowstack-go-jsonschema-dev $(dpkg-deb -f "$work"/golang-github-flowstack-go-jsonschema-dev_*.deb Version) ships them)"
echo
mkdir -p "$work/newer"
ln -s "$flow/draft2019-09" "$flow/draft2020-12" "$work/newer/"
go run . -tests "$work/newer" -remotes "$flow/remotes" -no-bench
