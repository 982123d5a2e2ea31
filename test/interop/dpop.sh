#!/usr/bin/env bash
# DPoP against libraries nobody on the team wrote: access tokens signed with panva's `jose`
# and RFC 9449 proofs made by panva's `dpop` (both fetched from npm), checked by a real
# `tollgate run` through `tollgate check` as Envoy would forward the requests — with server
# nonces on, for client keys ES256, Ed25519 (RFC 9864's fully specified name) and PS256.
# Prints a Markdown table; exits non-zero when a row is not what RFC 9449 says.
#
#   test/interop/dpop.sh
#
# Needs npm, node and Go. Nothing is copied into the project: the packages are installed in
# a temporary directory (KEEP=1 keeps it).
set -euo pipefail
cd "$(dirname "$0")/../.."
work=$(mktemp -d)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null || true; [ "${KEEP:-}" = 1 ] || rm -rf "$work"; }
trap cleanup EXIT
go build -o "$work/tollgate" ./cmd/tollgate
cp test/interop/dpop.mjs "$work/"
(cd "$work" && npm init -y >/dev/null && npm install --silent --no-audit --no-fund jose@6 dpop@2 >/dev/null)
echo "jose $(node -p "require('$work/node_modules/jose/package.json').version"), dpop $(node -p "require('$work/node_modules/dpop/package.json').version"), node $(node --version)"
js() { node "$work/dpop.mjs" "$@"; }
js setup "$work"

addr() {
	local p
	while :; do
		p=$((20000 + RANDOM % 12000))
		(: </dev/tcp/127.0.0.1/$p) 2>/dev/null || { echo "127.0.0.1:$p"; return; }
	done
}
head -c 48 /dev/urandom | base64 >"$work/nonce.key"
cat >"$work/tollgate.yaml" <<YAML
dataDir: $work/data
etcd: {embeddedClientAddr: $(addr), embeddedPeerAddr: $(addr)}
authz: {listen: $(addr), dpop: {requireNonce: true, nonceSecretFile: $work/nonce.key}}
xds: {listen: $(addr)}
admin: {listen: $(addr)}
issuers:
  - {name: js-idp, issuer: "https://js-idp.example", audiences: [bank], jwksFile: $work/jwks.json, acceptedTypes: [at+jwt]}
YAML
cat >"$work/bank.yaml" <<'YAML'
openapi: 3.1.0
info: {title: Bank, version: v1}
x-tollgate-production-endpoints: ["http://127.0.0.1:9000"]
components:
  securitySchemes:
    oauth: {type: oauth2, flows: {clientCredentials: {tokenUrl: "https://js-idp.example/token", scopes: {read: read}}}}
security: [{oauth: [read]}]
paths:
  /accounts: {get: {responses: {"200": {description: ok}}}}
YAML
"$work/tollgate" run --config "$work/tollgate.yaml" -f "$work/bank.yaml" >"$work/run.log" 2>&1 &
pid=$!
admin=$(grep -oP 'admin: \{listen: \K[^}]+' "$work/tollgate.yaml")
for _ in $(seq 100); do curl -fs "http://$admin/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
curl -fs "http://$admin/readyz" >/dev/null || { cat "$work/run.log"; exit 1; }

htu=https://localhost/bank/v1/accounts
check() { # AUTHORIZATION PROOF [PATH] -> the check's output
	"$work/tollgate" check --config "$work/tollgate.yaml" --path "${3:-/bank/v1/accounts}" -H "Authorization: $1" -H "DPoP: $2" || true
}
fails=0
row() { # NAME WANT OUTPUT
	local got
	got=$(grep -oE '(ALLOWED|DENIED) [0-9]+' <<<"$3" | head -1)
	local err
	err=$(grep -oE 'error="[a-z_]+"' <<<"$3" | head -1 || true)
	local ok=yes
	[[ "$got ${err}" == *"$2"* ]] || { ok=NO; fails=$((fails + 1)); }
	printf '| %s | %s | %s %s | %s |\n' "$1" "$2" "$got" "$err" "$ok"
}
echo
echo "| case | RFC 9449 says | Tollgate | as it says |"
echo "|---|---|---|---|"
for alg in ES256 Ed25519 PS256; do
	tok=$(js token "$work" "$alg")
	out=$(check "DPoP $tok" "$(js proof "$work" "$alg" GET "$htu" "$tok")")
	row "$alg: a proof without a nonce" 'DENIED 401 error="use_dpop_nonce"' "$out"
	nonce=$(grep -oiP 'dpop-nonce: \K\S+' <<<"$out" || true)
	proof=$(js proof "$work" "$alg" GET "$htu" "$tok" "$nonce")
	row "$alg: the retry with the server's nonce" "ALLOWED 200" "$(check "DPoP $tok" "$proof")"
	row "$alg: the same proof again" 'DENIED 401 error="invalid_dpop_proof"' "$(check "DPoP $tok" "$proof")"
	row "$alg: a proof for another URL" 'DENIED 401 error="invalid_dpop_proof"' "$(check "DPoP $tok" "$(js proof "$work" "$alg" GET https://localhost/bank/v1/other "$tok" "$nonce")")"
	row "$alg: a proof for another method" 'DENIED 401 error="invalid_dpop_proof"' "$(check "DPoP $tok" "$(js proof "$work" "$alg" POST "$htu" "$tok" "$nonce")")"
	row "$alg: a made-up nonce" 'DENIED 401 error="use_dpop_nonce"' "$(check "DPoP $tok" "$(js proof "$work" "$alg" GET "$htu" "$tok" "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")")"
	row "$alg: the bound token as a Bearer token" 'DENIED 401 error="invalid_token"' "$(check "Bearer $tok" "")"
done
tok=$(js token "$work" ES256)
row "a proof by another client's key" 'DENIED 401 error="invalid_dpop_proof"' "$(check "DPoP $tok" "$(js proof "$work" Ed25519 GET "$htu" "$tok" "$nonce")")"
row "a proof for another token" 'DENIED 401 error="invalid_dpop_proof"' "$(check "DPoP $tok" "$(js proof "$work" ES256 GET "$htu" "$(js token "$work" ES256)" "$nonce")")"
echo
[ "$fails" = 0 ] || { echo "$fails rows are not what RFC 9449 says"; exit 1; }
