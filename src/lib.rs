#![recursion_limit = "256"]
//! smtpscope: watch SMTP on the wire and tell, session by session, whether mail travelled in
//! plaintext or inside TLS — with the evidence.
//!
//! Data flows one way: [`capture`] → [`decode`] → [`flow`] → [`smtp`] / [`tls`] → [`session`]
//! records → [`report`] front ends. [`engine`] wires the stages together; [`driver`] runs the
//! input loop (files or live) for every front end.

pub mod capture;
pub mod check;
pub mod conversation;
pub mod decode;
pub mod driver;
pub mod engine;
pub mod filter;
pub mod flow;
#[doc(hidden)]
pub mod fuzzing;
pub mod privilege;
pub mod report;
pub mod session;
pub mod smtp;
pub mod tls;
pub mod tui;
