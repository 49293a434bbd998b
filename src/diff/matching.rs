//! Which session at one point is which at the other: the clock offset first, from sessions
//! whose SMTP content agrees, then pairs within the skew, never by sequence numbers or packet
//! boundaries (NAT, proxies and ISN randomisation change those).

use std::collections::HashMap;

use crate::capture::Micros;

use super::point::{Observed, Point};
use super::Settings;

/// What ties a session to itself at the other point: the client's EHLO/HELO argument, the
/// envelope and the message sizes, which a box passes on unchanged. Banner and EHLO reply are
/// left out: they are what a box rewrites.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ContentKey {
    hello: Vec<u8>,
    mail_from: Vec<Vec<u8>>,
    rcpt_to: Vec<Vec<u8>>,
    bodies: Vec<u64>,
}

/// The key of a session, when it shows enough content to be told apart (a hello or a MAIL).
pub fn content_key(o: &Observed) -> Option<ContentKey> {
    let s = &o.session;
    let hello = s.hello.as_ref().map(|h| h.arg.to_ascii_lowercase()).unwrap_or_default();
    if hello.is_empty() && s.mail_from.is_empty() {
        return None;
    }
    let lower = |v: &Vec<Vec<u8>>| v.iter().map(|a| a.to_ascii_lowercase()).collect();
    Some(ContentKey {
        hello,
        mail_from: lower(&s.mail_from),
        rcpt_to: lower(&s.rcpt_to),
        bodies: o.dialogue.bodies.clone(),
    })
}

/// How a pair was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairedBy {
    /// The same SMTP content within the skew.
    Content,
    /// TLS on both legs of a relay: the next session towards the same server port within the
    /// relay window.
    RelayOrder,
    /// No content to go by (a capture begun mid-session, TLS from the first byte): the nearest
    /// session within the skew towards the same server port with the same banner, if any.
    Weak,
}

/// The matching's result: pairs (index at a, index at b) and the clock offset.
#[derive(Debug, Clone, Default)]
pub struct Matching {
    /// b's clock minus a's, when content matches gave one.
    pub offset: Option<Micros>,
    /// Pairs in a's order.
    pub pairs: Vec<(usize, usize, PairedBy)>,
}

/// Most sessions per side and key that vote on the offset: enough for a clear majority, and
/// the vote stays linear when thousands of sessions share one content.
const VOTERS_PER_KEY: usize = 16;

fn sample(v: &[usize], n: usize) -> impl Iterator<Item = usize> + '_ {
    let step = v.len().div_ceil(n).max(1);
    v.iter().copied().step_by(step)
}

/// The session's own offset estimate against `b`: the handshake's midpoint when both points
/// saw SYN and SYN-ACK (the path delay cancels), else the difference of the start times.
fn pair_offset(a: &Observed, b: &Observed) -> Micros {
    let (ha, hb) = (&a.handshake, &b.handshake);
    if let (Some(sa), Some(aa), Some(sb), Some(ab)) = (&ha.syn, &ha.synack, &hb.syn, &hb.synack) {
        return ((sb.ts - sa.ts) + (ab.ts - aa.ts)) / 2;
    }
    b.start() - a.start()
}

/// Estimates b's clock minus a's from sessions with the same content within ±`max_offset`:
/// the densest window of `max_skew` among the votes, its median.
pub fn estimate_offset(
    a: &Point,
    b: &Point,
    keys_a: &[Option<ContentKey>],
    keys_b: &[Option<ContentKey>],
    set: &Settings,
) -> Option<Micros> {
    let index_b = index(keys_b);
    let mut groups_a: HashMap<&ContentKey, Vec<usize>> = HashMap::new();
    for (i, k) in keys_a.iter().enumerate() {
        if let Some(k) = k {
            groups_a.entry(k).or_default().push(i);
        }
    }
    let mut votes = Vec::new();
    for (k, ia) in &groups_a {
        let Some(ib) = index_b.get(k) else { continue };
        for i in sample(ia, VOTERS_PER_KEY) {
            for j in sample(ib, VOTERS_PER_KEY) {
                let (Some(x), Some(y)) = (a.sessions.get(i), b.sessions.get(j)) else { continue };
                let d = pair_offset(x, y);
                if d.abs() <= set.max_offset {
                    votes.push(d);
                }
            }
        }
    }
    if votes.is_empty() {
        return None;
    }
    votes.sort_unstable();
    let (mut best, mut best_n, mut lo) = (0usize, 0usize, 0usize);
    for hi in 0..votes.len() {
        while votes[hi] - votes[lo] > set.max_skew {
            lo += 1;
        }
        if hi + 1 - lo > best_n {
            best_n = hi + 1 - lo;
            best = lo;
        }
    }
    Some(votes[best + best_n / 2])
}

fn index(keys: &[Option<ContentKey>]) -> HashMap<&ContentKey, Vec<usize>> {
    let mut m: HashMap<&ContentKey, Vec<usize>> = HashMap::new();
    for (i, k) in keys.iter().enumerate() {
        if let Some(k) = k {
            m.entry(k).or_default().push(i);
        }
    }
    m
}

/// Most candidates looked at per session within the skew (sessions with one content by the
/// thousand in one second would otherwise make the pass quadratic).
const CANDIDATES: usize = 64;

