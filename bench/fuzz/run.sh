#!/usr/bin/env bash
# Run every parser harness (or those in $FORMATS) for SECONDS (default 600) at the lowest
# priority, PARALLEL (default 2) at a time.
# Logs and crashing inputs go to bench/fuzz/out/ (ignored by git); summarise with summarize.py.
set -u
cd "$(dirname "$0")/../.."
SECONDS_EACH=${1:-600}
PARALLEL=${2:-2}
OUT=bench/fuzz/out
mkdir -p "$OUT"
FORMATS=${FORMATS:-"text markdown html pdf docx pptx xlsx csv json eml"}
printf '%s\n' $FORMATS | xargs -P "$PARALLEL" -I{} sh -c \
  "mkdir -p $OUT/{}/corpus $OUT/{}/crashes && nice -n 19 .venv/bin/python bench/fuzz/harness.py {} $OUT/{}/corpus \
   -max_total_time=$SECONDS_EACH -rss_limit_mb=2048 -timeout=20 -max_len=200000 \
   -artifact_prefix=$OUT/{}/crashes/ -print_final_stats=1 > $OUT/{}/log.txt 2>&1; echo {} exit \$? >> $OUT/{}/log.txt"
