//! Shared code: `common.bash` and `common.rb` (loaded from the task's own
//! directory, then from the root, so the root's definitions win), and the
//! root's `lib/` for Perl, Python and Ruby modules, `bin/` on bash's PATH
//! (documentation/development.md, "Language libraries", "PERL5LIB" ...).

use sparrow_task::Status;

use crate::{assert_in_order, has_line, shown, Task};

#[test]
fn common_bash_from_the_task_dir_then_the_root() {
    let t = Task::with(&[
        ("config.yaml", "main:\n  port: 80\n"),
        (
            "common.bash",
            "who() { echo root; }\ngreet() { echo \"hello from common, port $(config main.port)\"; }\n",
        ),
        (
            "tasks/sub/common.bash",
            "who() { echo sub; }\nonly_sub() { echo only-sub; }\n",
        ),
        ("hook.bash", "set_stdout \"$(greet)\"\nrun_task sub\n"),
        ("tasks/sub/task.bash", "echo \"sub: who=$(who)\"\nonly_sub\n"),
        (
            "task.bash",
            "greet\necho \"main: who=$(who)\"\ntype only_sub >/dev/null 2>&1 || echo no-only-sub\n",
        ),
    ]);
    let o = t.run();
    assert_eq!(o.status, Status::Passed, "{}", shown(&o));
    assert_in_order(
        &o,
        &[
            "sub: who=root",
            "only-sub",
            "[hook stdout]",
            "hello from common, port 80",
        ],
    );
    assert_eq!(
        o.stdout,
        vec![
            "hello from common, port 80",
            "hello from common, port 80",
            "main: who=root",
            "no-only-sub",
        ]
    );
}

#[test]
fn common_rb_from_the_task_dir_then_the_root() {
    let t = Task::with(&[
        (
            "common.rb",
            "def ruby_rocks\n  'ruby rocks!'\nend\n\ndef who\n  'root'\nend\n",
        ),
        (
            "tasks/sub/common.rb",
            "def who\n  'sub'\nend\n\ndef only_sub\n  'only-sub'\nend\n",
        ),
        ("hook.rb", "set_stdout ruby_rocks\nrun_task 'sub'\n"),
        ("tasks/sub/task.rb", "puts \"sub: who=#{who} #{only_sub}\"\n"),
        (
            "task.rb",
            "puts \"main: who=#{who}\"\nputs(respond_to?(:only_sub, true) ? 'has only_sub' : 'no only_sub')\n",
        ),
    ]);
    let o = t.run();
    assert_eq!(o.status, Status::Passed, "{}", shown(&o));
    assert!(has_line(&o, "sub: who=root only-sub"), "{}", shown(&o));
    assert_eq!(
        o.stdout,
        vec!["ruby rocks!", "main: who=root", "no only_sub"]
    );
}

#[test]
fn the_roots_lib_holds_modules_and_its_bin_is_on_bashs_path() {
    let t = Task::with(&[
        (
            "lib/Greeter/Perl.pm",
            "package Greeter::Perl;\nsub hi { 'perl lib' }\n1;\n",
        ),
        ("lib/greeter_py.py", "def hi():\n    return 'python lib'\n"),
        ("lib/greeter_rb.rb", "def greeter_hi\n  'ruby lib'\nend\n"),
        ("bin/hello-bin", "#!/bin/sh\necho \"from bin $1\"\n"),
        ("hook.bash", "run_task pl\nrun_task py\nrun_task rb\n"),
        (
            "tasks/pl/task.pl",
            "use Greeter::Perl;\nprint Greeter::Perl::hi(), \"\\n\";\n",
        ),
        (
            "tasks/py/task.py",
            "import shutil\nimport greeter_py\nprint(greeter_py.hi())\nprint('bin on PATH' if shutil.which('hello-bin') else 'no bin on PATH')\n",
        ),
        (
            "tasks/rb/task.rb",
            "require 'greeter_rb'\nputs greeter_hi\n",
        ),
        // Bash exports the lib to the other languages' search paths.
        (
            "task.bash",
            "hello-bin bash\nperl -MGreeter::Perl -e 'print Greeter::Perl::hi(), \" via bash\\n\"'\npython3 -c 'import greeter_py; print(greeter_py.hi() + \" via bash\")'\nruby -e 'require \"greeter_rb\"; puts greeter_hi + \" via bash\"'\n",
        ),
    ]);
    std::fs::set_permissions(
        t.root().join("bin/hello-bin"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let o = t.run();
    assert_eq!(o.status, Status::Passed, "{}", shown(&o));
    assert_in_order(
        &o,
        &["perl lib", "python lib", "no bin on PATH", "ruby lib"],
    );
    assert_eq!(
        o.stdout,
        vec![
            "from bin bash",
            "perl lib via bash",
            "python lib via bash",
            "ruby lib via bash",
        ]
    );
}
