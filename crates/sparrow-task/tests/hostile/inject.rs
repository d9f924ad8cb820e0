//! Parameters, descriptions and paths that try to inject code or control
//! lines: none may run anything, and every value must reach the script
//! exactly (bash cannot hold a NUL: it is dropped there, documented).

use serde_json::{json, Value};
use sparrow_task::{Options, Status};

use crate::{have, shown, Task};

/// A value with everything that breaks naive quoting. No trailing
/// newline: bash's `$(...)` would strip it.
const NASTY: &str = "a'b\"c$(touch PWNED)`touch PWNED`\\ d\nline2\r\ttab\u{1}\u{1f}\u{7f}\u{e9}\u{2028}\u{1F600} ]} end";

/// Keys that are not identifiers.
const KEYS: [&str; 5] = ["v", "k y", "a.b", "x]y", "q'\"$(touch PWNED)`x`"];

fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The parameters: every key set to `value`, a nested one, and `keys`
/// (what scripts iterate over) and `p` (what hooks pass to the sub-task).
fn params(value: &str) -> Value {
    let mut p = serde_json::Map::new();
    for k in KEYS {
        p.insert(k.into(), json!(value));
    }
    json!({
        "keys": KEYS, "p": Value::Object(p.clone()), "nested": {"in": value},
        "v": value, "k y": value, "a.b": value, "x]y": value, "q'\"$(touch PWNED)`x`": value,
    })
}

#[test]
fn bash_run_task_values_reach_the_sub_task_exactly_and_inject_nothing() {
    // run_task printed `task_var_bash: KEY VALUE` lines: a newline in a
    // value made the rest a control line (here: running tasks/evil), a \r
    // cut it, and a key with a space lost its value. (And the end marker
    // inside a value cut the JSON of every helper.)
    let value = "x\ntask: evil\nignore_error:\r tail \\n \u{1} task_var_json_end x";
    let t = Task::with(&[
        (
            "hook.bash",
            "run_task sub v \"$(config v)\" 'k y' '  spaced' 'q\"' \"$(config v)\"\n",
        ),
        ("tasks/evil/task.bash", "touch \"$root_dir/evil-ran\"\n"),
        (
            "tasks/sub/task.bash",
            "task_var v > \"$root_dir/v\"\ntask_var 'k y' > \"$root_dir/ky\"\nprintf %s \"$v\" > \"$root_dir/dollar-v\"\n",
        ),
    ]);
    let o = t.run(json!({ "v": value }));
    assert_eq!(o.status, Status::Passed, "{}", shown(&o));
    assert!(!t.root().join("evil-ran").exists(), "a value ran a task");
    let read = |f: &str| std::fs::read_to_string(t.root().join(f)).unwrap();
    assert_eq!(read("v"), value);
    assert_eq!(read("dollar-v"), value);
    assert_eq!(read("ky"), "  spaced");
}

#[test]
fn bash_update_state_keeps_control_characters_and_bad_bytes() {
    // A control character other than \n \t \r made invalid JSON, and a
    // byte that is not UTF-8 an unreadable file: the state was lost.
    let value = "a\u{1}b\u{1f}c\"\\\t\u{7f}\u{e9}";
    let t = Task::with(&[("task.bash", "update_state k \"$(config v)\"\n")]);
    let o = t.run(json!({ "v": value }));
    assert_eq!(o.status, Status::Passed, "{}", shown(&o));
    assert_eq!(o.state, json!({ "k": value }));

    let t = Task::with(&[("task.bash", "update_state k \"a$(printf '\\xff')b\"\n")]);
    let o = t.run(Value::Null);
    assert_eq!(o.status, Status::Passed, "{}", shown(&o));
    assert_eq!(o.state, json!({ "k": "a\u{fffd}b" }));
}

/// Runs a hook, a sub-task and a task in one language: the task prints
/// `config()[k]` for every key (and the nested one), each as one JSON
/// line; the sub-task puts `task_var(k)` for what the hook passed in the
/// state (its output is not the run's).
fn round_trip(files: &[(&str, &str)], value: &str) {
    let t = Task::with(files);
    let o = t.run(params(value));
    assert_eq!(o.status, Status::Passed, "{}", shown(&o));
    let got: Vec<Value> = o
        .stdout
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}\n{}", shown(&o))))
        .collect();
    assert_eq!(got, vec![json!(value); KEYS.len() + 1], "{}", files[0].0);
    assert_eq!(
        o.state,
        json!({ "sub": vec![value; KEYS.len()] }),
        "{}",
        files[0].0
    );
    assert!(!t.root().join("PWNED").exists());
}

