#!/usr/bin/env bash
# Runs the Where2Eat demo: throwaway mTLS certificates and API key, the
# recommender API (mutual TLS), keyless dev (issuer, vending, sidecar proxy)
# with demo/keyless.yaml, and the micro app. `make demo` builds bin/keyless
# and the browser client first, then runs this. Ctrl-C stops everything.
#
# Ports (override with these variables):
#   DEMO_ISSUER_PORT=8787 DEMO_PROXY_PORT=8788 DEMO_APP_PORT=8789 DEMO_API_PORT=8790
# State (keyless's database, the throwaway secrets, logs): DEMO_DATA=.keyless-demo
# Signing in from a phone: DEMO_HOST=192.168.1.20 (this machine's LAN address;
# the sign-in page then listens on every interface) or DEMO_PUBLIC_URL=https://...
# (a tunnel to the issuer port): the QR code and the banner use it.
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
ISSUER_PORT=${DEMO_ISSUER_PORT:-8787}
PROXY_PORT=${DEMO_PROXY_PORT:-8788}
APP_PORT=${DEMO_APP_PORT:-8789}
API_PORT=${DEMO_API_PORT:-8790}
DATA=${DEMO_DATA:-.keyless-demo}
ISSUER=http://127.0.0.1:$ISSUER_PORT
PROXY=http://127.0.0.1:$PROXY_PORT
APP=http://127.0.0.1:$APP_PORT
PUBLIC_URL=${DEMO_PUBLIC_URL:-}
ISSUER_ADDR=127.0.0.1:$ISSUER_PORT
if [ -n "${DEMO_HOST:-}" ] && [ -z "$PUBLIC_URL" ]; then
  PUBLIC_URL=http://$DEMO_HOST:$ISSUER_PORT
  ISSUER_ADDR=0.0.0.0:$ISSUER_PORT
fi

# Every port is checked before anything is written: a demo already running
# keeps its secrets and its logs.
busy=0
for v in DEMO_ISSUER_PORT:$ISSUER_PORT DEMO_PROXY_PORT:$PROXY_PORT DEMO_APP_PORT:$APP_PORT DEMO_API_PORT:$API_PORT; do
  name=${v%%:*} port=${v#*:}
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "demo: port $port is in use (another make demo?); stop it, or choose another port: $name=<port> make demo" >&2
    busy=1
  fi
done
[ "$busy" = 0 ] || exit 1

for b in bin/keyless web-component/keyless.wasm web-component/wasm_exec.js; do
  [ -e "$b" ] || { echo "demo: $b is missing; run 'make demo' (it builds it)" >&2; exit 1; }
done

mkdir -p "$DATA/bin" "$DATA/logs"
chmod 700 "$DATA"
echo "demo: building the recommender, the app server and the certificate tool"
"$GO" build -o "$DATA/bin/" ./demo/certs ./demo/recommender ./demo/appserver

# Fresh throwaway secrets on every start: nothing long-lived, nothing committed.
"$DATA/bin/certs" -out "$DATA/secrets"

# demo/keyless.yaml names the default ports and .keyless-demo/; any other
# choice runs a copy with those replaced.
CONFIG=demo/keyless.yaml
if [ "$APP_PORT" != 8789 ] || [ "$API_PORT" != 8790 ] || [ "$DATA" != .keyless-demo ]; then
  CONFIG=$DATA/keyless.yaml
  sed -e "s#127\.0\.0\.1:8789#127.0.0.1:$APP_PORT#g" -e "s#127\.0\.0\.1:8790#127.0.0.1:$API_PORT#g" \
      -e "s#\.keyless-demo/#$DATA/#g" demo/keyless.yaml > "$CONFIG"
fi
bin/keyless policy test "$CONFIG" > "$DATA/logs/policy-test.log" || { cat "$DATA/logs/policy-test.log"; exit 1; }

pids=()
cleanup() {
  trap - INT TERM EXIT
  echo
  echo "demo: stopping"
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  echo "demo: stopped"
}
trap 'cleanup; exit 0' INT TERM
trap cleanup EXIT

wait_for() { # wait_for NAME LOG PATTERN: until LOG shows PATTERN, up to 30 s
  for _ in $(seq 300); do
    if grep -q "$3" "$2" 2>/dev/null; then return 0; fi
    if ! kill -0 "${pids[-1]}" 2>/dev/null; then break; fi
    sleep 0.1
  done
  echo "demo: $1 did not start; its log ($2):" >&2
  tail -n 30 "$2" >&2
  exit 1
}

"$DATA/bin/recommender" -addr "127.0.0.1:$API_PORT" -secrets "$DATA/secrets" \
  > "$DATA/logs/recommender.log" 2>&1 &
pids+=($!)
wait_for recommender "$DATA/logs/recommender.log" "listening on"

public=()
[ -z "$PUBLIC_URL" ] || public=(--public-url "$PUBLIC_URL")
bin/keyless dev --config "$CONFIG" --data "$DATA" \
  --issuer-addr "$ISSUER_ADDR" --proxy-addr "127.0.0.1:$PROXY_PORT" "${public[@]}" \
  > "$DATA/logs/keyless.log" 2>&1 &
pids+=($!)
wait_for "keyless dev" "$DATA/logs/keyless.log" "Proxy:"

"$DATA/bin/appserver" -addr "127.0.0.1:$APP_PORT" -issuer "$ISSUER" -api "$PROXY" \
  > "$DATA/logs/appserver.log" 2>&1 &
pids+=($!)
wait_for "app server" "$DATA/logs/appserver.log" "serving"

PHONE="on the page your phone (or another tab) opens from the QR code"
[ -z "$PUBLIC_URL" ] || PHONE="on $PUBLIC_URL/device, which the QR code opens on your phone"
cat <<BANNER

  Where2Eat is running.

  Open the app:      $APP/
  Preview mode:      $APP/?preview
  Sign in as:        alice (or bob), password where2eat-demo,
                     $PHONE
  Revoke her leases: bin/keyless revoke --sub alice --data $DATA
  API requests log:  tail -f $DATA/logs/recommender.log
  keyless log:       $DATA/logs/keyless.log   (issuer $ISSUER, proxy $PROXY)

  Press Ctrl-C to stop.

BANNER

# Stop everything when any of the three exits. On Ctrl-C the three stop
# cleanly (status 0) and the traps say so; anything else is a crash.
set +e
wait -n "${pids[@]}"
status=$?
if [ "$status" -ne 0 ]; then
  echo "demo: a process failed (status $status); see $DATA/logs/" >&2
fi
exit "$status"
