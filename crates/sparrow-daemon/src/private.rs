//! A connection to systemd's private socket that zbus accepts.
//!
//! On its private socket (`/run/systemd/private`, a direct connection
//! without a bus) systemd stamps every message with the sender
//! `org.freedesktop.systemd1`, a well-known name where the D-Bus
//! specification puts a unique name; zbus validates the field and drops the
//! connection. So the daemon talks to zbus over a socket pair and relays:
//! bytes to systemd go through unchanged, messages from systemd lose their
//! SENDER header field (nothing here uses it on a direct connection).

use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

const SENDER: u8 = 7;

/// Connects to systemd's private socket; returns the end zbus should use.
pub async fn connect(path: &str) -> io::Result<std::os::unix::net::UnixStream> {
    let upstream = UnixStream::connect(path).await?;
    let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
    theirs.set_nonblocking(true)?;
    let theirs = UnixStream::from_std(theirs)?;
    let (up_r, mut up_w) = upstream.into_split();
    // Buffered: a message is read as a few small pieces (the first byte,
    // the fixed header, the rest), and signals come in bursts.
    let mut up_r = tokio::io::BufReader::with_capacity(64 * 1024, up_r);
    let (mut zb_r, mut zb_w) = theirs.into_split();
    tokio::spawn(async move {
        let _ = tokio::io::copy(&mut zb_r, &mut up_w).await;
        let _ = up_w.shutdown().await;
    });
    tokio::spawn(async move {
        let _ = relay_from_systemd(&mut up_r, &mut zb_w).await;
        let _ = zb_w.shutdown().await;
    });
    Ok(ours)
}

fn bad(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

/// Forwards the authentication lines as they are, then every message with
/// its SENDER field removed.
async fn relay_from_systemd<R, W>(from: &mut R, to: &mut W) -> io::Result<()>
where
    R: AsyncReadExt + Unpin,
    W: AsyncWriteExt + Unpin,
{
    loop {
        let first = from.read_u8().await?;
        if first == b'l' || first == b'B' {
            let mut fixed = [0u8; 16];
            fixed[0] = first;
            from.read_exact(&mut fixed[1..]).await?;
            let little = first == b'l';
            let u32_at = |b: &[u8], i: usize| {
                let w = [b[i], b[i + 1], b[i + 2], b[i + 3]];
                if little {
                    u32::from_le_bytes(w)
                } else {
                    u32::from_be_bytes(w)
                }
            };
            let body_len = u32_at(&fixed, 4) as usize;
            let fields_len = u32_at(&fixed, 12) as usize;
            if fields_len > 1 << 20 || body_len > 1 << 27 {
                return Err(bad("message too large"));
            }
            let padded = fields_len.div_ceil(8) * 8;
            let mut rest = vec![0u8; padded + body_len];
            from.read_exact(&mut rest).await?;
            let mut msg = fixed.to_vec();
            msg.extend_from_slice(&rest);
            to.write_all(&without_sender(&msg)?).await?;
        } else {
            // A SASL line ("OK <guid>", "AGREE_UNIX_FD", ...), up to CR LF.
            let mut line = vec![first];
            while !line.ends_with(b"\r\n") {
                line.push(from.read_u8().await?);
                if line.len() > 4096 {
                    return Err(bad("authentication line too long"));
                }
            }
            to.write_all(&line).await?;
        }
    }
}

fn align(n: usize, to: usize) -> usize {
    n.div_ceil(to) * to
}

/// The message with its SENDER header field removed (the rest unchanged).
pub fn without_sender(msg: &[u8]) -> io::Result<Vec<u8>> {
    if msg.len() < 16 {
        return Err(bad("short message"));
    }
    let little = msg[0] == b'l';
    let u32_at = |i: usize| -> io::Result<u32> {
        let w: [u8; 4] = msg
            .get(i..i + 4)
            .ok_or_else(|| bad("truncated"))?
            .try_into()
            .map_err(|_| bad("truncated"))?;
        Ok(if little {
            u32::from_le_bytes(w)
        } else {
            u32::from_be_bytes(w)
        })
    };
    let fields_len = u32_at(12)? as usize;
    let fields_end = 16 + fields_len;
    let body_start = align(fields_end, 8);
    if msg.len() < body_start {
        return Err(bad("truncated header"));
    }
    // Each field: 8-aligned (code, signature, value).
    let mut kept: Vec<u8> = Vec::with_capacity(fields_len);
    let mut pos = 16;
    while pos < fields_end {
        let start = pos;
        let code = msg[pos];
        let sig_len = *msg.get(pos + 1).ok_or_else(|| bad("truncated field"))? as usize;
        let sig = msg
            .get(pos + 2..pos + 2 + sig_len)
            .ok_or_else(|| bad("truncated signature"))?;
        pos += 2 + sig_len + 1;
        pos = match sig {
            b"s" | b"o" => {
                let at = align(pos, 4);
                at + 4 + u32_at(at)? as usize + 1
            }
            b"g" => pos + 1 + *msg.get(pos).ok_or_else(|| bad("truncated"))? as usize + 1,
            b"u" => align(pos, 4) + 4,
            _ => return Err(bad("unexpected header field type")),
        };
        if pos > fields_end {
            return Err(bad("header field past the header"));
        }
        if code != SENDER {
            // Fields start 8-aligned from the message start; keep that.
            kept.resize(align(kept.len(), 8), 0);
            kept.extend_from_slice(&msg[start..pos]);
        }
        pos = align(pos, 8).min(fields_end.max(pos));
    }
    let mut out = Vec::with_capacity(msg.len());
    out.extend_from_slice(&msg[..12]);
    let n = kept.len() as u32;
    out.extend_from_slice(&if little {
        n.to_le_bytes()
    } else {
        n.to_be_bytes()
    });
    out.extend_from_slice(&kept);
    out.resize(align(out.len(), 8), 0);
    out.extend_from_slice(&msg[body_start..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A little-endian method return with REPLY_SERIAL (5, u), DESTINATION
    /// (6, s) and SENDER (7, s) fields and a 4-byte body.
    fn message(with_sender: bool) -> Vec<u8> {
        let mut fields: Vec<u8> = Vec::new();
        let field = |fields: &mut Vec<u8>, code: u8, sig: u8, value: &[u8]| {
            fields.resize(align(fields.len(), 8), 0);
            fields.extend_from_slice(&[code, 1, sig, 0]);
            fields.extend_from_slice(value);
        };
        field(&mut fields, 5, b'u', &7u32.to_le_bytes());
        let s = |t: &str| {
            let mut v = (t.len() as u32).to_le_bytes().to_vec();
            v.extend_from_slice(t.as_bytes());
            v.push(0);
            v
        };
        if with_sender {
            field(&mut fields, SENDER, b's', &s("org.freedesktop.systemd1"));
        }
        field(&mut fields, 6, b's', &s(":1.42"));
        let mut m = vec![b'l', 2, 1, 1];
        m.extend_from_slice(&4u32.to_le_bytes());
        m.extend_from_slice(&9u32.to_le_bytes());
        m.extend_from_slice(&(fields.len() as u32).to_le_bytes());
        m.extend_from_slice(&fields);
        m.resize(align(m.len(), 8), 0);
        m.extend_from_slice(&[1, 2, 3, 4]);
        m
    }

    #[test]
    fn the_sender_field_goes_and_everything_else_stays() {
        assert_eq!(without_sender(&message(true)).unwrap(), message(false));
        assert_eq!(without_sender(&message(false)).unwrap(), message(false));
        assert!(without_sender(&message(true)[..20]).is_err());
    }
}