#[test]
fn values_and_keys_round_trip_in_python_perl_and_ruby() {
    let value = format!("{NASTY}\u{0}nul");
    round_trip(
        &[
            (
                "hook.py",
                "from sparrow6lib import *\nrun_task('sub', config()['p'])\n",
            ),
            (
                "tasks/sub/task.py",
                "from sparrow6lib import *\nupdate_state({'sub': [task_var(k) for k in config()['keys']]})\n",
            ),
            (
                "task.py",
                "from sparrow6lib import *\nimport json\nc = config()\nfor k in c['keys']:\n    print(json.dumps(c[k]))\nprint(json.dumps(c['nested']['in']))\n",
            ),
        ],
        &value,
    );
    let perl_print = "my $j = JSON::PP->new->ascii->allow_nonref;\n";
    round_trip(
        &[
            ("hook.pl", "run_task('sub', config()->{p});\n"),
            (
                "tasks/sub/task.pl",
                "update_state({ sub => [map { task_var($_) } @{ config()->{keys} }] });\n",
            ),
            (
                "task.pl",
                &format!("{perl_print}my $c = config();\nprint $j->encode($c->{{$_}}), \"\\n\" for @{{$c->{{keys}}}};\nprint $j->encode($c->{{nested}}{{in}}), \"\\n\";\n"),
            ),
        ],
        &value,
    );
    round_trip(
        &[
            ("hook.rb", "run_task('sub', config['p'])\n"),
            (
                "tasks/sub/task.rb",
                "update_state({ 'sub' => config['keys'].map { |k| task_var(k) } })\n",
            ),
            (
                "task.rb",
                "c = config\nc['keys'].each { |k| puts JSON.generate(c[k], ascii_only: true) }\nputs JSON.generate(c['nested']['in'], ascii_only: true)\n",
            ),
        ],
        &value,
    );
}

#[test]
fn values_and_keys_round_trip_in_raku() {
    // (Its own test: Raku compiles the helpers for each script, slowly.)
    let value = format!("{NASTY}\u{0}nul");
    if !have("raku", &["-e", ""]) {
        eprintln!("note: raku is not on PATH, skipped");
        return;
    }
    let to = "Rakudo::Internals::JSON.to-json";
    round_trip(
        &[
            ("hook.raku", "run_task('sub', config()<p>);\n"),
            (
                "tasks/sub/task.raku",
                "update_state(%( sub => config()<keys>.map({ task_var($_) }).Array ));\n",
            ),
            (
                "task.raku",
                &format!("my %c = config();\nsay {to}(%c{{$_}}) for %c<keys>.list;\nsay {to}(%c<nested><in>);\n"),
            ),
        ],
        &value,
    );
}

#[test]
fn values_and_keys_round_trip_in_bash_but_a_nul() {
    // The task writes each value to a file (raw: bash has no JSON); the
    // hook passes each key and value to the sub-task.
    let value = format!("{NASTY}\u{0}nul");
    let mut hook = String::from("run_task sub");
    let mut sub = String::new();
    let mut task = String::new();
    for (i, k) in KEYS.iter().enumerate() {
        let k = sh_quote(k);
        hook.push_str(&format!(" {k} \"$(config {k})\""));
        sub.push_str(&format!("task_var {k} > \"$root_dir/sub.{i}\"\n"));
        task.push_str(&format!("config {k} > \"$root_dir/task.{i}\"\n"));
    }
    task.push_str("config nested.in > \"$root_dir/nested\"\n");
    let t = Task::with(&[
        ("hook.bash", &(hook + "\n")),
        ("tasks/sub/task.bash", &sub),
        ("task.bash", &task),
    ]);
    let o = t.run(params(&value));
    assert_eq!(o.status, Status::Passed, "{}", shown(&o));
    let read = |f: String| std::fs::read_to_string(t.root().join(f)).unwrap();
    let want = value.replace('\u{0}', "");
    for (i, k) in KEYS.iter().enumerate() {
        assert_eq!(read(format!("task.{i}")), want, "config {k}");
        assert_eq!(read(format!("sub.{i}")), want, "task_var {k}");
    }
    assert_eq!(read("nested".into()), want);
    assert!(!t.root().join("PWNED").exists());
}

