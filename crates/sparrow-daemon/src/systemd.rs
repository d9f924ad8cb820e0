//! Talking to systemd: the [`Systemd`] and [`Connector`] traits the
//! actuator uses, and the real implementation over D-Bus (zbus), on the
//! system bus or, when that is unavailable, systemd's private socket.
//!
//! **Architecture Invariant:** this module is the only place that knows
//! D-Bus. The core sees units, properties and plain values.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::mpsc;

use crate::core::Event;

use sparrow_policy::{cpus_of_mask, Live, Prop, Setting, SettingValue};
use zbus::{Connection, OwnedVariant, Variant};

const DEST: &str = "org.freedesktop.systemd1";
const MANAGER_PATH: &str = "/org/freedesktop/systemd1";
const MANAGER: &str = "org.freedesktop.systemd1.Manager";
const PROPERTIES: &str = "org.freedesktop.DBus.Properties";

/// Why talking to systemd failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SystemdError {
    /// Neither the system bus nor the private socket answered.
    #[error("system bus: {bus}; /run/systemd/private: {private}")]
    Connect {
        /// Why the system bus failed.
        bus: String,
        /// Why the private socket failed.
        private: String,
    },
    /// A call failed (systemd's error, or the connection's).
    #[error("{0}")]
    Call(String),
    /// A property was missing or of an unexpected type.
    #[error("{property}: {reason}")]
    Property {
        /// The property.
        property: String,
        /// What was wrong.
        reason: String,
    },
}

/// What the core tracks of a unit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitInfo {
    /// `ActiveState`.
    pub active_state: String,
    /// `ControlGroup`, empty when the unit has none.
    pub control_group: String,
}

/// The systemd operations the daemon needs. The real one is [`Bus`]; tests
/// use a recording one.
pub trait Systemd: Send + Sync + 'static {
    /// `SetUnitProperties(unit, runtime=true, settings)`.
    fn set(
        &self,
        unit: &str,
        settings: Vec<Setting>,
    ) -> impl Future<Output = Result<(), SystemdError>> + Send;
    /// The live values of `props`.
    fn live(
        &self,
        unit: &str,
        props: Vec<Prop>,
    ) -> impl Future<Output = Result<BTreeMap<Prop, Live>, SystemdError>> + Send;
    /// `SetUnitProperties`, then the live values of `props` as systemd holds
    /// them after it; with the monotonic time (µs) the set was answered.
    /// Calls one after the other; [`Bus`] sends them together.
    fn set_and_read(
        &self,
        unit: &str,
        settings: Vec<Setting>,
        props: Vec<Prop>,
    ) -> impl Future<Output = Result<(u64, BTreeMap<Prop, Live>), SystemdError>> + Send {
        async move {
            self.set(unit, settings).await?;
            let at = crate::clock::mono_us();
            Ok((at, self.live(unit, props).await?))
        }
    }
    /// The unit's state and control group.
    fn info(&self, unit: &str) -> impl Future<Output = Result<UnitInfo, SystemdError>> + Send;
    /// `RestartUnit(unit, "replace")`: returns once the job is queued.
    fn restart(&self, unit: &str) -> impl Future<Output = Result<(), SystemdError>> + Send;
    /// `Reload()` (`systemctl daemon-reload`): returns once systemd reloaded.
    fn reload(&self) -> impl Future<Output = Result<(), SystemdError>> + Send;
}

/// A unit's object path: `web.service` → `/org/freedesktop/systemd1/unit/web_2eservice`
/// (systemd's `bus_path_escape`).
pub fn unit_path(unit: &str) -> String {
    let mut p = String::from("/org/freedesktop/systemd1/unit/");
    if unit.is_empty() {
        p.push('_');
    }
    for b in unit.bytes() {
        if b.is_ascii_alphanumeric() {
            p.push(b as char);
        } else {
            p.push_str(&format!("_{b:02x}"));
        }
    }
    p
}

/// The unit for an object path (the inverse of [`unit_path`]).
pub fn unit_of_path(path: &str) -> Option<String> {
    let esc = path.strip_prefix("/org/freedesktop/systemd1/unit/")?;
    if esc == "_" {
        return Some(String::new());
    }
    let bytes = esc.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'_' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Which connection is in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// The system bus (`/run/dbus/system_bus_socket`).
    SystemBus,
    /// systemd's private socket (`/run/systemd/private`), a direct connection.
    Private,
}

