//! What changed between the two points of one session, and which kind of box explains it.

use crate::capture::Micros;
use crate::escape::json_text;
use crate::session::{is_masked_keyword, Extension, Session};
use crate::tls::{cipher_name, version_label};

use super::matching::PairedBy;
use super::point::{Exchange, Handshake, HandshakePacket, Line, Observed, WAN_OPTION_KINDS};

/// One of the two capture points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// The first (`A`, `-a`).
    A,
    /// The second (`B`, `-b`).
    B,
}

impl Which {
    /// `"a"` or `"b"`.
    pub fn name(self) -> &'static str {
        match self {
            Which::A => "a",
            Which::B => "b",
        }
    }

    fn other(self) -> Which {
        match self {
            Which::A => Which::B,
            Which::B => Which::A,
        }
    }
}

/// Every change kind, in the direction the data travelled.
pub const CHANGE_KINDS: [&str; 13] = [
    "ehlo-extension-removed",
    "ehlo-extension-added",
    "ehlo-extension-masked",
    "ehlo-extension-differs",
    "banner-masked",
    "banner-rewritten",
    "reply-rewritten",
    "command-rewritten",
    "command-intercepted",
    "tls-terminated",
    "address-translated",
    "tcp-options",
    "sequence-randomised",
];

/// Every middlebox judgement, in the order the first that applies is chosen.
pub const MIDDLEBOXES: [&str; 6] =
    ["proxy", "tls-interception", "esmtp-inspection", "wan-optimizer", "nat", "transparent"];

/// One difference between the points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Kind (one of [`CHANGE_KINDS`]).
    pub kind: &'static str,
    /// What point a saw (wire text as JSON text), None when it saw nothing there.
    pub a: Option<String>,
    /// What point b saw.
    pub b: Option<String>,
    /// Frame at a.
    pub a_frame: Option<u64>,
    /// Frame at b.
    pub b_frame: Option<u64>,
    /// The keyword a same-length mask hid (`STARTTLS` under `XXXXXXXA`).
    pub hidden: Option<String>,
    /// For `command-intercepted`: the reply the box gave.
    pub reply: Option<String>,
}

/// The verdict on one matched session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comparison {
    /// The point nearer the server (unmasked banner/EHLO reply, else the earlier SYN-ACK).
    pub server_side: Option<Which>,
    /// Changes, in the order of the dialogue's layers (TCP, then SMTP, then TLS).
    pub changes: Vec<Change>,
    /// Every judgement that applies, in [`MIDDLEBOXES`] order; never empty.
    pub middleboxes: Vec<&'static str>,
}

struct Pair<'a> {
    x: &'a Observed,
    y: &'a Observed,
}

impl<'a> Pair<'a> {
    fn get(&self, w: Which) -> &'a Observed {
        match w {
            Which::A => self.x,
            Which::B => self.y,
        }
    }
}

/// Accumulates changes with their a/b sides put right.
struct Changes {
    list: Vec<Change>,
    /// Some change altered a byte length: only a box that owns the TCP stream does that.
    length_changed: bool,
    same_length_mask: bool,
}

impl Changes {
    /// A change seen as `client` (the client-side point's view) and `server`.
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        kind: &'static str,
        client_side: Which,
        c: Option<(String, u64)>,
        s: Option<(String, u64)>,
        hidden: Option<String>,
    ) {
        let (a, b) = match client_side {
            Which::A => (c, s),
            Which::B => (s, c),
        };
        self.list.push(Change {
            kind,
            a_frame: a.as_ref().map(|v| v.1),
            b_frame: b.as_ref().map(|v| v.1),
            a: a.map(|v| v.0),
            b: b.map(|v| v.0),
            hidden,
            reply: None,
        });
    }
}

fn text(b: &[u8]) -> String {
    json_text(b)
}

/// `masked` is `clean` with some bytes overwritten by `*` or `X`, its length kept.
pub fn is_mask_of(masked: &[u8], clean: &[u8]) -> bool {
    masked.len() == clean.len()
        && masked != clean
        && masked.iter().zip(clean).all(|(m, c)| m == c || matches!(m, b'*' | b'X' | b'x'))
}

fn banner_line(o: &Observed) -> Option<&Line> {
    o.dialogue.banner.first()
}

fn ext_line(e: &Extension) -> Vec<u8> {
    let mut v = e.keyword.clone();
    if !e.params.is_empty() {
        v.push(b' ');
        v.extend_from_slice(&e.params);
    }
    v
}

