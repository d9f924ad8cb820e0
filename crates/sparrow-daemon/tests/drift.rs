//! One reader for resource values: whatever a closure returns for a
//! resource key is accepted at generation time (rendered into the unit
//! file) exactly when the daemon accepts it at runtime (turned into a
//! D-Bus value), and means the same. Regression for the drift found in
//! review: `cpu_weight: || "idle"` and `allowed_cpus: || "3-1"` passed the
//! generator and failed at every evaluation; `cpu_quota: "infinity"` was
//! the reverse.

use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use sparrow_daemon::eval::desired;
use sparrow_host::runtime::RealRuntime;
use sparrow_lang::{keys, FixedHost, Loader, NoModules};
use sparrow_policy::{Desired, Live, Machine, Prop, SettingValue, Target};

const MACHINE: Machine = Machine {
    memory: 8 << 30,
    tasks: 4_194_304,
};

fn definition(key: &str, literal: &str) -> String {
    format!("service(\"d\", #{{ exec_start: \"/bin/true\", {key}: || {literal} }});")
}

/// Generation: the unit file's line for `prop`, or the error.
fn generated(prop: Prop, literal: &str) -> Result<Option<String>, String> {
    let loader = Loader::new(Rc::new(FixedHost::debian()));
    let loaded = loader.load(
        Path::new("/defs/d.sparrow"),
        &definition(prop.key(), literal),
        Rc::new(NoModules),
    );
    if let Some(d) = loaded.diagnostics.iter().find(|d| d.is_error()) {
        return Err(d.message.clone());
    }
    let text = loaded.units[0].file.render();
    let directive = match prop {
        Prop::CpuQuota => "CPUQuota",
        p => p.dbus_name(),
    };
    Ok(text
        .lines()
        .find(|l| l.starts_with(&format!("{directive}=")))
        .map(str::to_string))
}

/// Runtime: the daemon's loader calls the same closure; its value becomes
/// a D-Bus target, or the error.
fn runtime(prop: Prop, literal: &str) -> Result<Target, String> {
    let rt = Arc::new(RealRuntime::new(
        Arc::default(),
        Arc::new(|_: &str, _: &str| {}),
    ));
    let loader = Loader::with_runtime(Rc::new(FixedHost::debian()), rt);
    let loaded = loader.load(
        Path::new("/defs/d.sparrow"),
        &definition(prop.key(), literal),
        Rc::new(NoModules),
    );
    if let Some(d) = loaded.diagnostics.iter().find(|d| d.is_error()) {
        return Err(d.message.clone());
    }
    let (_, closure) = loaded.units[0]
        .runtime
        .dynamic
        .iter()
        .find(|(k, _)| *k == prop.key())
        .expect("the closure is kept for the daemon");
    let v = loader
        .call(closure, vec![], "d.service", Duration::from_secs(1))
        .map_err(|e| e.to_string())?;
    desired(prop, &v).and_then(|d| d.resolve(prop, MACHINE).map_err(|e| e.to_string()))
}

#[test]
fn cpu_weight_idle_is_idle_in_the_unit_file_and_zero_over_dbus() {
    assert_eq!(
        generated(Prop::CpuWeight, "\"idle\""),
        Ok(Some("CPUWeight=idle".into()))
    );
    let t = runtime(Prop::CpuWeight, "\"idle\"").unwrap();
    // systemd's CGROUP_WEIGHT_IDLE: `systemctl show` prints it as "idle"
    // (the lab checks this against systemd).
    assert_eq!(t.value, Live::Num(0));
    assert_eq!(
        (t.setting.name, t.setting.value),
        ("CPUWeight", SettingValue::U64(0))
    );
}

#[test]
fn a_backwards_cpu_range_is_refused_by_both_with_the_same_words() {
    let gen = generated(Prop::AllowedCpus, "\"3-1\"").unwrap_err();
    let run = runtime(Prop::AllowedCpus, "\"3-1\"").unwrap_err();
    assert!(gen.contains("3-1"), "{gen}");
    assert!(run.contains(&gen), "runtime: {run}\ngeneration: {gen}");
}

#[test]
fn cpu_quota_infinity_means_no_quota_for_both() {
    assert_eq!(
        generated(Prop::CpuQuota, "\"infinity\""),
        Ok(Some("CPUQuota=".into()))
    );
    let t = runtime(Prop::CpuQuota, "\"infinity\"").unwrap();
    assert_eq!(t.value, Live::Num(u64::MAX));
    assert_eq!(t.setting.name, "CPUQuotaPerSecUSec");
    assert!(matches!(
        desired(Prop::CpuQuota, &"infinity".into()),
        Ok(Desired::Infinity)
    ));
}

/// Literals worth trying on every resource key.
const CORPUS: &[&str] = &[
    "\"idle\"",
    "\"infinity\"",
    "\"3-1\"",
    "\"1-3\"",
    "\"0\"",
    "\"50%\"",
    "\"150%\"",
    "\"0%\"",
    "\"100%\"",
    "\"-5\"",
    "\"512M\"",
    "\"1G\"",
    "\"1.5G\"",
    "\"lots\"",
    "\"\"",
    "\"0 1\"",
    "\"0,2\"",
    "\"0-1023\"",
    "0",
    "1",
    "100",
    "10000",
    "10001",
    "-1",
    "1.5",
    "[0, 1]",
    "[]",
    "[-1]",
    "true",
    "()",
    "#{}",
];

/// Generation accepts exactly what runtime accepts. (What a value means
/// once accepted is pinned by the cases above and `sparrow-policy`'s
/// conversion table.)
fn agree(prop: Prop, literal: &str) -> Result<(), String> {
    let gen = generated(prop, literal);
    let run = runtime(prop, literal);
    if gen.is_ok() != run.is_ok() {
        return Err(format!(
            "{} = || {literal}: generation {gen:?}, runtime {run:?}",
            prop.key()
        ));
    }
    Ok(())
}

#[test]
fn generation_and_runtime_accept_the_same_values_for_every_resource_key() {
    let mut disagree = Vec::new();
    let mut accepted = 0;
    for prop in Prop::ALL {
        for lit in CORPUS {
            match agree(prop, lit) {
                Err(e) => disagree.push(e),
                Ok(()) => accepted += usize::from(runtime(prop, lit).is_ok()),
            }
        }
    }
    assert!(disagree.is_empty(), "{}", disagree.join("\n"));
    // Not vacuous: the corpus has plenty of both.
    let all = Prop::ALL.len() * CORPUS.len();
    assert!(accepted > 40 && all - accepted > 100, "{accepted} of {all}");
}

#[test]
fn the_daemons_properties_are_the_key_tables_resource_keys() {
    let mut table: Vec<&str> = keys::KEYS
        .iter()
        .filter(|k| keys::is_resource(k))
        .map(|k| k.name)
        .collect();
    let mut props: Vec<&str> = Prop::ALL.iter().map(|p| p.key()).collect();
    table.sort_unstable();
    props.sort_unstable();
    assert_eq!(
        table, props,
        "keys::KEYS resource keys vs sparrow_policy::Prop::ALL"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn generated_strings_are_judged_alike(s in "[0-9a-z%., -]{0,8}", i in 0usize..Prop::ALL.len()) {
        let lit = format!("{s:?}");
        prop_assert_eq!(agree(Prop::ALL[i], &lit), Ok(()));
    }
}
