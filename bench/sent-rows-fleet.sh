#!/usr/bin/env bash
# Issue #19 A on a real gateway: vgw start on an external PostgreSQL (psql at 127.0.0.1:5432, trust auth, as on
# the development machines), a 300-vehicle fleet with 10 downlinks/s for 45 s and --verify, then the count of
# delivered downlinks without a sent row holding bytes, and vgw log verify. Usage: bench/sent-rows-fleet.sh [ROOT]
# (ROOT: a checkout whose bin/vgw.js to run, e.g. an older commit). Ports 28883 and 28080.
set -euo pipefail
ROOT=${1:-/work/main}
W=$(mktemp -d /tmp/vgw-measure-XXXX)
DB=vgw_measure_$(date +%s)
psql -h 127.0.0.1 -U postgres -d test -qc "CREATE DATABASE $DB" >/dev/null
URL="postgres://postgres:measure@127.0.0.1:5432/$DB"
cd "$W"
DATABASE_URL=$URL VGW_DATA_DIR=$W/data VGW_MQTT_PORT=28883 VGW_HTTP_PORT=28080 VGW_HOST=127.0.0.1 VGW_LOG_LEVEL=warn node "$ROOT/bin/vgw.js" start --dev-pki > "$W/gw.log" 2>&1 &
GW=$!
for i in $(seq 1 60); do curl -sf http://127.0.0.1:28080/health >/dev/null && break; sleep 1; done
DATABASE_URL=$URL node "$ROOT/bin/vgw.js" keys create --name fleet --scopes admin,messages:send,transactions:read,stream:read --data-dir "$W/data" > "$W/key.txt" 2>&1 || true
KEY=$(grep -oE 'vgw_[A-Za-z0-9_-]+' "$W/key.txt" | head -1)
[ -z "$KEY" ] && KEY=$(cat "$W/data/admin.key" 2>/dev/null || true)
node "$ROOT/bin/vgw.js" fleet --vehicles 300 --duration 45s --downlink-rate 10 --verify --api http://127.0.0.1:28080 --mqtt mqtts://127.0.0.1:28883 --api-key "$KEY" --cert-dir "$W/certs/dev" --data-dir "$W/data" --workers 1 > "$W/fleet.txt" 2>&1 || true
tail -15 "$W/fleet.txt"
kill -TERM $GW; wait $GW || true
psql -h 127.0.0.1 -U postgres -d $DB -Atc "SELECT 'delivered rows', count(*) FROM transactions WHERE direction='down' AND kind='MESSAGE' AND status='delivered' UNION ALL SELECT 'sent rows', count(*) FROM transactions WHERE direction='down' AND kind='MESSAGE' AND status='sent' UNION ALL SELECT 'delivered without a sent row', count(*) FROM transactions d WHERE d.status='delivered' AND d.kind='MESSAGE' AND NOT EXISTS (SELECT 1 FROM transactions s WHERE s.vin=d.vin AND s.message_id=d.message_id AND s.status='sent' AND s.raw IS NOT NULL)"
if [ -d "$W/data/ledger/checkpoints" ]; then DATABASE_URL=$URL node "$ROOT/bin/vgw.js" log verify --checkpoints "$W/data/ledger/checkpoints" | head -5; fi
echo "workdir $W db $DB"
