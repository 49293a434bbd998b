#![recursion_limit = "256"]
//! smtpscope: watch SMTP on the wire and tell, session by session, whether mail travelled in
//! plaintext or inside TLS — with the evidence.
//!
//! Data flows one way: [`capture`] → [`decode`] → [`flow`] → [`smtp`] / [`tls`] → [`session`]
//! records → [`report`] front ends. [`engine`] wires the stages together; [`driver`] runs the
//! input loop (files or live) for every front end. No stage imports a front end (`report`, `check`,
//! `filter`, `tui`): what they share sits below them ([`escape`], [`timefmt`], [`community_id`],
//! [`ports`], [`summary`]); `scripts/check_layering.sh` keeps it so.

pub mod capture;
pub mod check;
pub mod community_id;
pub mod conversation;
pub mod decode;
pub mod decompress;
pub mod diff;
pub mod driver;
pub mod engine;
pub mod escape;
pub mod filter;
pub mod flow;
#[doc(hidden)]
pub mod fuzzing;
pub mod logs;
pub mod metrics;
pub mod output;
pub mod ports;
pub mod privilege;
pub mod records;
pub mod report;
pub mod session;
pub mod smtp;
pub mod strftime;
pub mod suggest;
pub mod summary;
pub mod timefmt;
pub mod tls;
pub mod tui;
