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
if [ -n "${SPARROW_LAB_USR_LAYER:-}" ]; then
    # A package's files laid over the host's /usr: an overlay with lower
    # layers only is read-only, so neither directory is ever written.
    mount -t overlay -o ro,lowerdir="$SPARROW_LAB_USR_LAYER":/usr sparrow-lab-usr "$lab/root/usr"
else
    mount --bind /usr "$lab/root/usr"
fi
# The project's binary where the README's manual install puts it, so that
# generated hook lines (/usr/local/bin/systemd-sparrow ... hook run) find it.
# The tmpfs hides the host's /usr/local/bin in this mount namespace only.
if [ -e "$lab/bin/systemd-sparrow" ]; then
    mount -t tmpfs -o mode=0755 tmpfs "$lab/root/usr/local/bin"
    for n in systemd-sparrow systemd-sparrowd; do
        : > "$lab/root/usr/local/bin/$n"
        mount --bind "$lab/bin/$n" "$lab/root/usr/local/bin/$n"
    done
fi
exec systemd-nspawn -D "$lab/root" --volatile=yes --register=no --keep-unit \
    --private-network --console=read-only "$@" -b