/// The way to systemd tried first: as root, systemd's private socket, as
/// `systemctl` does (a direct connection: no bus daemon between the daemon
/// and systemd, and systemd takes the caller's credentials from the socket
/// instead of asking the bus for them, which made `SetUnitProperties` about
/// a fifth faster in the kernel bench); the system bus when
/// `SYSTEMD_SPARROWD_BUS=system` or not root (systemd refuses others on its
/// private socket). The other way is the fallback.
pub fn first_way(setting: Option<&str>, root: bool) -> Via {
    if root && setting != Some("system") {
        Via::Private
    } else {
        Via::SystemBus
    }
}

/// A D-Bus connection to systemd.
#[derive(Clone)]
pub struct Bus {
    conn: Connection,
    via: Via,
}

fn e(err: zbus::Error) -> SystemdError {
    SystemdError::Call(err.to_string())
}

impl Bus {
    /// Connects the [`first_way`], else the other (the system bus is not
    /// there in early boot or while `dbus` restarts; the private socket is
    /// root's only), and subscribes to unit changes.
    pub async fn connect(timeout: Duration) -> Result<Bus, SystemdError> {
        let first = first_way(
            std::env::var("SYSTEMD_SPARROWD_BUS").ok().as_deref(),
            unsafe { libc::geteuid() } == 0,
        );
        let second = match first {
            Via::Private => Via::SystemBus,
            Via::SystemBus => Via::Private,
        };
        let (conn, via) = match Bus::open(first, timeout).await {
            Ok(c) => (c, first),
            Err(why_first) => match Bus::open(second, timeout).await {
                Ok(c) => (c, second),
                Err(why_second) => {
                    let (bus, private) = match first {
                        Via::SystemBus => (why_first, why_second),
                        Via::Private => (why_second, why_first),
                    };
                    return Err(SystemdError::Connect { bus, private });
                }
            },
        };
        let bus = Bus { conn, via };
        bus.manager("Subscribe", &()).await?;
        Ok(bus)
    }

    /// One way to systemd, or why it failed.
    async fn open(via: Via, timeout: Duration) -> Result<Connection, String> {
        let attempt = async {
            match via {
                Via::SystemBus => Connection::system().await,
                Via::Private => {
                    let stream = crate::private::connect("/run/systemd/private").await?;
                    zbus::connection::Builder::unix_stream(stream)
                        .p2p()
                        .build()
                        .await
                }
            }
        };
        match tokio::time::timeout(timeout, attempt).await {
            Ok(Ok(c)) => Ok(c),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("timed out".into()),
        }
    }

    /// How it is connected.
    pub fn via(&self) -> Via {
        self.via
    }

    /// The connection, for signal streams.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    fn dest(&self) -> Option<&'static str> {
        // A direct connection has no bus to route by name.
        (self.via == Via::SystemBus).then_some(DEST)
    }

    async fn manager<B>(&self, method: &str, body: &B) -> Result<zbus::Message, SystemdError>
    where
        B: serde::ser::Serialize + zbus::DynamicType,
    {
        self.conn
            .call_method(self.dest(), MANAGER_PATH, Some(MANAGER), method, body)
            .await
            .map_err(e)
    }

    async fn get(&self, path: &str, iface: &str, name: &str) -> Result<OwnedVariant, SystemdError> {
        let property = |reason: String| SystemdError::Property {
            property: name.to_string(),
            reason,
        };
        let reply = self
            .conn
            .call_method(self.dest(), path, Some(PROPERTIES), "Get", &(iface, name))
            .await
            .map_err(|err| property(err.to_string()))?;
        reply
            .body()
            .deserialize::<OwnedVariant>()
            .map_err(|err| property(err.to_string()))
    }

    async fn get_string(
        &self,
        path: &str,
        iface: &str,
        name: &str,
    ) -> Result<String, SystemdError> {
        let v = self.get(path, iface, name).await?;
        String::try_from(v).map_err(|err| SystemdError::Property {
            property: name.to_string(),
            reason: err.to_string(),
        })
    }
}

