//! The diff as NDJSON (one object per session, `a` and `b` exactly as `-F json` writes them,
//! then a summary line) or as a table.

use std::io::{self, Write};

use serde_json::{json, Value};

use crate::capture::Micros;
use crate::escape::defuse;
use crate::report::{self, json::write_line, Options};

use super::{Change, Diff, DiffEntry, Observed};

fn change_value(c: &Change) -> Value {
    let mut v = json!({"kind": c.kind, "a": c.a, "b": c.b, "a_frame": c.a_frame, "b_frame": c.b_frame});
    if let (Some(h), Some(m)) = (&c.hidden, v.as_object_mut()) {
        m.insert("hidden".into(), json!(h));
    }
    if let (Some(r), Some(m)) = (&c.reply, v.as_object_mut()) {
        m.insert("reply".into(), json!(r));
    }
    v
}

fn side(out: &mut Vec<u8>, o: Option<&Observed>, opts: Options) {
    match o {
        Some(o) => write_line(out, &o.session, opts),
        None => out.extend_from_slice(b"null"),
    }
}

/// One entry's NDJSON line (without the line end).
pub fn entry_line(out: &mut Vec<u8>, d: &Diff, e: &DiffEntry, opts: Options) {
    out.extend_from_slice(b"{\"a\":");
    side(out, e.a.and_then(|i| d.a.sessions.get(i)), opts);
    out.extend_from_slice(b",\"b\":");
    side(out, e.b.and_then(|i| d.b.sessions.get(i)), opts);
    let rest = match &e.comparison {
        Some(c) => json!({
            "server_side": c.server_side.map(|w| w.name()),
            "changes": c.changes.iter().map(change_value).collect::<Vec<_>>(),
            "middlebox": c.middleboxes.first(),
            "middleboxes": c.middleboxes,
        }),
        None => json!({
            "server_side": null,
            "changes": [],
            "middlebox": null,
            "middleboxes": [],
            "reason": e.reason.map(|r| r.name()),
        }),
    };
    let rest = rest.to_string();
    // `rest` is an object: splice its members after ours
    out.push(b',');
    out.extend_from_slice(rest.get(1..).unwrap_or("}").as_bytes());
}

/// The closing summary line.
pub fn summary_line(d: &Diff) -> String {
    json!({
        "type": "summary",
        "clock_offset_s": d.offset.map(|o| o as f64 / 1e6),
        "matched": d.matched(),
        "only_a": d.only_a(),
        "only_b": d.only_b(),
    })
    .to_string()
}

/// Writes the NDJSON form.
pub fn write_json(out: &mut dyn Write, d: &Diff, opts: Options) -> io::Result<()> {
    let mut line = Vec::with_capacity(8192);
    for e in &d.entries {
        line.clear();
        entry_line(&mut line, d, e, opts);
        line.push(b'\n');
        out.write_all(&line)?;
    }
    writeln!(out, "{}", summary_line(d))?;
    out.flush()
}

/// A clock offset in words: `+3600.000 s`.
pub fn offset_words(o: Option<Micros>) -> String {
    o.map_or_else(|| "unknown (no session matched by content)".into(), |o| format!("{:+.3} s", o as f64 / 1e6))
}

/// The sentence for two captures with nothing in common, or None.
pub fn nothing_matched(d: &Diff) -> Option<String> {
    (d.matched() == 0).then(|| {
        format!(
            "no session at A matches one at B ({} at A, {} at B): no common SMTP content within the offset and skew \
             looked for; these captures do not look like two points of one path",
            d.a.sessions.len(),
            d.b.sessions.len()
        )
    })
}

fn who(o: &Observed) -> String {
    format!("{} > {}", report::endpoint(o.session.client), report::endpoint(o.session.server))
}

fn change_words(c: &Change) -> String {
    let show =
        |v: &Option<String>| v.as_deref().map_or_else(|| "(nothing)".to_string(), |s| format!("'{}'", defuse(s)));
    let mut s = format!("      {}: a {} | b {}", c.kind, show(&c.a), show(&c.b));
    if let Some(h) = &c.hidden {
        s.push_str(&format!(" (hid {})", defuse(h)));
    }
    if let Some(r) = &c.reply {
        s.push_str(&format!(" (the box answered '{}')", defuse(r)));
    }
    s.replace('\n', " / ")
}

/// Writes the table: one line per session, its changes indented below.
pub fn write_table(out: &mut dyn Write, d: &Diff) -> io::Result<()> {
    writeln!(out, "clock offset (b - a): {}", offset_words(d.offset))?;
    let off = d.offset.unwrap_or(0);
    let rows: Vec<(Micros, String, String, &DiffEntry)> = d
        .entries
        .iter()
        .map(|e| {
            let a = e.a.and_then(|i| d.a.sessions.get(i));
            let b = e.b.and_then(|i| d.b.sessions.get(i));
            let t = a.map_or_else(|| b.map_or(0, |b| b.start() - off), Observed::start);
            (t, a.map_or("-".into(), who), b.map_or("-".into(), who), e)
        })
        .collect();
    let wa = rows.iter().map(|r| r.1.len()).max().unwrap_or(0).max(4);
    let wb = rows.iter().map(|r| r.2.len()).max().unwrap_or(0).max(4);
    writeln!(out, "{:<27} {:<wa$}  {:<wb$}  {:<16}  CHANGES", "TIME (a's clock)", "AT A", "AT B", "MIDDLEBOX")?;
    for (t, at_a, at_b, e) in &rows {
        let (mbox, kinds) = match (&e.comparison, e.reason) {
            (Some(c), _) => {
                let mut k: Vec<&str> = c.changes.iter().map(|c| c.kind).collect();
                k.dedup();
                (
                    c.middleboxes.first().copied().unwrap_or("-").to_string(),
                    if k.is_empty() { "none".into() } else { k.join(", ") },
                )
            }
            (None, Some(r)) => {
                ("-".into(), format!("only at {} ({})", if e.a.is_some() { "a" } else { "b" }, r.name()))
            }
            (None, None) => ("-".into(), String::new()),
        };
        writeln!(out, "{:<27} {at_a:<wa$}  {at_b:<wb$}  {mbox:<16}  {kinds}", report::rfc3339(*t))?;
        for c in e.comparison.iter().flat_map(|c| &c.changes) {
            writeln!(out, "{}", change_words(c))?;
        }
    }
    writeln!(out, "{} matched, {} only at a, {} only at b", d.matched(), d.only_a(), d.only_b())?;
    if let Some(s) = nothing_matched(d) {
        writeln!(out, "{s}")?;
    }
    out.flush()
}
