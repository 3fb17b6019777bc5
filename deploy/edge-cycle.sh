#!/bin/sh
# One edge cycle: ingest every export in INBOX (then move it to INBOX/done), fetch the newest
# global models, rebuild the profiles (new messages are scored), sync with the server. Settings come from the environment (edge.env).
# Exporters must write a file elsewhere and *rename* it into INBOX when complete.
set -eu
inbox=${1:?usage: edge-cycle.sh INBOX_DIR}
fedprofile=${FEDPROFILE_BIN:-fedprofile}
mkdir -p "$inbox/done"
for file in "$inbox"/*.jsonl "$inbox"/*.ndjson; do
    [ -f "$file" ] || continue
    status=0
    "$fedprofile" edge ingest "$file" || status=$?
    case $status in
        0 | 3) mv "$file" "$inbox/done/" ;; # 3: bad lines quarantined, good lines kept
        *) exit "$status" ;;
    esac
done
for model in behaviour text; do # a failed fetch keeps the model held (and its gate)
    "$fedprofile" edge fetch-model --model "$model" ||
        echo "edge-cycle: fetching the $model model failed; scoring with the one held" >&2
done
"$fedprofile" edge profile
"$fedprofile" edge sync