/// Pairs the sessions: the same content within `max_skew` of the corrected time, the same
/// server port (or its learnt NAT mapping) preferred, the nearest in time first; then TLS-only
/// sessions by time order and server port within `relay_window`.
pub fn match_points(a: &Point, b: &Point, set: &Settings) -> Matching {
    let keys_a: Vec<Option<ContentKey>> = a.sessions.iter().map(content_key).collect();
    let keys_b: Vec<Option<ContentKey>> = b.sessions.iter().map(content_key).collect();
    let offset = estimate_offset(a, b, &keys_a, &keys_b, set);
    let off = offset.unwrap_or(0);
    let index_b = index(&keys_b);
    let mut used_a = vec![false; a.sessions.len()];
    let mut used_b = vec![false; b.sessions.len()];
    let mut pairs = Vec::new();
    let mut port_map: HashMap<u16, u16> = HashMap::new();
    for (i, x) in a.sessions.iter().enumerate() {
        let Some(k) = &keys_a[i] else { continue };
        let Some(cands) = index_b.get(k) else { continue };
        let t = x.start() + off;
        // candidates are in b's start order: search the window's start
        let from = cands.partition_point(|&j| b.sessions.get(j).is_some_and(|y| y.start() < t - set.max_skew));
        let mut best: Option<(bool, Micros, usize)> = None;
        for &j in cands.iter().skip(from).filter(|&&j| !used_b[j]).take(CANDIDATES) {
            let Some(y) = b.sessions.get(j) else { continue };
            let dt = (y.start() - t).abs();
            if y.start() - t > set.max_skew {
                break;
            }
            let port = x.session.server.port();
            let same_port = y.session.server.port() == *port_map.get(&port).unwrap_or(&port);
            let score = (!same_port, dt, j);
            if best.is_none_or(|b| score < b) {
                best = Some(score);
            }
        }
        if let Some((_, _, j)) = best {
            used_a[i] = true;
            used_b[j] = true;
            if let Some(y) = b.sessions.get(j) {
                port_map.entry(x.session.server.port()).or_insert(y.session.server.port());
            }
            pairs.push((i, j, PairedBy::Content));
        }
    }
    relay_pairs(a, b, off, set, &port_map, &mut used_a, &mut used_b, &mut pairs);
    weak_pairs(a, b, off, set, &port_map, &mut used_a, &mut used_b, &mut pairs);
    pairs.sort_by_key(|p| p.0);
    Matching { offset, pairs }
}

fn tls_only(o: &Observed) -> bool {
    o.session.tls_handshake() && o.session.mail_from.is_empty()
}

/// A relay that terminates TLS shows only EHLO and certificates in clear on each leg: each
/// unpaired TLS session at one point goes with the first unpaired TLS session at the other that
/// starts after it, within the relay window, towards the same server port (or its mapping).
#[allow(clippy::too_many_arguments)]
fn relay_pairs(
    a: &Point,
    b: &Point,
    off: Micros,
    set: &Settings,
    port_map: &HashMap<u16, u16>,
    used_a: &mut [bool],
    used_b: &mut [bool],
    pairs: &mut Vec<(usize, usize, PairedBy)>,
) {
    let free_b: Vec<usize> = (0..b.sessions.len()).filter(|&j| !used_b[j] && tls_only(&b.sessions[j])).collect();
    let mut cursor = 0usize;
    for (i, x) in a.sessions.iter().enumerate() {
        if used_a[i] || !tls_only(x) {
            continue;
        }
        let t = x.start() + off;
        while free_b.get(cursor).is_some_and(|&j| b.sessions[j].start() < t - set.max_skew) {
            cursor += 1;
        }
        let port = x.session.server.port();
        let want = *port_map.get(&port).unwrap_or(&port);
        let found = free_b[cursor.min(free_b.len())..]
            .iter()
            .copied()
            .take_while(|&j| b.sessions[j].start() - t <= set.relay_window)
            .find(|&j| !used_b[j] && b.sessions[j].session.server.port() == want);
        if let Some(j) = found {
            used_a[i] = true;
            used_b[j] = true;
            pairs.push((i, j, PairedBy::RelayOrder));
        }
    }
}

/// What is left without content: by server port (or its mapping), the same banner (none on both
/// sides counts as the same), the nearest start within the skew.
#[allow(clippy::too_many_arguments)]
fn weak_pairs(
    a: &Point,
    b: &Point,
    off: Micros,
    set: &Settings,
    port_map: &HashMap<u16, u16>,
    used_a: &mut [bool],
    used_b: &mut [bool],
    pairs: &mut Vec<(usize, usize, PairedBy)>,
) {
    let free_b: Vec<usize> = (0..b.sessions.len()).filter(|&j| !used_b[j]).collect();
    for (i, x) in a.sessions.iter().enumerate() {
        if used_a[i] || content_key(x).is_some() {
            continue;
        }
        let t = x.start() + off;
        let port = x.session.server.port();
        let want = *port_map.get(&port).unwrap_or(&port);
        let from = free_b.partition_point(|&j| b.sessions[j].start() < t - set.max_skew);
        let best = free_b[from..]
            .iter()
            .copied()
            .take_while(|&j| b.sessions[j].start() - t <= set.max_skew)
            .filter(|&j| !used_b[j])
            .take(CANDIDATES)
            .filter(|&j| {
                let y = &b.sessions[j];
                content_key(y).is_none() && y.session.server.port() == want && y.session.banner == x.session.banner
            })
            .min_by_key(|&j| (b.sessions[j].start() - t).abs());
        if let Some(j) = best {
            used_a[i] = true;
            used_b[j] = true;
            pairs.push((i, j, PairedBy::Weak));
        }
    }
}
