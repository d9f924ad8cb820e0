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
# They go as JSON (one line), so a value with a newline cannot end the
# line and pass for a control line (`task: other`).
run_task() {
    local name=$1 json="" sep=""
    shift
    case $name in
        *[[:space:]]* | "") echo "run_task: ${name@Q} is not a task name" >&2; return 1 ;;
    esac
    while [ $# -gt 0 ]; do
        __sparrow_json "$1"
        json+="$sep$__sparrow_j: "
        __sparrow_json "${2-}"
        json+=$__sparrow_j
        sep=", "
        shift 2 || shift
    done
    printf 'task_var_json_begin\n{%s}\ntask_var_json_end\ntask: %s\n' "$json" "$name"
}

# __sparrow_json TEXT: sets __sparrow_j to TEXT as a JSON string (no
# subshell: run_task and update_state call it per argument).
__sparrow_json() {
    local s=$1 out="" c i
    s=${s//\\/\\\\}
    s=${s//\"/\\\"}
    s=${s//$'\n'/\\n}
    s=${s//$'\t'/\\t}
    s=${s//$'\r'/\\r}
    # Other control characters are invalid in JSON strings: rare, so
    # escaped one character at a time only when there are any.
    if [[ $s == *[[:cntrl:]]* ]]; then
        for ((i = 0; i < ${#s}; i++)); do
            c=${s:i:1}
            [[ $c == [[:cntrl:]] ]] && printf -v c '\\u%04x' "'$c"
            out+=$c
        done
        s=$out
    fi
    __sparrow_j="\"$s\""
}

# update_state key value: the run's state becomes {"key": "value"}.
update_state() {
    local key
    __sparrow_json "$1"
    key=$__sparrow_j
    __sparrow_json "${2-}"
    printf '{%s: %s}\n' "$key" "$__sparrow_j" > "${cache_root_dir}/state.json"
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
