//! Command-line flags as the example servers take them: `--name value` or
//! `--name=value`, and bare switches.

use std::fmt::Display;
use std::str::FromStr;

/// Reads flags one at a time; the caller matches on each name and asks for
/// its value when the flag takes one.
pub struct Flags<I> {
    args: I,
    /// The `=value` part of the current flag, if it had one.
    inline: Option<String>,
}

impl<I: Iterator<Item = String>> Flags<I> {
    pub fn new(args: I) -> Flags<I> {
        Flags { args, inline: None }
    }

    /// The next flag's name.
    pub fn next_flag(&mut self) -> Option<String> {
        let arg = self.args.next()?;
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
