//! Loading one source with a loader: a definition, a `#!sparrow` unit file
//! (one unit, named like the file), or a Raku unit (not supported by this
//! version: refused with a reason). The one dispatch for the generator, the
//! CLI, the daemon and the hook runner.

use std::sync::Arc;

use sparrow_lang::{Host, Loaded, Loader};
use sparrow_unit::UnitName;

use crate::modules::LibCache;
use crate::read::Owners;
use crate::scan::{Refused, Source, SourceKind};

/// Lets an `Arc` host serve a thread-local loader, which wants an `Rc`.
pub struct SharedHost(pub Arc<dyn Host + Send + Sync>);

impl Host for SharedHost {
    fn facts(&self) -> &sparrow_lang::Facts {
        self.0.facts()
    }
    fn env(&self, name: &str) -> Option<String> {
        self.0.env(name)
    }
    fn file_exists(&self, path: &str) -> bool {
        self.0.file_exists(path)
    }
    fn feature_flags(&self, file: Option<&str>) -> Result<serde_json::Value, String> {
        self.0.feature_flags(file)
    }
}

/// Evaluates one source whose text was already read: the one way sources
/// are loaded, for the generator and for the daemon (whose loader has
/// runtime functions). `owners` applies to the `lib/` modules it imports.
pub fn load_text(
    loader: &Loader,
    libs: &mut LibCache,
    src: &Source,
    text: &str,
    owners: Owners,
) -> Result<Loaded, Refused> {
    let refuse = |reason: String| Refused {
        path: src.path.clone(),
        reason,
    };
    let lib = libs.for_source(&src.path, owners);
    // A Raku source is evaluated as its translation (same lines).
    let text = match (&src.translation, src.kind.is_raku()) {
        (Some(t), true) => t.as_str(),
        (None, true) => return Err(refuse(
            "is written in Raku and was not translated (the Raku bridge runs in the generator and the CLI)".into(),
        )),
        (_, false) => text,
    };
    let mut loaded = match src.kind {
        SourceKind::Shebang | SourceKind::RakuShebang => {
            let base = src
                .path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            let name = UnitName::parse(base)
                .map_err(|e| refuse(format!("the file name is not a unit name: {e}")))?;
            loader.load_unit_file(&src.path, text, &name, lib.clone())
        }
        SourceKind::Definition | SourceKind::Raku => loader.load(&src.path, text, lib.clone()),
    };
    loaded.diagnostics.append(&mut lib.warnings.borrow_mut());
    Ok(loaded)
}
