#!/usr/bin/env bash
# Capture a program's memory trace and address-space layout for `pte-lab replay`.
#
#   scripts/capture-trace.sh OUT -- PROGRAM [ARGS...]
#
# writes OUT.lackey (valgrind lackey: `valgrind --tool=lackey --trace-mem=yes`) and OUT.maps (the
# /proc/PID/maps of the traced process at its exit), then prints the replay command:
#
#   pte-lab replay OUT.lackey --trace-format lackey --maps OUT.maps
#
# How: valgrind runs the program with its gdbserver on and `--vgdb-stop-at=exit`, so the process
# stops, with every mapping still in place, just before it exits; the script copies
# /proc/PID/maps then and ends the process with `vgdb --pid=PID v.kill`. The addresses in the trace
# and in the maps are both those of the program *under valgrind* (valgrind loads it at its own
# addresses: ld.so at 0x04000000, stack near 0x1fff000000), so they agree with each other.
#
# Limits:
# - One process, one thread: children are not traced (--trace-children=no); the accesses of a
#   multi-threaded program come interleaved in one stream.
# - The maps are the layout at exit: a mapping the program removed before exiting is missing, and
#   the replay counts touches of it as SIGSEGV (counters workload.segv). Mappings moved by mremap
#   show only where they ended.
# - The maps include valgrind's own mappings (the tool at 0x58000000, its anonymous arenas): they
#   become VMAs the trace never touches, which costs nothing in the model.
# - A program killed by a signal never reaches the exit stop: the script then writes no maps
#   (replay without --maps uses the 2 MiB-region heuristic).
# - The program's exit status is lost (the process is ended from the exit stop); its stdout and
#   stderr pass through.
set -euo pipefail

if [[ $# -lt 3 || "$2" != "--" ]]; then
  echo "usage: $0 OUT -- PROGRAM [ARGS...]" >&2
  exit 2
fi
out=$1
shift 2
command -v valgrind >/dev/null || { echo "$0: valgrind is not installed (apt-get install valgrind)" >&2; exit 2; }
command -v vgdb >/dev/null || { echo "$0: vgdb (part of valgrind) is not installed" >&2; exit 2; }

log="$out.lackey"
maps="$out.maps"
rm -f "$log" "$maps"
valgrind --tool=lackey --trace-mem=yes --trace-children=no --vgdb=yes --vgdb-stop-at=exit \
  --log-file="$log" -- "$@" &
bg=$!

# The traced process's pid is the one in the log's ==PID== banner.
pid=""
stopped=0
for _ in $(seq 1 600000); do
  if [[ -z "$pid" && -s "$log" ]]; then pid=$(head -c 64 "$log" | sed -n 's/^==\([0-9][0-9]*\)==.*/\1/p' | head -n 1); fi
  if [[ -n "$pid" ]] && tail -c 300 "$log" | grep -q '(action at exit) vgdb me'; then stopped=1; break; fi
  kill -0 "$bg" 2>/dev/null || break
  sleep 0.02
done

if [[ $stopped -eq 1 ]]; then
  cp "/proc/$pid/maps" "$maps.tmp" && mv "$maps.tmp" "$maps"
  vgdb --pid="$pid" v.kill >/dev/null 2>&1 || kill "$pid" 2>/dev/null || true
else
  echo "$0: the program did not stop at exit (killed by a signal?): no maps written" >&2
fi
wait "$bg" 2>/dev/null || true

bytes=$(stat -c %s "$log")
records=$(grep -c '^[ I]' "$log" || true)
echo "$log: $records trace records, $bytes bytes"
if [[ -f "$maps" ]]; then
  echo "$maps: $(wc -l <"$maps") mappings"
  echo "replay: pte-lab replay $log --trace-format lackey --maps $maps"
else
  echo "replay: pte-lab replay $log --trace-format lackey"
fi
