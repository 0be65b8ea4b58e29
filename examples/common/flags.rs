//! Command-line flags as the examples take them: `--name value` or
//! `--name=value`, and bare switches; `-h`/`--help` prints the usage on
//! stdout and exits 0 in every example.

#![allow(dead_code)] // each includer uses a part

use std::fmt::Display;
use std::str::FromStr;

/// Whether `arg` asks for the usage.
fn is_help(arg: &str) -> bool {
    arg == "-h" || arg == "--help"
}

/// Prints `usage` on stdout and exits 0 (asked for, so not an error).
pub fn print_usage_and_exit(usage: &str) -> ! {
    println!("{usage}");
    std::process::exit(0)
}

/// Prints `program: msg` and `usage` on stderr and exits 2 (bad input).
pub fn usage_error(program: &str, msg: &str, usage: &str) -> ! {
    eprintln!("{program}: {msg}\n{usage}");
    std::process::exit(2)
}

/// For an example that parses its own arguments (paths, a URL list): exits
/// with the usage if any argument is `-h` or `--help`.
pub fn exit_if_help(usage: &str) {
    if std::env::args().skip(1).any(|a| is_help(&a)) {
        print_usage_and_exit(usage);
    }
}

/// For an example that takes no arguments: the usage on `--help`, a clear
/// error on anything else.
pub fn no_arguments(program: &str, usage: &str) {
    exit_if_help(usage);
    if let Some(arg) = std::env::args().nth(1) {
        usage_error(program, &format!("unexpected argument {arg}"), usage);
    }
}

/// Reads flags one at a time; the caller matches on each name and asks for
/// its value when the flag takes one.
pub struct Flags<I> {
    args: I,
    /// The `=value` part of the current flag, if it had one.
    inline: Option<String>,
    /// Printed for `-h`/`--help`.
    usage: String,
}

impl<I: Iterator<Item = String>> Flags<I> {
    pub fn new(args: I, usage: impl Into<String>) -> Flags<I> {
        Flags {
            args,
            inline: None,
            usage: usage.into(),
        }
    }

    /// The next flag's name; `-h`/`--help` prints the usage and exits.
    pub fn next_flag(&mut self) -> Option<String> {
        let arg = self.args.next()?;
        if is_help(&arg) {
            print_usage_and_exit(&self.usage);
        }
        match arg.split_once('=') {
            Some((name, value)) => {
                self.inline = Some(value.to_string());
                Some(name.to_string())
            }
            None => {
                self.inline = None;
                Some(arg)
            }
        }
    }

    /// The value of flag `name`: its `=value`, else the next argument.
    pub fn value(&mut self, name: &str) -> Result<String, String> {
        self.inline
            .take()
            .or_else(|| self.args.next())
            .ok_or_else(|| format!("{name} needs a value"))
    }

    /// The value of flag `name`, parsed; the error names flag and value.
    pub fn parse<T: FromStr>(&mut self, name: &str) -> Result<T, String>
    where
        T::Err: Display,
    {
        let v = self.value(name)?;
        v.parse().map_err(|e| format!("{name} {v}: {e}"))
    }

    /// A positive count (`--cores`, `--buf`).
    pub fn positive(&mut self, name: &str) -> Result<usize, String> {
        match self.parse(name)? {
            0 => Err(format!("{name} must be at least 1")),
            n => Ok(n),
        }
    }

    /// A duration in seconds, fractions allowed.
    pub fn seconds(&mut self, name: &str) -> Result<std::time::Duration, String> {
        let secs: f64 = self.parse(name)?;
        std::time::Duration::try_from_secs_f64(secs).map_err(|e| format!("{name} {secs}: {e}"))
    }
}
