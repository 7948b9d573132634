#!/usr/bin/env bash
# The whole server's instructions per request for each face of benches/envoy/faces.py, under
# callgrind: `warden serve` on examples/org (h2, tonic and the runtime included) driven by
# `warden load -c 50 --connections 2` with the same questions as faces.py, once with 1,000
# requests and once with 5,000; the difference over 4,000 cancels start-up and shutdown.
# Unlike requests per second, the count hardly moves with what else the machine runs; what
# moves it is how the requests batch into the server's reads, which follows the scheduling:
# runs of one build differ by up to about 1,000 instructions in 70,000, so compare builds
# over several runs, alternated.
#
#     benches/envoy/faces_callgrind.sh [WARDEN] [FACE...]
#
# WARDEN defaults to $CARGO_TARGET_DIR/release/warden (else target/release/warden); the faces
# to authorize, check-mtls, check-token and authorize-web. Needs valgrind. Takes about a
# minute per face.
set -euo pipefail
cd "$(dirname "$0")/../.."
W=${1:-${CARGO_TARGET_DIR:-target}/release/warden}
shift || true
FACES=("$@")
[ ${#FACES[@]} -gt 0 ] || FACES=(authorize check-mtls check-token authorize-web)
ADDR=127.0.0.1:${WARDEN_CALLGRIND_PORT:-18190}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

TOKEN=$("$W" token --key examples/demo-oidc/signing-key.pem --sub alice --aud orders --ttl 7200)
RES=arn:aws:orders:us-east-1:333333333333:order/42
CTX=(--context aws:SourceIp=127.0.0.1 --context aws:SecureTransport=false --context aws:UserAgent=wrk)

face_args() {
    case $1 in
        authorize) echo --principal arn:aws:sts::333333333333:assumed-role/app-runtime/shop.app-runtime \
            --action orders:GetOrder --resource "$RES" "${CTX[@]}" ;;
        authorize-web) echo --principal arn:aws:sts::333333333333:assumed-role/app-runtime/alice \
            --action orders:GetOrder --resource "$RES" "${CTX[@]}" ;;
        check-mtls) echo --face check --path /orders/42 \
            --peer-principal spiffe://cluster.local/ns/shop/sa/app-runtime --header user-agent=wrk ;;
        check-token) echo --face check --path /orders/42 --header user-agent=wrk ;;
        *) echo "unknown face $1" >&2; exit 2 ;;
    esac
}

total() {
    # Read to the end (an early exit would stop callgrind_annotate with SIGPIPE).
    callgrind_annotate "$1" 2>/dev/null | awk '/PROGRAM TOTALS/ && !done {gsub(",", "", $1); print $1; done = 1}'
}

for face in "${FACES[@]}"; do
    # Assigned first, so that an unknown face stops the script (`set -e` does not see a
    # failure inside a here-string); word-split on purpose: the arguments hold no spaces.
    spec=$(face_args "$face")
    read -r -a args <<<"$spec"
    if [ "$face" = check-token ]; then
        args+=(--header "authorization=Bearer $TOKEN")
    fi
    for n in 1000 5000; do
        valgrind --tool=callgrind --callgrind-out-file="$OUT/$face.$n" \
            "$W" serve --bundle examples/org --grpc-addr "$ADDR" --admin-addr off \
            --worker-threads 2 --watch false >"$OUT/serve.log" 2>&1 &
        server=$!
        ready=
        for _ in $(seq 120); do
            if "$W" load --addr "$ADDR" -n 1 "${args[@]}" >/dev/null 2>&1; then
                ready=1
                break
            fi
            sleep 0.5
        done
        [ -n "$ready" ] || { cat "$OUT/serve.log" >&2; kill "$server"; exit 1; }
        "$W" load --addr "$ADDR" -n "$n" -c 50 --connections 2 "${args[@]}" >"$OUT/load.txt" 2>&1 \
            || { cat "$OUT/load.txt" >&2; kill "$server"; exit 1; }
        kill -TERM "$server"
        wait "$server" || true
    done
    a=$(total "$OUT/$face.1000")
    b=$(total "$OUT/$face.5000")
    echo "$face: $(( (b - a) / 4000 )) instructions per request"
done
