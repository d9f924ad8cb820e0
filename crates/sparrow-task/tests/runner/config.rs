//! `config()`: the root's defaults deep-merged with the caller's parameters
//! (Hash::Merge with `:!positional-append`: maps merge key by key, the
//! caller wins, arrays are replaced), written once per run and read by every
//! script of it.

use serde_json::json;
use sparrow_task::Status;

use crate::{has_line, shown, Task};

const DEFAULTS: &str = "\
name: world
main:
  port: 80
  host: localhost
  list: [a, b, c]
  deep:
    level: three
debug: false
verbose: false
";

fn params() -> serde_json::Value {
    json!({"main": {"port": 8080, "list": ["x", "y"]}, "debug": true, "extra": "e"})
}

#[test]
fn defaults_merge_with_params_in_every_language() {
    let cases: [(&str, &str, [&str; 2]); 4] = [
        (
            "task.bash",
            r#"echo "name=$(config name)"
echo "port=$(config main.port)"
echo "host=$(config main.host)"
echo "level=$(config main.deep.level)"
echo "extra=$(config extra)"
echo "list=$(config main.list)"
echo "debug=$(config debug) verbose=$(config verbose)"
echo "missing=[$(config main.nope)][$(config nope.deeper)]"
"#,
            // Sparrow6's json-var prints a list as (a b), a boolean as Raku does.
            ["list=(x y)", "debug=True verbose=False"],
        ),
        (
            "task.py",
            r#"from sparrow6lib import *
c = config()
print("name=" + c["name"])
print("port=%d" % c["main"]["port"])
print("host=" + c["main"]["host"])
print("level=" + c["main"]["deep"]["level"])
print("extra=" + c["extra"])
print("list=" + ",".join(c["main"]["list"]))
print("debug=%s verbose=%s" % (c["debug"], c["verbose"]))
"#,
            ["list=x,y", "debug=True verbose=False"],
        ),
        (
            "task.pl",
            r#"my $c = config();
print "name=$c->{name}\n";
print "port=$c->{main}{port}\n";
print "host=$c->{main}{host}\n";
print "level=$c->{main}{deep}{level}\n";
print "extra=$c->{extra}\n";
print "list=", join(",", @{ $c->{main}{list} }), "\n";
print "debug=", ($c->{debug} ? "yes" : "no"), " verbose=", ($c->{verbose} ? "yes" : "no"), "\n";
"#,
            ["list=x,y", "debug=yes verbose=no"],
        ),
        (
            "task.rb",
            r#"c = config
puts "name=#{c['name']}"
puts "port=#{c['main']['port']}"
puts "host=#{c['main']['host']}"
puts "level=#{c['main']['deep']['level']}"
puts "extra=#{c['extra']}"
puts "list=#{c['main']['list'].join(',')}"
puts "debug=#{c['debug']} verbose=#{c['verbose']}"
"#,
            ["list=x,y", "debug=true verbose=false"],
        ),
    ];
    for (file, code, specific) in cases {
        let t = Task::with(&[("config.yaml", DEFAULTS), (file, code)]);
        let o = t.run_params(params());
        assert_eq!(o.status, Status::Passed, "{file}: {}", shown(&o));
        let mut want = vec![
            "name=world",
            "port=8080",
            "host=localhost",
            "level=three",
            "extra=e",
        ];
        want.extend(specific);
        if file == "task.bash" {
            want.push("missing=[][]");
        }
        assert_eq!(o.stdout, want, "{file}: {}", shown(&o));
    }
}

#[test]
fn without_params_the_defaults_are_the_config_and_without_defaults_the_params() {
    let t = Task::with(&[
        ("config.yaml", DEFAULTS),
        (
            "task.bash",
            "echo \"$(config main.port) $(config main.list) [$(config extra)]\"\n",
        ),
    ]);
    let o = t.run();
    assert_eq!(o.stdout, vec!["80 (a b c) []"], "{}", shown(&o));

    let t = Task::with(&[(
        "task.py",
        "from sparrow6lib import *\nprint(sorted(config().items()))\n",
    )]);
    let o = t.run_params(json!({"who": "me"}));
    assert_eq!(o.stdout, vec!["[('who', 'me')]"], "{}", shown(&o));
    let o = t.run();
    assert_eq!(o.stdout, vec!["[]"], "{}", shown(&o));
}

#[test]
fn config_json_is_read_when_there_is_no_config_yaml() {
    // Sparrow6 reads config.raku or config.yaml; config.json is this
    // runner's addition, and config.yaml comes first.
    let t = Task::with(&[
        (
            "config.json",
            r#"{"a": {"b": 1, "c": [1, 2], "d": "json"}}"#,
        ),
        (
            "task.bash",
            "echo \"$(config a.b) $(config a.c) $(config a.d)\"\n",
        ),
    ]);
    let o = t.run_params(json!({"a": {"c": [3]}}));
    assert_eq!(o.stdout, vec!["1 (3) json"], "{}", shown(&o));
    t.file("config.yaml", "a:\n  b: 2\n");
    let o = t.run_params(json!({"a": {"c": [3]}}));
    assert_eq!(o.stdout, vec!["2 (3) "], "{}", shown(&o));
}

#[test]
fn args_become_one_command_line_string() {
    let t = Task::with(&[
        ("hook.bash", "run_task show\n"),
        ("task.bash", "echo \"bash: $(config args)\"\n"),
        (
            "tasks/show/task.py",
            "from sparrow6lib import *\nprint('python: ' + config()['args'])\n",
        ),
    ]);
    let o = t.run_params(json!({"args": [["verbose", "-q"], {"port": 80}, "run"]}));
    assert_eq!(o.status, Status::Passed, "{}", shown(&o));
    assert!(
        has_line(&o, "python: --verbose -q --port 80 run"),
        "{}",
        shown(&o)
    );
    assert_eq!(o.stdout, vec!["bash: --verbose -q --port 80 run"]);
}

#[test]
fn sub_tasks_share_the_roots_config_and_ignore_their_own_config_yaml() {
    let t = Task::with(&[
        ("config.yaml", DEFAULTS),
        ("hook.bash", "run_task sub\n"),
        ("tasks/sub/config.yaml", "only_sub: here\nname: sub-name\n"),
        (
            "tasks/sub/task.pl",
            "my $c = config(); print \"sub: $c->{name} $c->{main}{port} [\", ($c->{only_sub} // ''), \"]\\n\";\n",
        ),
    ]);
    let o = t.run_params(json!({"main": {"port": 9}}));
    assert_eq!(o.status, Status::Passed, "{}", shown(&o));
    assert!(has_line(&o, "sub: world 9 []"), "{}", shown(&o));
}

#[test]
fn an_unusable_config_is_an_error_before_anything_runs() {
    let t = Task::with(&[
        ("config.yaml", "- a list, not a map\n"),
        ("task.bash", "touch \"$root_dir/ran\"\n"),
    ]);
    let err = t.try_run_opts(t.opts()).unwrap_err();
    assert!(matches!(err, sparrow_task::TaskError::Config(_)), "{err}");
    assert!(!t.root().join("ran").exists());

    let t = Task::with(&[("task.bash", "true\n")]);
    let err = t
        .try_run_opts(t.opts_with(json!({"args": [true]})))
        .unwrap_err();
    assert!(err.to_string().contains("args, element 0"), "{err}");
}
