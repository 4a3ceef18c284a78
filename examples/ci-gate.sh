#!/usr/bin/env bash
# Quantize the shipped LeNet and fail the CI job when int8 top-1 drops more than a budget.
#
#   examples/ci-gate.sh [MAX_DROP_PP] [extra qtool pipeline flags...]
#
# Exit status: 0 within budget, 3 over budget, otherwise qtool's own code (1 for bad input or
# I/O, 2 for a usage error).
# QTOOL names the qtool binary (default: qtool on PATH). Run it from the repository root.
set -u

qtool=${QTOOL:-qtool}
budget=${1:-0.5}
shift || true

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

"$qtool" pipeline -c configs/lenet-mnist.yaml --out "$out" --plots=false --quiet \
  --json --no-timing --max-drop-pp "$budget" "$@" >"$out/report.json"
status=$?

if [ ! -s "$out/report.json" ]; then
  echo "ci-gate: qtool failed before the evaluation (exit $status)" >&2
  exit "$status"
fi

# Read the drop and agreement from the JSON report, with jq where it is installed.
if command -v jq >/dev/null 2>&1; then
  drop=$(jq -r '.drop_pp' "$out/report.json")
  agreement=$(jq -r '.agreement' "$out/report.json")
else
  drop=$(sed -n 's/^ *"drop_pp": \(-\{0,1\}[0-9.e+-]*\),\{0,1\}$/\1/p' "$out/report.json")
  agreement=$(sed -n 's/^ *"agreement": \([0-9.e+-]*\),\{0,1\}$/\1/p' "$out/report.json")
fi

case $status in
  0) echo "ci-gate: pass: top-1 drop ${drop} pp is within ${budget} pp (agreement ${agreement}%)" ;;
  3) echo "ci-gate: FAIL: top-1 drop ${drop} pp exceeds ${budget} pp (agreement ${agreement}%)" ;;
  *) echo "ci-gate: qtool failed with exit status $status" ;;
esac
exit "$status"
