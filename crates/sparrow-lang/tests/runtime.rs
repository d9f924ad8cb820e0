//! Runtime mode: closures kept by the loader and called later with real
//! (here: recording) runtime functions, within their limits.

use std::path::Path;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rhai::{Dynamic, Map};
use sparrow_lang::{
    CallError, FixedHost, Loader, ModuleSource, ModuleText, Psi, PsiLine, RuntimeHost,
};

#[derive(Default)]
struct Recording {
    logs: Mutex<Vec<(String, String)>>,
}

impl RuntimeHost for Recording {
    fn available_memory(&self) -> Result<u64, String> {
        Ok(3 << 30)
    }
    fn free_memory(&self) -> Result<u64, String> {
        Ok(1 << 30)
    }
    fn load(&self) -> Result<f64, String> {
        Ok(42.5)
    }
    fn psi(&self, resource: &str) -> Result<Psi, String> {
        match resource {
            "memory" => Ok(Psi {
                some: PsiLine {
                    avg10: 1.5,
                    avg60: 0.5,
                    avg300: 0.1,
                    total: 1234,
                },
                full: None,
            }),
            other => Err(format!("no PSI for {other:?}")),
        }
    }
    fn service_memory(&self, unit: &str) -> Result<u64, String> {
        (unit == "db.service")
            .then_some(100 << 20)
            .ok_or_else(|| format!("{unit} is not running"))
    }
    fn service_state(&self, unit: &str) -> String {
        if unit == "db.service" {
            "active"
        } else {
            "inactive"
        }
        .into()
    }
    fn connections(&self, port: u16) -> Result<u64, String> {
        Ok(u64::from(port) / 1000)
    }
    fn read_file(&self, path: &str) -> Result<String, String> {
        (path == "/etc/limit")
            .then(|| "768M\n".to_string())
            .ok_or_else(|| format!("{path}: not found"))
    }
    fn read_file_tail(&self, path: &str, bytes: u64) -> Result<String, String> {
        let log = "boot\nGET /ok\nGET /../etc/passwd\nGET /../../shadow\n";
        (path == "/var/log/app.log")
            .then(|| log[log.len().saturating_sub(bytes as usize)..].to_string())
            .ok_or_else(|| format!("{path}: not found"))
    }
    fn log(&self, unit: &str, message: &str) {
        self.logs
            .lock()
            .unwrap()
            .push((unit.into(), message.into()));
    }
}

struct Lib;
impl ModuleSource for Lib {
    fn module(&self, name: &str) -> Result<Option<ModuleText>, String> {
        Ok((name == "fam").then(|| ModuleText {
            path: "/lib/fam.sparrow".into(),
            text: "fn helper() { 123 }\nfn unit(p) { #{ name: \"fam\", exec_start: \"/bin/true\", monitor: #{ resources: || #{ tasks_max: helper() } } } }".into(),
        }))
    }
}

fn loader(rt: Arc<Recording>) -> Loader {
    Loader::with_runtime(Rc::new(FixedHost::debian()), rt)
}

fn resources(loaded: &sparrow_lang::Loaded, unit: &str) -> sparrow_lang::Closure {
    let u = loaded
        .units
        .iter()
        .find(|u| u.name.as_str() == unit)
        .expect("unit");
    u.runtime
        .monitor
        .resources
        .clone()
        .expect("a resources closure")
}

