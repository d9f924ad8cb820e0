# Sparrow6's bash helpers, as systemd-sparrow provides them (no Raku needed).
# Sourced before the task; $cache_root_dir, $cache_dir, $stdout_file and the
# lookup tables __sparrow_config / __sparrow_vars come from the glue file.

# config a.b.c: the configuration value at a dotted path (a list as "(a b c)").
config() {
    printf '%s' "${__sparrow_config[$1]-}"
}

# task_var a.b: a parameter of this (sub)task, by dotted path.
task_var() {
    printf '%s' "${__sparrow_vars[$1]-}"
}

# set_stdout text...: a line for the task's output (from a hook: shown
# before the task's own output, and checked with it).
set_stdout() {
    echo "$*" >> "${stdout_file}"
}

# ignore_error: (in a hook) the next task's failure does not fail the run.
ignore_error() {
    echo "ignore_error:"
}

# ignore_task_error: the older name of ignore_error.
ignore_task_error() {
    echo "ignore_task_error:"
}

# ignore_task_check_error: (in a hook) failing checks do not fail the run.
ignore_task_check_error() {
    echo "ignore_task_check_error:"
}

# run_task NAME key value ...: (in a hook) run tasks/NAME with these parameters.
run_task() {
    local name=$1
    shift
    while [ $# -gt 0 ]; do
        echo "task_var_bash: $1 ${2-}"
        shift 2 || shift
    done
    echo "task: ${name}"
}

__sparrow_json_string() {
    local s=$1
    s=${s//\\/\\\\}
    s=${s//\"/\\\"}
    s=${s//$'\n'/\\n}
    s=${s//$'\t'/\\t}
    s=${s//$'\r'/\\r}
    printf '"%s"' "$s"
}

# update_state key value: the run's state becomes {"key": "value"}.
update_state() {
    printf '{%s: %s}\n' "$(__sparrow_json_string "$1")" "$(__sparrow_json_string "${2-}")" \
        > "${cache_root_dir}/state.json"
}

# get_state key: a value of the run's state (needs perl, as Debian has it).
get_state() {
    perl -MJSON::PP -e '
        local $/; open my $f, "<", $ARGV[0] or die "get_state: no state yet\n";
        my $s = JSON::PP->new->decode(<$f>); my $v = $s->{$ARGV[1]};
        print ref $v ? JSON::PP->new->canonical->encode($v) : (defined $v ? $v : "");
    ' "${cache_root_dir}/state.json" "$1"
}

# In task.check code blocks: what the last check found (Sparrow6's bash
# helpers have none of these; ours read the plain-text copies).
# matched: the matching lines, one per line.
matched() {
    cat "${cache_root_dir}/matched.txt"
    echo
}

# captures: one line per matching line, its captures separated by tabs.
captures() {
    cat "${cache_root_dir}/captures.txt"
}

# capture: the first matching line's captures, separated by tabs.
capture() {
    head -n 1 "${cache_root_dir}/captures.txt"
}

[ -f "${task_dir}/common.bash" ] && . "${task_dir}/common.bash"
[ -f "${root_dir}/common.bash" ] && [ "${root_dir}" != "${task_dir}" ] && . "${root_dir}/common.bash"
true