/// Runs `futs` together, polling them in the given order, and returns
/// their outputs in that order (a D-Bus call is written at its first poll,
/// so the calls go out in order too).
async fn in_order<F: Future>(futs: Vec<F>) -> Vec<F::Output> {
    let mut futs: Vec<_> = futs.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, o) in futs.iter_mut().zip(out.iter_mut()) {
            if o.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *o = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}

fn to_variant(s: &Setting) -> Result<(String, OwnedVariant), SystemdError> {
    let v = match &s.value {
        SettingValue::U64(n) => OwnedVariant::from(*n),
        SettingValue::U32(n) => OwnedVariant::from(*n),
        SettingValue::Bytes(b) => OwnedVariant::try_from(Variant::from(b.clone())).map_err(e)?,
    };
    Ok((s.name.to_string(), v))
}

fn live_value(prop: Prop, v: OwnedVariant) -> Result<Live, SystemdError> {
    let property = |reason: String| SystemdError::Property {
        property: prop.dbus_name().to_string(),
        reason,
    };
    if prop == Prop::AllowedCpus {
        let bytes: Vec<u8> = match Variant::from(v) {
            Variant::Array(a) => Vec::<u8>::try_from(a).map_err(|err| property(err.to_string()))?,
            other => return Err(property(format!("unexpected {other:?}"))),
        };
        return Ok(Live::Cpus(cpus_of_mask(&bytes)));
    }
    u64::try_from(v)
        .map(Live::Num)
        .map_err(|err| property(err.to_string()))
}

impl Systemd for Bus {
    async fn set(&self, unit: &str, settings: Vec<Setting>) -> Result<(), SystemdError> {
        let props = settings
            .iter()
            .map(to_variant)
            .collect::<Result<Vec<_>, _>>()?;
        self.manager("SetUnitProperties", &(unit, true, props))
            .await
            .map(|_| ())
    }

    async fn live(
        &self,
        unit: &str,
        props: Vec<Prop>,
    ) -> Result<BTreeMap<Prop, Live>, SystemdError> {
        let path = unit_path(unit);
        // Every Get sent before the first reply: one round trip, not one
        // per property.
        let gets = props
            .iter()
            .map(|p| self.get(&path, "org.freedesktop.systemd1.Service", p.dbus_name()))
            .collect();
        let values = in_order(gets).await;
        props
            .into_iter()
            .zip(values)
            .map(|(p, v)| Ok((p, live_value(p, v?)?)))
            .collect()
    }

    async fn set_and_read(
        &self,
        unit: &str,
        settings: Vec<Setting>,
        props: Vec<Prop>,
    ) -> Result<(u64, BTreeMap<Prop, Live>), SystemdError> {
        // The read-back rides behind the set instead of waiting for its
        // reply: one round trip, and one wake-up for both answers (under a
        // saturated CPU each wake-up may wait a scheduler tick). Still a
        // read *after* the set: a connection's messages reach systemd in the
        // order written, systemd answers them one at a time, and the
        // futures are polled in order (`zip`), each writing its call at its
        // first poll under zbus's FIFO write lock.
        let set = async {
            let r = self.set(unit, settings).await;
            (r, crate::clock::mono_us())
        };
        let ((set, at), live) = futures_lite::future::zip(set, self.live(unit, props)).await;
        set?;
        Ok((at, live?))
    }

    async fn restart(&self, unit: &str) -> Result<(), SystemdError> {
        self.manager("RestartUnit", &(unit, "replace"))
            .await
            .map(|_| ())
    }

    async fn reload(&self) -> Result<(), SystemdError> {
        self.manager("Reload", &()).await.map(|_| ())
    }

    async fn info(&self, unit: &str) -> Result<UnitInfo, SystemdError> {
        let path = unit_path(unit);
        Ok(UnitInfo {
            active_state: self
                .get_string(&path, "org.freedesktop.systemd1.Unit", "ActiveState")
                .await?,
            control_group: self
                .get_string(&path, "org.freedesktop.systemd1.Service", "ControlGroup")
                .await
                .unwrap_or_default(),
        })
    }
}

