#!/usr/bin/env bash
# make test-tarantool: starts a Cartridge double in a scratch dir, runs
# test_double.lua against it through console sockets, checks the
# `tarantoolctl connect` path the operator takes (stdin fed, exit codes), and
# stops the double.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
command -v tarantool >/dev/null && command -v tarantoolctl >/dev/null ||
  { echo "tarantool and tarantoolctl are needed: make setup-tarantool" >&2; exit 1; }
# A short scratch dir: unix socket paths have at most 107 bytes.
SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/tdbl.XXXXXX")
export DOUBLE_STATE_DIR=$SCRATCH DOUBLE_MARKERS_DIR=$SCRATCH/markers
trap 'bash "$HERE/double.sh" stop; rm -rf "$SCRATCH"' EXIT
bash "$HERE/double.sh" start

# net.box's console mode (what the test uses as a client) warns on every connect.
tarantool "$HERE/test_double.lua" "$SCRATCH/double.control" "$SCRATCH" "$SCRATCH/markers" \
  2> >(grep -v 'Netbox .* deprecated' >&2)

# The operator's path: `tarantoolctl connect <socket>` with the chunk on stdin.
# Debian's tarantoolctl 2.6 reads stdin to the end and sends it as ONE chunk,
# prints the YAML reply on stdout and exits 0, or exits 3 on a Lua error.
fails=0
check() { # NAME EXPECTED_RC EXPECTED_STDOUT_REGEX CHUNK
  local out rc=0
  out=$(printf '%s\n' "$4" | tarantoolctl connect "$SCRATCH/ns-a-router-0.control" 2>/dev/null) || rc=$?
  if [[ $rc == "$2" ]] && grep -Eq -- "$3" <<<"$out"; then echo "ok    tarantoolctl: $1"
  else echo "FAIL  tarantoolctl: $1 (exit $rc, want $2; stdout: $out)"; fails=$((fails + 1)); fi
}
echo "return require('cartridge_double').serve('$SCRATCH/ns-a-router-0.control', 'ns-a', 'router-0')" |
  tarantoolctl connect "$SCRATCH/double.control" >/dev/null 2>&1
check 'a multi-line chunk runs as one' 0 '^- 5$' "local c = require('cartridge')
local n = 0
for _ in pairs(c) do n = n + 1 end
return n > 3 and 5 or 0"
check 'a Lua error exits 3' 3 '^$' "error('boom')"
check 'an error object comes back as YAML' 0 'class_name: ProbeServerError' \
  "return require('cartridge').admin_probe_server('nowhere-0.svc:3301')"
(( fails == 0 )) || { echo "$fails tarantoolctl checks failed"; exit 1; }
