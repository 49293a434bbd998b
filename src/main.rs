//! smtpscope command line: tcpdump/tshark conventions (`-r`, `-i`, `-w`, trailing BPF), plus the
//! `check` and `pairs` subcommands. This file only parses and dispatches: each subcommand's options
//! and runner live in [`cli`], the work in the library.

mod cli;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Cmd};

/// mimalloc (v2): a session is dozens of small, short-lived allocations (evidence, replies,
/// buffers, the record), and with the reader thread batches cross threads; on the 2 GB lab
/// capture it cut the two-thread wall time by ~11 % for ~7 MB more peak RSS (BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

extern "C" {
    // mimalloc's C API (always in the library the `mimalloc` crate links).
    fn mi_option_set(option: libc::c_int, value: libc::c_long);
    #[cfg(test)]
    fn mi_option_get(option: libc::c_int) -> libc::c_long;
}

/// `mi_option_purge_delay` in mimalloc 2.x's `mi_option_e`.
const MI_OPTION_PURGE_DELAY: libc::c_int = 15;

/// Freed memory goes back to the system at once rather than after mimalloc's 10 ms delay: under
/// a flood of flows evicted in batches, the delayed pages were a quarter of the peak RSS with two
/// threads (1 M SYN-only flows: 129 → 94 MB), for ~150 more `madvise` calls per 2 GB otherwise.
fn tune_allocator() {
    // SAFETY: sets a plain integer option; mimalloc reads it when it next purges.
    unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
}

fn main() -> ExitCode {
    tune_allocator();
    if let Some(e) = cli::misplaced_subcommand(&std::env::args_os().collect::<Vec<_>>()) {
        return cli::exit_code(Err(anyhow::anyhow!(e)));
    }
    let cli = Cli::parse();
    cli.reject_misuse();
    let result = match &cli.cmd {
        None => cli::report::run(&cli.input, &cli.out, &cli.logs),
        Some(Cmd::Check(a)) => cli::check::run(a),
        Some(Cmd::Pairs(a)) => cli::pairs::run(a),
        Some(Cmd::Diff(a)) => cli::diff::run(a),
        Some(Cmd::Logs(a)) => cli::logs::run(a),
        Some(Cmd::Generate(a)) => cli::generate::run(a),
    };
    cli::exit_code(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_purge_delay_option_is_the_one_tuned() {
        // mimalloc 2.x documents 10 ms as purge_delay's default: the index names that option.
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert_eq!(unsafe { mi_option_get(MI_OPTION_PURGE_DELAY) }, 10);
        }
        tune_allocator();
        assert_eq!(unsafe { mi_option_get(MI_OPTION_PURGE_DELAY) }, 0);
    }
}