/// Making (and watching) a connection to systemd.
pub trait Connector: Send + Sync + 'static {
    /// The connection.
    type Conn: Systemd + Clone;
    /// Connects, and says how.
    fn connect(&self) -> impl Future<Output = Result<(Self::Conn, Via), SystemdError>> + Send;
    /// Turns systemd's signals into events (units in `watched` only) until
    /// the connection ends; returns why it ended.
    fn watch(
        &self,
        conn: Self::Conn,
        watched: Arc<RwLock<HashSet<String>>>,
        tx: mpsc::Sender<Event>,
    ) -> impl Future<Output = String> + Send;
}

/// The real connector: [`Bus::connect`], with a timeout.
#[derive(Debug, Clone, Copy)]
pub struct BusConnector(pub Duration);

impl Connector for BusConnector {
    type Conn = Bus;

    async fn connect(&self) -> Result<(Bus, Via), SystemdError> {
        let bus = Bus::connect(self.0).await?;
        let via = bus.via();
        Ok((bus, via))
    }

    async fn watch(
        &self,
        bus: Bus,
        watched: Arc<RwLock<HashSet<String>>>,
        tx: mpsc::Sender<Event>,
    ) -> String {
        use futures_lite::StreamExt;
        let conn = bus.connection();
        // No sender in the rules: a direct connection to systemd has no bus names.
        let props = "type='signal',interface='org.freedesktop.DBus.Properties',member='PropertiesChanged',path_namespace='/org/freedesktop/systemd1/unit'";
        let reloading =
            "type='signal',interface='org.freedesktop.systemd1.Manager',member='Reloading'";
        let (mut props, mut reloading) = match (
            zbus::MessageStream::for_match_rule(props, conn, None).await,
            zbus::MessageStream::for_match_rule(reloading, conn, None).await,
        ) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => return format!("cannot watch systemd's signals: {e}"),
        };
        loop {
            tokio::select! {
                m = props.next() => {
                    let Some(Ok(msg)) = m else { return "the connection closed".into() };
                    let header = msg.header();
                    let Some(path) = header.path().map(|p| p.to_string()) else { continue };
                    let Some(unit) = unit_of_path(&path) else { continue };
                    if !watched.read().is_ok_and(|w| w.contains(&unit)) {
                        continue;
                    }
                    let Ok((iface, changed, _)) = msg.body().deserialize::<(String, HashMap<String, zbus::OwnedVariant>, Vec<String>)>() else { continue };
                    if iface != "org.freedesktop.systemd1.Unit" {
                        continue;
                    }
                    if let Some(state) = changed.get("ActiveState").and_then(|v| String::try_from(v.try_clone().ok()?).ok()) {
                        let _ = tx.send(Event::UnitChanged { unit, active_state: state }).await;
                    }
                }
                m = reloading.next() => {
                    let Some(Ok(msg)) = m else { return "the connection closed".into() };
                    if let Ok(active) = msg.body().deserialize::<bool>() {
                        let _ = tx.send(Event::Reloading(active)).await;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_tries_the_private_socket_first_unless_told_otherwise() {
        assert_eq!(first_way(None, true), Via::Private);
        assert_eq!(first_way(Some("private"), true), Via::Private);
        assert_eq!(first_way(Some("system"), true), Via::SystemBus);
        assert_eq!(first_way(None, false), Via::SystemBus);
    }

    #[test]
    fn unit_paths_escape_like_systemd() {
        assert_eq!(
            unit_path("web.service"),
            "/org/freedesktop/systemd1/unit/web_2eservice"
        );
        assert_eq!(
            unit_path("a-b@c.service"),
            "/org/freedesktop/systemd1/unit/a_2db_40c_2eservice"
        );
        for u in ["web.service", "a-b@c_d.service", "x\\x2dy.mount", ""] {
            assert_eq!(unit_of_path(&unit_path(u)).as_deref(), Some(u), "{u}");
        }
        assert_eq!(unit_of_path("/org/freedesktop/systemd1"), None);
        assert_eq!(unit_of_path("/org/freedesktop/systemd1/unit/bad_zz"), None);
    }
}