const DEF: &str = r#"
let floor = 256.MB;
service("db", #{
    exec_start: "/usr/bin/db",
    monitor: #{ interval: "10s", resources: || {
        log(`state is ${service_state("db")}`);
        let text = read_file("/etc/limit");
        text.trim();
        let limit = parse_size(text);
        #{
            memory_max: if available_memory() > 2.GB { limit } else { floor },
            cpu_quota: `${load().to_int()}%`,
            memory_high: service_memory("db") * 2,
            tasks_max: connections(8080) + psi("memory").some.total,
        }
    } },
    memory_min: || free_memory() / 4,
});
service("spin", #{ exec_start: "/bin/true", monitor: #{ resources: || { let x = 0; loop { x += 1; } } } });
service("bad", #{ exec_start: "/bin/true", monitor: #{ resources: || { read_file("/nope") } } });
"#;

#[test]
fn closures_are_called_later_with_runtime_functions() {
    let rt = Arc::new(Recording::default());
    let l = loader(rt.clone());
    let loaded = l.load(Path::new("/defs/db.sparrow"), DEF, Rc::new(Lib));
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    let out = l
        .call(
            &resources(&loaded, "db.service"),
            vec![],
            "db.service",
            Duration::from_secs(1),
        )
        .unwrap();
    let m: Map = out.cast();
    assert_eq!(m["memory_max"].as_int().unwrap(), 768 << 20);
    assert_eq!(m["cpu_quota"].clone().into_string().unwrap(), "42%");
    assert_eq!(m["memory_high"].as_int().unwrap(), 200 << 20);
    assert_eq!(m["tasks_max"].as_int().unwrap(), 8 + 1234);
    assert_eq!(
        *rt.logs.lock().unwrap(),
        vec![("db.service".to_string(), "state is active".to_string())]
    );
    // The dynamic property closure is kept too, and evaluates with runtime functions.
    let db = loaded
        .units
        .iter()
        .find(|u| u.name.as_str() == "db.service")
        .unwrap();
    let (key, c) = &db.runtime.dynamic[0];
    assert_eq!(*key, "memory_min");
    assert_eq!(
        l.call(c, vec![], "db.service", Duration::from_secs(1))
            .unwrap()
            .as_int()
            .unwrap(),
        256 << 20
    );
}

#[test]
fn a_runaway_closure_stops_at_its_wall_clock_limit() {
    let l = loader(Arc::new(Recording::default()));
    let loaded = l.load(Path::new("/defs/db.sparrow"), DEF, Rc::new(Lib));
    let start = std::time::Instant::now();
    let e = l
        .call(
            &resources(&loaded, "spin.service"),
            vec![],
            "spin.service",
            Duration::from_millis(20),
        )
        .unwrap_err();
    // A limit, typed: the daemon counts it as slow, not as a script error.
    assert!(matches!(e, CallError::Limit(_)), "{e}");
    let e = e.diagnostic().clone();
    assert!(
        start.elapsed() < Duration::from_millis(500),
        "{:?}",
        start.elapsed()
    );
    assert!(
        e.message.contains("ran longer than its limit of 20 ms") || e.message.contains("exceeded"),
        "{e}"
    );
    assert_eq!(e.file, Path::new("/defs/db.sparrow"));
    assert_eq!(e.line, 19, "{e}");
}

#[test]
fn a_failing_runtime_function_is_an_error_at_the_call() {
    let l = loader(Arc::new(Recording::default()));
    let loaded = l.load(Path::new("/defs/db.sparrow"), DEF, Rc::new(Lib));
    let e = l
        .call(
            &resources(&loaded, "bad.service"),
            vec![],
            "bad.service",
            Duration::from_secs(1),
        )
        .unwrap_err()
        .diagnostic()
        .clone();
    assert_eq!(e.message, "read_file(): /nope: not found");
    assert_eq!((e.line, e.col), (20, 72), "{e}");
    // The loader is still usable after a failure.
    assert!(l
        .call(
            &resources(&loaded, "db.service"),
            vec![],
            "db.service",
            Duration::from_secs(1)
        )
        .is_ok());
}

#[test]
fn closures_from_modules_run_against_their_module() {
    let l = loader(Arc::new(Recording::default()));
    let loaded = l.load(
        Path::new("/defs/f.sparrow"),
        "task_run(\"f\", \"systemd-fam\", #{});",
        Rc::new(Lib),
    );
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    let out = l
        .call(
            &resources(&loaded, "fam.service"),
            vec![],
            "fam.service",
            Duration::from_secs(1),
        )
        .unwrap();
    assert_eq!(out.cast::<Map>()["tasks_max"].as_int().unwrap(), 123);
}

#[test]
fn generation_loaders_refuse_runtime_functions_and_daemon_loaders_name_what_is_missing() {
    let gen = Loader::new(Rc::new(FixedHost::debian()));
    let r = gen.load(
        Path::new("/d.sparrow"),
        "let x = available_memory();",
        Rc::new(Lib),
    );
    assert!(r.diagnostics[0]
        .message
        .contains("cannot be called at generation time"));
    let l = loader(Arc::new(Recording::default()));
    let loaded = l.load(Path::new("/d.sparrow"), r#"service("h", #{ exec_start: "/bin/true", monitor: #{ resources: || http_get("http://x") } });"#, Rc::new(Lib));
    let e = l
        .call(
            &resources(&loaded, "h.service"),
            vec![],
            "h.service",
            Duration::from_secs(1),
        )
        .unwrap_err()
        .diagnostic()
        .clone();
    assert!(
        e.message
            .contains("http_get() is not available in this version"),
        "{e}"
    );
    let _ = Dynamic::UNIT;
}

/// Regression (issue 7): a closure that calls an imported module's function
/// failed in the daemon with `no module "fam"`, while the generator, which
/// calls it inside the definition's run, saw the import.
#[test]
fn closures_called_later_see_the_definitions_imports() {
    let l = loader(Arc::new(Recording::default()));
    let def = r#"import "fam" as h;
service("imp", #{
    exec_start: "/bin/true",
    monitor: #{ resources: || #{ tasks_max: h::helper() + 1 } },
    memory_max: || h::helper() * 1024,
});"#;
    let loaded = l.load(Path::new("/defs/imp.sparrow"), def, Rc::new(Lib));
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    let out = l
        .call(
            &resources(&loaded, "imp.service"),
            vec![],
            "imp.service",
            Duration::from_secs(1),
        )
        .unwrap();
    assert_eq!(out.cast::<Map>()["tasks_max"].as_int().unwrap(), 124);
    let imp = loaded
        .units
        .iter()
        .find(|u| u.name.as_str() == "imp.service")
        .unwrap();
    let (_, c) = &imp.runtime.dynamic[0];
    let v = l
        .call(c, vec![], "imp.service", Duration::from_secs(1))
        .unwrap();
    assert_eq!(v.as_int().unwrap(), 123 * 1024);
}

#[test]
fn pattern_functions_read_a_tail_and_find_matches() {
    let l = loader(Arc::new(Recording::default()));
    let def = r#"
service("web", #{ exec_start: "/bin/true", monitor: #{ resources: || {
    let hits = matches(read_file_tail("/var/log/app.log", 40), "\\.\\./[a-z]+");
    #{ tasks_max: 100 + hits.len(), hits: hits }
} } });
service("broken", #{ exec_start: "/bin/true", monitor: #{ resources: || matches("x", "(") } });
"#;
    let loaded = l.load(Path::new("/defs/w.sparrow"), def, Rc::new(Lib));
    assert!(!loaded.has_errors(), "{:?}", loaded.diagnostics);
    let out: Map = l
        .call(
            &resources(&loaded, "web.service"),
            vec![],
            "web.service",
            Duration::from_secs(1),
        )
        .unwrap()
        .cast();
    // The last 40 bytes hold both traversals, not "boot".
    let hits: Vec<String> = out["hits"]
        .clone()
        .into_array()
        .unwrap()
        .into_iter()
        .map(|h| h.into_string().unwrap())
        .collect();
    assert_eq!(hits, ["../etc", "../shadow"]);
    assert_eq!(out["tasks_max"].as_int().unwrap(), 102);
    let e = l
        .call(
            &resources(&loaded, "broken.service"),
            vec![],
            "broken.service",
            Duration::from_secs(1),
        )
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("w.sparrow:6:") && e.contains("matches(): regex parse error"),
        "{e}"
    );
}