fn extensions(s: &Session) -> (Vec<Vec<u8>>, u64) {
    s.ehlo_reply.as_ref().map_or((Vec::new(), 0), |r| (r.extensions.iter().map(ext_line).collect(), r.frame))
}

/// The frame of the EHLO reply line that carries `ext` (a reply may span several segments).
fn ext_frame(o: &Observed, ext: &[u8], fallback: u64) -> u64 {
    o.dialogue
        .exchanges
        .iter()
        .filter(|x| is_hello(&x.command.text))
        .flat_map(|x| &x.reply)
        .find(|l| l.text.get(4..) == Some(ext))
        .map_or(fallback, |l| l.frame)
}

fn masked_ext(line: &[u8]) -> bool {
    let kw = line.split(|b| *b == b' ').next().unwrap_or(line);
    is_masked_keyword(kw)
}

/// Whether `o`'s banner or EHLO reply shows a same-length mask over what `clean` shows.
fn shows_mask(o: &Observed, clean: &Observed) -> bool {
    if let (Some(m), Some(c)) = (banner_line(o), banner_line(clean)) {
        if is_mask_of(&m.text, &c.text) {
            return true;
        }
    }
    let (eo, _) = extensions(&o.session);
    let (ec, _) = extensions(&clean.session);
    eo.iter().any(|l| masked_ext(l) && !ec.contains(l) && ec.iter().any(|c| c.len() == l.len() && !masked_ext(c)))
}

fn isn_etc(h: &Handshake) -> [Option<&HandshakePacket>; 2] {
    [h.syn.as_ref(), h.synack.as_ref()]
}

fn kinds_beyond_mss(p: &HandshakePacket) -> Vec<u8> {
    p.kinds().into_iter().filter(|k| !WAN_OPTION_KINDS.contains(k)).collect()
}

/// Two TCP handshakes rather than one connection seen twice: the packets' own stacks differ
/// (timestamp clocks, windows, option lists beyond the MSS).
fn two_handshakes(p: &Pair<'_>) -> bool {
    isn_etc(&p.x.handshake).iter().zip(isn_etc(&p.y.handshake)).any(|(a, b)| match (a, b) {
        (Some(a), Some(b)) => {
            a.tsval() != b.tsval() || a.window != b.window || kinds_beyond_mss(a) != kinds_beyond_mss(b)
        }
        _ => false,
    })
}

fn same_syn(p: &Pair<'_>) -> bool {
    match (&p.x.handshake.syn, &p.y.handshake.syn) {
        (Some(a), Some(b)) => (a.tsval().is_some() && a.tsval() == b.tsval()) || a.isn == b.isn,
        _ => false,
    }
}

fn server_side(p: &Pair<'_>, two: bool, offset: Micros) -> Option<Which> {
    match (shows_mask(p.x, p.y), shows_mask(p.y, p.x)) {
        (true, false) => return Some(Which::B),
        (false, true) => return Some(Which::A),
        _ => {}
    }
    if two {
        // a box that opens its own connection does so after accepting the client's
        let (sa, sb) = (p.x.start() + offset, p.y.start());
        return match sa.cmp(&sb) {
            std::cmp::Ordering::Less => Some(Which::B),
            std::cmp::Ordering::Greater => Some(Which::A),
            std::cmp::Ordering::Equal => None,
        };
    }
    let (Some(xa), Some(ya)) = (&p.x.handshake.synack, &p.y.handshake.synack) else { return None };
    match (xa.ts + offset).cmp(&ya.ts) {
        std::cmp::Ordering::Less => Some(Which::A),
        std::cmp::Ordering::Greater => Some(Which::B),
        std::cmp::Ordering::Equal => None,
    }
}

fn endpoints(s: &Session) -> String {
    format!("{} > {}", crate::report::endpoint(s.client), crate::report::endpoint(s.server))
}

