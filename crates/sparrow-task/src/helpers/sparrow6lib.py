# Sparrow6's Python helpers, as systemd-sparrow provides them (Python 3).
# A task does `from sparrow6lib import *`; the paths come from glue.py.
# Files are UTF-8 whatever the locale (an ASCII one could not read them).
import json as _json

from glue import *  # root_dir, task_dir, cache_root_dir, cache_dir, os, ...

_config = None


def config():
    """The task's configuration (defaults merged with the caller's parameters)."""
    global _config
    if _config is None:
        with open(cache_root_dir() + "/config.json", encoding="utf-8") as f:
            _config = _json.load(f)
    return _config


def task_variables():
    """All the parameters of this (sub)task, a dict."""
    with open(cache_dir() + "/variables.json", encoding="utf-8") as f:
        return _json.load(f) or {}


def task_var(name):
    """A parameter of this (sub)task."""
    return task_variables()[name]


def set_stdout(line):
    """A line for the task's output (from a hook: shown before the task's own)."""
    with open(stdout_file(), "a", encoding="utf-8") as f:
        f.write(str(line) + "\n")


def ignore_error():
    print("ignore_error:", flush=True)


def ignore_task_error(val=None):
    """The older name of ignore_error."""
    print("ignore_task_error:", flush=True)


def ignore_task_check_error():
    print("ignore_task_check_error:", flush=True)


def run_task(name, params=None):
    """(In a hook) runs tasks/NAME with these parameters."""
    if not name or any(c.isspace() for c in name):
        raise ValueError("run_task: %r is not a task name" % (name,))
    print("task_var_json_begin")
    print(_json.dumps(params or {}))
    print("task_var_json_end")
    print("task: " + name, flush=True)


def update_state(state):
    """The run's state (what the caller gets back) becomes `state`."""
    with open(cache_root_dir() + "/state.json", "w", encoding="utf-8") as f:
        _json.dump(state, f)


def get_state():
    with open(cache_root_dir() + "/state.json", encoding="utf-8") as f:
        return _json.load(f)


def _load(name):
    with open(cache_root_dir() + "/" + name, encoding="utf-8") as f:
        return _json.load(f)


def captures():
    """(In a task.check code: block) the captures of the last matching check."""
    return [c["data"] for c in _load("captures.json")]


def capture():
    c = captures()
    return c[0] if c else None


def matched():
    with open(cache_root_dir() + "/matched.txt", encoding="utf-8") as f:
        return [l.rstrip("\n") for l in f]


def streams():
    """Stream id -> the lines each step matched in it (data, captures, index, next)."""
    return _load("streams.json")


def streams_array():
    """Per stream, in id order: each step's captures."""
    return _load("streams-array.json")
