# Runs inside `unshare --mount --propagation private`: the mounts below live
# and die with this mount namespace, never on the host.
# Arguments: LAB_DIR CGROUP_DIR... -- NSPAWN_ARGS...
set -eu
lab=$1; shift
while [ "$1" != "--" ]; do
    # Join the lab's own cgroups first, so that nspawn's payload/supervisor
    # cgroups are made below them (unique per lab, removed by the reaper).
    echo $$ > "$1/cgroup.procs"
    shift
done
shift
# The host does not run systemd; nspawn needs a /run of its own.
mount -t tmpfs -o mode=0755 tmpfs /run
mount --bind /usr "$lab/root/usr"
exec systemd-nspawn -D "$lab/root" --volatile=yes --register=no --keep-unit \
    --private-network --console=read-only "$@" -b
