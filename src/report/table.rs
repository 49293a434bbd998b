//! The streaming table: fixed column widths, coloured by verdict on a terminal. Only a terminal
//! gets values cut to their column: into a file or a pipe every value goes whole (a long HELO
//! name or IPv6 address just pushes the rest of its row along).

use std::io::{self, Write};

use super::{rfc3339, Options};
use crate::escape::terminal;
use crate::session::{Session, Verdict};
use crate::tls::version_label;

/// ANSI colour for a verdict: TLS green, unused/plain yellow, failures red, unknown grey.
pub fn verdict_color(v: Verdict) -> &'static str {
    match v {
        Verdict::Starttls | Verdict::ImplicitTls => "\x1b[32m",
        Verdict::Plaintext | Verdict::StarttlsOfferedUnused => "\x1b[33m",
        Verdict::Stripped | Verdict::StarttlsRefused | Verdict::StarttlsFailed => "\x1b[31m",
        Verdict::Incomplete | Verdict::NotSmtp => "\x1b[90m",
    }
}

fn fit(s: &str, w: usize) -> String {
    let n = s.chars().count();
    if n <= w || w == usize::MAX {
        format!("{s:<w$}")
    } else {
        let mut t: String = s.chars().take(w.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// An `ip:port` endpoint in `w` columns: a long (IPv6) address loses its middle, never its port.
fn fit_endpoint(e: &std::net::SocketAddr, w: usize, cut: bool) -> String {
    let s = e.to_string();
    let n = s.len();
    if n <= w || !cut {
        return format!("{s:<w$}");
    }
    // Keep the port and the address's last group (`…:1]:25`), and as much of its start as fits.
    let tail = e.port().to_string().len() + 1 + if e.is_ipv6() { 6 } else { 4 };
    let head = w.saturating_sub(tail + 1);
    match (s.get(..head), s.get(n.saturating_sub(tail)..)) {
        (Some(h), Some(t)) => format!("{h}…{t}"),
        _ => fit(&s, w),
    }
}

/// Table writer.
pub struct Writer<W> {
    out: W,
    opts: Options,
    header: bool,
}

impl<W: Write> Writer<W> {
    /// Writes to `out`.
    pub fn new(out: W, opts: Options) -> Self {
        Self { out, opts, header: false }
    }

    fn header(&mut self) -> io::Result<()> {
        if !self.header {
            self.header = true;
            writeln!(
                self.out,
                "{} {} {} {} {} {} {:>4} {:>9} FINDINGS",
                fit("TIME (UTC)", 19),
                fit("CLIENT", 23),
                fit("SERVER", 23),
                fit("HELO", 20),
                fit("VERDICT", 23),
                fit("TLS", 6),
                "MSGS",
                "BYTES"
            )?;
        }
        Ok(())
    }
}

impl<W: Write> super::RecordWriter for Writer<W> {
    fn write(&mut self, s: &Session) -> io::Result<()> {
        self.header()?;
        let time = rfc3339(s.first_seen);
        let time = time.get(..19).unwrap_or(&time).replace('T', " ");
        let helo = s.hello.as_ref().map(|h| terminal(&h.arg)).unwrap_or_else(|| "-".into());
        let v = s.verdict.unwrap_or(Verdict::Incomplete);
        let tls =
            s.tls.version.filter(|_| s.tls.server_hello.is_some()).map(version_label).unwrap_or_else(|| "-".into());
        let msgs = if s.tls_established() || s.kind != crate::session::Kind::Smtp {
            "-".to_string()
        } else {
            s.messages_accepted.to_string()
        };
        let verdict = fit(v.name(), 23);
        let (on, off) = if self.opts.color { (verdict_color(v), "\x1b[0m") } else { ("", "") };
        let cut = self.opts.truncate;
        writeln!(
            self.out,
            "{} {} {} {} {on}{verdict}{off} {} {:>4} {:>9} {}",
            fit(&time, 19),
            fit_endpoint(&s.client, 23, cut),
            fit_endpoint(&s.server, 23, cut),
            if cut { fit(&helo, 20) } else { format!("{helo:<20}") },
            fit(&tls, 6),
            msgs,
            s.wire_bytes[0] + s.wire_bytes[1],
            super::finding::short_list(s),
        )?;
        if self.opts.line_buffered {
            self.out.flush()?;
        }
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        self.header()?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_ipv6_endpoint_keeps_its_port() {
        let e: std::net::SocketAddr = "[2003:de:2016:125:fc36:1234:5678:9abc]:2525".parse().unwrap();
        let f = fit_endpoint(&e, 23, true);
        assert_eq!(f.chars().count(), 23);
        assert!(f.starts_with("[2003:de:"), "{f}");
        assert!(f.ends_with(":9abc]:2525"), "{f}");
    }

    #[test]
    fn an_ipv4_endpoint_is_padded_not_cut() {
        let e: std::net::SocketAddr = "10.1.2.3:25".parse().unwrap();
        assert_eq!(fit_endpoint(&e, 23, true), format!("{:<23}", "10.1.2.3:25"));
    }

    fn table(s: &Session, truncate: bool) -> String {
        let mut out = Vec::new();
        let mut w = Writer::new(Box::new(&mut out), Options { truncate, ..Options::default() });
        super::super::RecordWriter::write(&mut w, s).unwrap();
        drop(w);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn off_a_terminal_no_value_is_cut() {
        let mut s = Session::new(
            "[2003:de:2016:125:fc36:1234:5678:9abc]:40001".parse().unwrap(),
            "[2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff]:25".parse().unwrap(),
        );
        s.hello = Some(crate::session::Hello {
            verb: "EHLO",
            arg: b"a-very-long-helo-name.branch.contoso.example".to_vec(),
            ..Default::default()
        });
        let full = table(&s, false);
        for whole in [
            "[2003:de:2016:125:fc36:1234:5678:9abc]:40001",
            "[2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff]:25",
            "a-very-long-helo-name.branch.contoso.example",
        ] {
            assert!(full.contains(whole), "{full}");
        }
        assert!(!full.contains('…'), "{full}");
        let cut = table(&s, true);
        assert!(cut.contains('…') && !cut.contains("a-very-long-helo-name.branch"), "{cut}");
    }

    #[test]
    fn the_findings_column_lists_short_names() {
        let mut s = Session::new("10.0.0.1:1025".parse().unwrap(), "10.0.0.2:25".parse().unwrap());
        let header_and_row = table(&s, false);
        assert!(header_and_row.lines().next().unwrap().ends_with(" FINDINGS"), "{header_and_row}");
        assert!(header_and_row.lines().nth(1).unwrap().ends_with(" -"), "{header_and_row}");
        s.find("cleartext-auth", Some(7), "AUTH PLAIN in clear");
        s.find("cert-expired", Some(9), "expired");
        assert!(table(&s, false).lines().nth(1).unwrap().ends_with(" clear-auth,expired"));
    }
}
