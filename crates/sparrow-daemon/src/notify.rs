//! The notifier edge: telling systemd about the daemon itself (`sd_notify`).

use crate::core::Notice;

/// Where notices go.
pub trait Notifier: Send + Sync {
    /// Sends one notice.
    fn notify(&self, notice: &Notice);
}

/// `sd_notify(3)`, when systemd asked for it (`NOTIFY_SOCKET`).
#[derive(Debug, Clone, Copy, Default)]
pub struct SdNotify;

impl Notifier for SdNotify {
    fn notify(&self, notice: &Notice) {
        use sd_notify::NotifyState as S;
        let _ = match notice {
            Notice::Ready(status) => sd_notify::notify(&[S::Ready, S::Status(status)]),
            Notice::Status(status) => sd_notify::notify(&[S::Status(status)]),
            Notice::Watchdog => sd_notify::notify(&[S::Watchdog]),
            Notice::Stopping => sd_notify::notify(&[S::Stopping]),
        };
    }
}
