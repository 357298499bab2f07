//! The `spikeconv` command line: parses arguments, runs one job, prints a one-line error
//! and exits non-zero on failure.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    quiet_vulkan_layers();
    match cli::run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", one_line(&error));
            ExitCode::FAILURE
        }
    }
}

/// Mesa's implicit device-select layer prints `XDG_RUNTIME_DIR is invalid` on every Vulkan
/// instance created without a desktop session (servers, containers, CI), also when the run
/// then settles on the CPU backend. spikeconv chooses among all adapters itself, so the
/// layer's reordering is of no use: it is switched off unless the user set the variable.
/// Done first thing, before any thread exists.
fn quiet_vulkan_layers() {
    if std::env::var_os("NODEVICE_SELECT").is_none() {
        std::env::set_var("NODEVICE_SELECT", "1");
    }
}

/// The error and its causes on one line, skipping causes whose text the message already
/// carries (library errors often quote their source).
fn one_line(error: &anyhow::Error) -> String {
    let mut message = error.to_string();
    for cause in error.chain().skip(1) {
        let text = cause.to_string();
        if !message.contains(&text) {
            message = format!("{message}: {text}");
        }
    }
    message.replace('\n', " ")
}