fn tcp_changes(p: &Pair<'_>, two: bool, ch: &mut Changes) {
    let (sx, sy) = (&p.x.session, &p.y.session);
    if (sx.client, sx.server) != (sy.client, sy.server) {
        ch.push(
            "address-translated",
            Which::A,
            Some((endpoints(sx), sx.first_frame)),
            Some((endpoints(sy), sy.first_frame)),
            None,
        );
    }
    for (a, b) in isn_etc(&p.x.handshake).into_iter().zip(isn_etc(&p.y.handshake)) {
        let (Some(a), Some(b)) = (a, b) else { continue };
        if a.mss() != b.mss() || a.has_wan_option() != b.has_wan_option() {
            ch.push("tcp-options", Which::A, Some((a.describe(), a.frame)), Some((b.describe(), b.frame)), None);
        }
    }
    if !two {
        for (a, b) in isn_etc(&p.x.handshake).into_iter().zip(isn_etc(&p.y.handshake)) {
            let (Some(a), Some(b)) = (a, b) else { continue };
            if a.isn != b.isn {
                ch.push(
                    "sequence-randomised",
                    Which::A,
                    Some((format!("isn {}", a.isn), a.frame)),
                    Some((format!("isn {}", b.isn), b.frame)),
                    None,
                );
            }
        }
    }
}

fn banner_changes(p: &Pair<'_>, client: Which, ch: &mut Changes) {
    let (c, s) = (p.get(client), p.get(client.other()));
    let (Some(cb), Some(sb)) = (banner_line(c), banner_line(s)) else { return };
    if cb.text == sb.text {
        return;
    }
    let masked = is_mask_of(&cb.text, &sb.text);
    if masked {
        ch.same_length_mask = true;
    } else if cb.text.len() != sb.text.len() {
        ch.length_changed = true;
    }
    let kind = if masked { "banner-masked" } else { "banner-rewritten" };
    ch.push(kind, client, Some((text(&cb.text), cb.frame)), Some((text(&sb.text), sb.frame)), None);
}

fn ehlo_changes(p: &Pair<'_>, client: Option<Which>, ch: &mut Changes) {
    let cw = client.unwrap_or(Which::A);
    let (c, s) = (p.get(cw), p.get(cw.other()));
    let ((cl, cf), (sl, sf)) = (extensions(&c.session), extensions(&s.session));
    if c.session.ehlo_reply.is_none() || s.session.ehlo_reply.is_none() || cl == sl {
        return;
    }
    let mut used = vec![false; sl.len()];
    let mut left = Vec::new();
    for l in &cl {
        match sl.iter().enumerate().position(|(j, x)| !used[j] && x == l) {
            Some(j) => used[j] = true,
            None => left.push(l),
        }
    }
    let kind = |k: &'static str| if client.is_none() { "ehlo-extension-differs" } else { k };
    for l in left {
        let mask_of =
            sl.iter().enumerate().position(|(j, x)| !used[j] && x.len() == l.len() && masked_ext(l) && !masked_ext(x));
        if let Some(j) = mask_of {
            used[j] = true;
            ch.same_length_mask = true;
            let hidden = sl[j].split(|b| *b == b' ').next().map(text);
            let (lf, sjf) = (ext_frame(c, l, cf), ext_frame(s, &sl[j], sf));
            ch.push(kind("ehlo-extension-masked"), cw, Some((text(l), lf)), Some((text(&sl[j]), sjf)), hidden);
        } else {
            ch.length_changed = true;
            ch.push(kind("ehlo-extension-added"), cw, Some((text(l), ext_frame(c, l, cf))), None, None);
        }
    }
    for (j, l) in sl.iter().enumerate() {
        if !used[j] {
            ch.length_changed = true;
            ch.push(kind("ehlo-extension-removed"), cw, None, Some((text(l), ext_frame(s, l, sf))), None);
        }
    }
}

/// Most exchanges aligned per session (the alignment is quadratic in them).
const MAX_ALIGNED: usize = 128;

enum Step {
    Same(usize, usize),
    OnlyClient(usize),
    OnlyServer(usize),
}

