# The lab's reaper, in its own session so that signals aimed at the test run
# do not reach it. It waits for its stdin to close (the lab was dropped, or
# the test process died in any way, SIGKILL included) or for the watchdog
# deadline, then kills whatever is left in the lab's cgroups, removes them
# and the lab directory.
# Arguments: WATCHDOG_SECONDS LAB_DIR CGROUP_DIR...
trap '' INT TERM HUP
deadline=$1 lab=$2; shift 2
if ! read -r -t "$deadline" _; then :; fi
for cg in "$@"; do
    [ -d "$cg" ] || continue
    if [ -e "$cg/cgroup.kill" ]; then
        echo 1 > "$cg/cgroup.kill" 2>/dev/null
    fi
    # cgroup v1 (name=systemd) or kernels without cgroup.kill.
    for i in 1 2 3 4 5 6 7 8 9 10; do
        pids=$(find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null)
        [ -z "$pids" ] && break
        kill -9 $pids 2>/dev/null
        sleep 0.2
    done
done
for cg in "$@"; do
    [ -d "$cg" ] && find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null
done
rm -rf --one-file-system "$lab"
