#!/usr/bin/env bash
# The whole suite: typecheck, build, unit, kernel (netns) and lab tests, then a leak check.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "the suite builds network namespaces: run it as root" >&2; exit 1; }
npx tsc --noEmit -p .
npm run --silent build
npx jest --ci --runInBand
