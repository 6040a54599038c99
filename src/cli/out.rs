//! Writing to stdout and stderr without panicking: `println!` panics when its reader has
//! gone (`gns3-central status --json | head -1` closes the pipe after one line). A command
//! in a pipeline whose reader went away has nothing left to say, so a closed pipe (or any
//! other write error) is ignored and the command exits with the code it would have had.
//! The macros `out!`, `outln!` and `errln!` (declared in `cli/mod.rs`) come here.

use std::io::Write;

/// Writes `args` to stdout and flushes; errors (a closed pipe) are ignored.
pub fn stdout(args: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_fmt(args).and_then(|()| out.flush());
}

/// Writes `args` to stderr; errors are ignored.
pub fn stderr(args: std::fmt::Arguments<'_>) {
    let _ = std::io::stderr().lock().write_fmt(args);
}

/// As `stdout`, saying whether the write went through (a tail stops when its reader goes).
pub fn stdout_ok(args: std::fmt::Arguments<'_>) -> bool {
    let mut out = std::io::stdout().lock();
    out.write_fmt(args).and_then(|()| out.flush()).is_ok()
}