#[test]
fn hostile_paths_and_descriptions_inject_nothing() {
    // The root's name has quotes, a command substitution, a colon (which
    // PYTHONPATH cannot hold: Python tasks could not import the helpers)
    // and a newline; the description is shown in headers only.
    let base = tempfile::tempdir().unwrap();
    let root = base.path().join("a b'c\"$(touch PWNED)`touch PWNED`:x\nd");
    let files: [(&str, &str); 5] = [
        ("task.bash", "printf '%s\\n' \"$root_dir\"\n"),
        (
            "task.py",
            "from sparrow6lib import *\nimport mylib\nprint(root_dir().replace('\\n', '<NL>') + ' ' + mylib.NAME)\n",
        ),
        ("task.pl", "print root_dir() =~ s/\\n/<NL>/r, \"\\n\";\n"),
        ("task.rb", "puts root_dir.inspect\n"),
        ("lib/mylib.py", "NAME = 'lib ok'\n"),
    ];
    let want = [
        root.display().to_string(),
        format!(
            "{} lib ok",
            root.display().to_string().replace('\n', "<NL>")
        ),
        root.display().to_string().replace('\n', "<NL>"),
        format!("{:?}", root.display().to_string()),
    ];
    for (n, (file, code)) in files[..4].iter().enumerate() {
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("lib")).unwrap();
        std::fs::write(root.join(file), code).unwrap();
        std::fs::write(root.join(files[4].0), files[4].1).unwrap();
        let cache = tempfile::tempdir().unwrap();
        let opts = Options {
            name: "desc'\"$(touch PWNED)\nsecond line".into(),
            cache_base: cache.path().into(),
            ..Options::default()
        };
        let o = sparrow_task::runner::run(&root, &root, &opts, &mut sparrow_task::runner::Silent)
            .unwrap();
        assert_eq!(o.status, Status::Passed, "{file}: {}", shown(&o));
        let got = o.stdout.join("\n");
        assert_eq!(got, want[n], "{file}");
        assert!(
            o.transcript
                .iter()
                .any(|l| l == &format!("[task run: {file} - desc'\"$(touch PWNED)\nsecond line]")),
            "{}",
            shown(&o)
        );
        assert!(!root.join("PWNED").exists() && !base.path().join("PWNED").exists());
    }
}

#[test]
fn python_helpers_read_utf8_whatever_the_locale() {
    // The task runs itself again in the C locale with Python's UTF-8
    // coercion off (as an old system or a stripped environment would):
    // the helpers opened files in the locale's encoding (ASCII there).
    let t = Task::with(&[(
        "task.py",
        "import os, subprocess, sys\n\
         if 'INNER' not in os.environ:\n\
         \x20   env = dict(os.environ, INNER='1', LC_ALL='C', PYTHONCOERCECLOCALE='0', PYTHONUTF8='0')\n\
         \x20   sys.exit(subprocess.call([sys.executable, __file__], env=env))\n\
         from sparrow6lib import *\n\
         print(ascii(config()['v']))\n\
         set_stdout(config()['v'])\n\
         update_state({'v': config()['v']})\n",
    )]);
    let o = t.run(json!({"v": "caf\u{e9} \u{1F600}"}));
    assert_eq!(o.status, Status::Passed, "{}", shown(&o));
    assert_eq!(o.stdout, vec!["'caf\\xe9 \\U0001f600'"]);
    assert_eq!(o.state, json!({"v": "caf\u{e9} \u{1F600}"}));
}

#[test]
fn a_long_value_full_of_quotes_reaches_bash_in_linear_time() {
    // Quoted into the bash glue, 300,000 apostrophes made 300,000 quote
    // transitions in one word, which bash parses in quadratic time
    // (minutes). The value also goes to a sub-task (task_var and $v).
    let value = "it's ".repeat(300_000);
    let t = Task::with(&[
        ("hook.bash", "run_task sub v \"$(config v)\"\n"),
        (
            "tasks/sub/task.bash",
            "task_var v > \"$root_dir/tv\"\nprintf %s \"$v\" > \"$root_dir/dv\"\n",
        ),
        ("task.bash", "config v | wc -c\n"),
    ]);
    let start = std::time::Instant::now();
    let o = t
        .try_run(sparrow_task::Options {
            timeout: Some(std::time::Duration::from_secs(15)),
            ..t.opts_with(json!({ "v": value }))
        })
        .unwrap();
    assert_eq!(o.status, Status::Passed, "{}", shown(&o));
    assert_eq!(o.stdout, vec!["1500000"]);
    let read = |f: &str| std::fs::read_to_string(t.root().join(f)).unwrap();
    assert_eq!(read("tv"), value);
    assert_eq!(read("dv"), value);
    assert!(
        start.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn sub_task_parameters_that_are_not_json_fail_the_hook_clearly() {
    // They ran the sub-task without parameters, silently.
    let t = Task::with(&[
        (
            "hook.bash",
            "echo task_var_json_begin\necho '{\"v\": '\necho task_var_json_end\necho 'task: sub'\n",
        ),
        ("tasks/sub/task.bash", "touch \"$root_dir/ran\"\n"),
    ]);
    let o = t.run(Value::Null);
    assert_eq!(o.status, Status::HookFailed(1), "{}", shown(&o));
    assert!(
        o.transcript.iter().any(|l| l.ends_with(
            "task: sub: its parameters are not JSON (EOF while parsing a value at line 2 column 0)"
        )),
        "{}",
        shown(&o)
    );
    assert!(!t.root().join("ran").exists());
}
