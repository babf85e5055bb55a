#!/usr/bin/env bash
# The acceptance check of the lab: after `dcops lab up --hosts 3 && dcops lab down`,
# `ip netns list` and /proc/mounts are exactly as before. Usage: scripts/lab/check-clean.sh [NAME] [MODE]
set -euo pipefail
cd "$(dirname "$0")/../.."
name=${1:-chk$$}
mode=${2:-chroot}
dcops=.venv/bin/dcops
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ip netns list | sort >"$tmp/netns.before"
sort /proc/mounts >"$tmp/mounts.before"
"$dcops" lab up --name "$name" --hosts 3 --mode "$mode"
"$dcops" lab status --name "$name"
"$dcops" lab down --name "$name"
ip netns list | sort >"$tmp/netns.after"
sort /proc/mounts >"$tmp/mounts.after"
rc=0
diff -u "$tmp/netns.before" "$tmp/netns.after" || rc=1
diff -u "$tmp/mounts.before" "$tmp/mounts.after" || rc=1
if pgrep -f "/lab/$name/" >/dev/null; then echo "processes of lab $name remain"; rc=1; fi
[ $rc -eq 0 ] && echo "clean: namespaces and mounts are as before (lab $name, $mode)"
exit $rc
