#!/bin/sh
# Prints and writes a message to the termination-message path, then exits 0 (or $SMOKE_EXIT).
msg="${SMOKE_MESSAGE:-flowcraft-smoke ok}"
echo "$msg"
python3 -c 'import sys; print("python", sys.version.split()[0])'
if [ -w "$(dirname "${TERMINATION_LOG:-/dev/termination-log}")" ] || [ -e "${TERMINATION_LOG:-/dev/termination-log}" ]; then
  printf '%s' "$msg" > "${TERMINATION_LOG:-/dev/termination-log}"
fi
exit "${SMOKE_EXIT:-0}"