/// Longest common subsequence of the command lines, as steps in stream order.
fn align(c: &[Exchange], s: &[Exchange]) -> Vec<Step> {
    let (n, m) = (c.len(), s.len());
    let mut t = vec![vec![0u16; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            t[i][j] =
                if c[i].command.text == s[j].command.text { t[i + 1][j + 1] + 1 } else { t[i + 1][j].max(t[i][j + 1]) };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, Vec::new());
    while i < n || j < m {
        if i < n && j < m && c[i].command.text == s[j].command.text {
            out.push(Step::Same(i, j));
            i += 1;
            j += 1;
        } else if j >= m || (i < n && t[i + 1][j] >= t[i][j + 1]) {
            out.push(Step::OnlyClient(i));
            i += 1;
        } else {
            out.push(Step::OnlyServer(j));
            j += 1;
        }
    }
    out
}

fn is_hello(cmd: &[u8]) -> bool {
    let verb = cmd.get(..4).unwrap_or(cmd);
    [b"EHLO", b"HELO", b"LHLO"].iter().any(|v| verb.eq_ignore_ascii_case(*v))
}

fn reply_text(x: &Exchange) -> String {
    let lines: Vec<String> = x.reply.iter().map(|l| text(&l.text)).collect();
    lines.join("\n")
}

fn command_changes(p: &Pair<'_>, client: Which, ch: &mut Changes) {
    let (c, s) = (p.get(client), p.get(client.other()));
    let ce = &c.dialogue.exchanges[..c.dialogue.exchanges.len().min(MAX_ALIGNED)];
    let se = &s.dialogue.exchanges[..s.dialogue.exchanges.len().min(MAX_ALIGNED)];
    let steps = align(ce, se);
    let mut k = 0;
    while k < steps.len() {
        match steps[k] {
            Step::Same(i, j) => {
                let (x, y) = (&ce[i], &se[j]);
                if !is_hello(&x.command.text)
                    && !x.reply.is_empty()
                    && !y.reply.is_empty()
                    && reply_text(x) != reply_text(y)
                {
                    let (xr, yr) = (reply_text(x), reply_text(y));
                    if xr.len() != yr.len() {
                        ch.length_changed = true;
                    }
                    let (xf, yf) = (x.reply.first().map_or(0, |l| l.frame), y.reply.first().map_or(0, |l| l.frame));
                    ch.push("reply-rewritten", client, Some((xr, xf)), Some((yr, yf)), None);
                }
                k += 1;
            }
            Step::OnlyClient(i) => {
                // a client command next to a server command the box put in its place: rewritten
                if let Some(Step::OnlyServer(j)) = steps.get(k + 1) {
                    rewritten(&ce[i], &se[*j], client, ch);
                    k += 2;
                    continue;
                }
                let x = &ce[i];
                ch.length_changed = true;
                ch.push("command-intercepted", client, Some((text(&x.command.text), x.command.frame)), None, None);
                if let Some(last) = ch.list.last_mut() {
                    last.reply = (!x.reply.is_empty()).then(|| reply_text(x));
                }
                k += 1;
            }
            Step::OnlyServer(j) => {
                if let Some(Step::OnlyClient(i)) = steps.get(k + 1) {
                    rewritten(&ce[*i], &se[j], client, ch);
                    k += 2;
                    continue;
                }
                ch.length_changed = true;
                let y = &se[j];
                ch.push("command-rewritten", client, None, Some((text(&y.command.text), y.command.frame)), None);
                k += 1;
            }
        }
    }
}

fn rewritten(x: &Exchange, y: &Exchange, client: Which, ch: &mut Changes) {
    let masked = is_mask_of(&y.command.text, &x.command.text);
    let hidden = masked.then(|| text(&x.command.text));
    if masked {
        ch.same_length_mask = true;
    } else if x.command.text.len() != y.command.text.len() {
        ch.length_changed = true;
    }
    ch.push(
        "command-rewritten",
        client,
        Some((text(&x.command.text), x.command.frame)),
        Some((text(&y.command.text), y.command.frame)),
        hidden,
    );
}

fn describe_tls(s: &Session) -> Option<(String, u64)> {
    if !s.tls_handshake() {
        return None;
    }
    let t = &s.tls;
    let mut d = t.version.map_or_else(|| "TLS".to_string(), version_label);
    if let Some(c) = t.cipher {
        d.push(' ');
        d.push_str(&cipher_name(c));
    }
    match &t.cert {
        Some(c) => {
            d.push_str(", certificate ");
            d.push_str(&c.subject);
            d.push_str(" sha256 ");
            d.push_str(&c.sha256);
        }
        None => d.push_str(", certificate not visible"),
    }
    Some((d, t.cert_frame.or(t.server_hello).or(t.client_hello).unwrap_or(0)))
}

fn tls_changes(p: &Pair<'_>, ch: &mut Changes) -> bool {
    let (sx, sy) = (&p.x.session, &p.y.session);
    let (dx, dy) = (describe_tls(sx), describe_tls(sy));
    let differs = match (&dx, &dy) {
        (None, None) => false,
        (Some(_), None) | (None, Some(_)) => true,
        (Some(_), Some(_)) => {
            let cert = |s: &Session| s.tls.cert.as_ref().map(|c| c.sha256.clone());
            (cert(sx).is_some() && cert(sy).is_some() && cert(sx) != cert(sy))
                || sx.tls.version != sy.tls.version
                || sx.tls.cipher != sy.tls.cipher
        }
    };
    if !differs {
        return false;
    }
    let clear = |s: &Session| ("cleartext".to_string(), s.last_frame);
    let (a, b) = (dx.or_else(|| Some(clear(sx))), dy.or_else(|| Some(clear(sy))));
    ch.push("tls-terminated", Which::A, a, b, None);
    let certs = |s: &Session| s.tls.cert.as_ref().map(|c| c.sha256.clone());
    sx.tls_handshake() && sy.tls_handshake() && certs(sx).is_some() && certs(sy).is_some() && certs(sx) != certs(sy)
}

/// Compares a session seen at a (`x`) and at b (`y`); `offset` is b's clock minus a's.
pub fn compare(x: &Observed, y: &Observed, paired: PairedBy, offset: Micros) -> Comparison {
    let p = Pair { x, y };
    // sessions paired by time order alone (TLS from the start) may still be one connection seen
    // twice: the same SYN (timestamp clock or ISN) at both points says so
    let relayed = paired == PairedBy::RelayOrder && !same_syn(&p);
    let two = relayed || two_handshakes(&p);
    let side = server_side(&p, two, offset);
    let client = side.map(Which::other);
    let mut ch = Changes { list: Vec::new(), length_changed: false, same_length_mask: false };
    tcp_changes(&p, two, &mut ch);
    // A relay's two legs are two SMTP sessions of their own: only their endpoints and TLS compare.
    if !relayed {
        banner_changes(&p, client.unwrap_or(Which::A), &mut ch);
        ehlo_changes(&p, client, &mut ch);
        command_changes(&p, client.unwrap_or(Which::A), &mut ch);
    }
    let other_certs = tls_changes(&p, &mut ch);
    let has = |k: &str| ch.list.iter().any(|c| c.kind == k);
    let wan = [&x.handshake, &y.handshake].map(|h| isn_etc(h).iter().flatten().any(|p| p.has_wan_option()));
    let mut m = Vec::new();
    if two || has("command-intercepted") || ch.length_changed {
        m.push("proxy");
    }
    if other_certs {
        m.push("tls-interception");
    }
    if ch.same_length_mask {
        m.push("esmtp-inspection");
    }
    if wan[0] != wan[1] {
        m.push("wan-optimizer");
    }
    let tcp_only =
        ch.list.iter().all(|c| matches!(c.kind, "address-translated" | "sequence-randomised" | "tcp-options"));
    if !two && !ch.list.is_empty() && tcp_only && wan[0] == wan[1] {
        m.push("nat");
    }
    if ch.list.is_empty() {
        m.push("transparent");
    }
    if m.is_empty() {
        // a change to the SMTP or TLS stream that no same-length mask explains
        m.push("proxy");
    }
    Comparison { server_side: side, changes: ch.list, middleboxes: m }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mask_keeps_the_length_and_only_overwrites() {
        assert!(is_mask_of(b"XXXXXXXX", b"STARTTLS"));
        // Cisco's trailing letter makes an EHLO keyword mask, not a byte mask (is_masked_keyword)
        assert!(!is_mask_of(b"XXXXXXXA", b"STARTTLS"));
        assert!(is_mask_of(b"mx.lab *******", b"mx.lab example"));
        assert!(!is_mask_of(b"XXXXXXX", b"STARTTLS"));
        assert!(!is_mask_of(b"STARTTLS", b"STARTTLS"));
        assert!(!is_mask_of(b"STARTTLT", b"STARTTLS"));
    }

    fn ex(cmd: &str, reply: &str) -> Exchange {
        Exchange {
            command: Line { text: cmd.as_bytes().to_vec(), frame: 1 },
            reply: vec![Line { text: reply.as_bytes().to_vec(), frame: 2 }],
        }
    }

    #[test]
    fn alignment_finds_a_command_the_server_never_saw() {
        let c = [ex("EHLO x", "250 ok"), ex("STARTTLS", "500 no"), ex("MAIL FROM:<a>", "250 ok")];
        let s = [ex("EHLO x", "250 ok"), ex("MAIL FROM:<a>", "250 ok")];
        let steps = align(&c, &s);
        assert!(matches!(steps.as_slice(), [Step::Same(0, 0), Step::OnlyClient(1), Step::Same(2, 1)]));
    }
}
