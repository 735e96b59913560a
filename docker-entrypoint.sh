#!/bin/sh
# Starts the connector with a V8 heap sized to the container: about 75% of its cgroup memory limit, so that Node
# collects garbage before the kernel kills the container. Without a limit, Node's own default applies.
set -eu
here=$(dirname "$0")

limit=""
if [ -r /sys/fs/cgroup/memory.max ]; then                       # cgroup v2
  limit=$(cat /sys/fs/cgroup/memory.max)
elif [ -r /sys/fs/cgroup/memory/memory.limit_in_bytes ]; then   # cgroup v1
  limit=$(cat /sys/fs/cgroup/memory/memory.limit_in_bytes)
fi

heap_flag=""
case "$limit" in
  ''|max|*[!0-9]*) ;;
  *)
    # cgroup v1 reports "no limit" as a huge number; ignore anything above 1 TiB.
    if [ "$limit" -lt 1099511627776 ]; then
      heap_mb=$((limit / 1048576 * 3 / 4))
      [ "$heap_mb" -ge 64 ] || heap_mb=64
      heap_flag="--max-old-space-size=$heap_mb"
    fi
    ;;
esac

exec node $heap_flag "$here/dist/src/main.js" "$@"
