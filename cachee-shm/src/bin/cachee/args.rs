//! Small argument helpers: sizes, durations, flags.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

/// A command-line failure: an exit code and a one-line message.
#[derive(Debug)]
pub struct Fail {
    pub code: u8,
    pub msg: String,
}

pub const NOT_FOUND: u8 = 1;
pub const USAGE: u8 = 2;
pub const UNUSABLE: u8 = 3;

pub fn usage(msg: impl Into<String>) -> Fail {
    Fail {
        code: USAGE,
        msg: msg.into(),
    }
}

impl From<cachee_shm::ShmError> for Fail {
    fn from(e: cachee_shm::ShmError) -> Self {
        use cachee_core::Error as E;
        use cachee_shm::ShmError as S;
        let code = match &e {
            S::InvalidName(_) | S::InvalidOptions(_) => USAGE,
            S::Cache(
                E::EmptyKey
                | E::KeyTooLong { .. }
                | E::ValueTooLarge { .. }
                | E::InvalidTtl
                | E::NotANumber
                | E::BufferTooSmall { .. }
                | E::InvalidConfig(_),
            ) => USAGE,
            _ => UNUSABLE,
        };
        Fail {
            code,
            msg: e.to_string(),
        }
    }
}

/// Remaining arguments, consumed left to right.
pub struct Args {
    items: Vec<OsString>,
}

impl Args {
    pub fn new(items: Vec<OsString>) -> Self {
        Args { items }
    }

    /// Removes `--name VALUE` (or `--name=VALUE`) and returns the value.
    pub fn option(&mut self, name: &str) -> Result<Option<String>, Fail> {
        let long = format!("--{name}");
        let prefixed = format!("--{name}=");
        for i in 0..self.items.len() {
            let Some(arg) = self.items[i].to_str() else {
                continue;
            };
            if arg == long {
                if i + 1 >= self.items.len() {
                    return Err(usage(format!("{long} needs a value")));
                }
                let v = self.items.remove(i + 1);
                self.items.remove(i);
                return v
                    .into_string()
                    .map(Some)
                    .map_err(|_| usage(format!("{long}: value is not UTF-8")));
            }
            if let Some(v) = arg.strip_prefix(&prefixed) {
                let v = v.to_string();
                self.items.remove(i);
                return Ok(Some(v));
            }
        }
        Ok(None)
    }

    /// Removes `--name` and returns whether it was there.
    pub fn flag(&mut self, name: &str) -> bool {
        let long = format!("--{name}");
        match self
            .items
            .iter()
            .position(|a| a.to_str() == Some(long.as_str()))
        {
            Some(i) => {
                self.items.remove(i);
                true
            }
            None => false,
        }
    }

    /// The next positional argument, as raw bytes (keys and values may be any bytes).
    pub fn positional(&mut self) -> Option<Vec<u8>> {
        let i = self.items.iter().position(|a| {
            let b = a.as_bytes();
            !(b.starts_with(b"--") && b.len() > 2)
        })?;
        Some(self.items.remove(i).as_bytes().to_vec())
    }

    /// The next positional argument as text.
    pub fn positional_str(&mut self, what: &str) -> Result<String, Fail> {
        let b = self
            .positional()
            .ok_or_else(|| usage(format!("missing {what}")))?;
        String::from_utf8(b).map_err(|_| usage(format!("{what} is not UTF-8")))
    }

    /// Fails if anything is left over.
    pub fn done(self) -> Result<(), Fail> {
        match self.items.first() {
            None => Ok(()),
            Some(a) => Err(usage(format!(
                "unexpected argument {}",
                a.to_string_lossy()
            ))),
        }
    }
}

/// Parses a size: a number of bytes with an optional suffix. `K`/`M`/`G`/`T` and
/// `KiB`/`MiB`/`GiB`/`TiB` are powers of 1024; `KB`/`MB`/`GB`/`TB` powers of 1000.
pub fn parse_size(text: &str) -> Result<u64, Fail> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, suffix) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| usage(format!("invalid size {text:?}")))?;
    let mult: u64 = match suffix.trim() {
        "" | "B" => 1,
        "K" | "KiB" | "k" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        "G" | "GiB" => 1 << 30,
        "T" | "TiB" => 1 << 40,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        "TB" => 1_000_000_000_000,
        s => return Err(usage(format!("invalid size suffix {s:?} in {text:?}"))),
    };
    n.checked_mul(mult)
        .ok_or_else(|| usage(format!("size {text:?} is too large")))
}

/// Parses a duration: a number with `ms`, `s`, `m`, `h` or `d` (plain numbers are
/// seconds); decimals allowed (`1.5s`).
pub fn parse_duration(text: &str) -> Result<Duration, Fail> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| usage(format!("invalid duration {text:?}")))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        u => return Err(usage(format!("invalid duration unit {u:?} in {text:?}"))),
    };
    if !secs.is_finite() || !(0.0..=1e12).contains(&secs) {
        return Err(usage(format!("duration {text:?} out of range")));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Parses a number, naming the option in the error.
pub fn parse_num<T: std::str::FromStr>(name: &str, text: &str) -> Result<T, Fail> {
    text.trim()
        .parse()
        .map_err(|_| usage(format!("--{name}: invalid number {text:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("64M").unwrap(), 64 << 20);
        assert_eq!(parse_size("2GB").unwrap(), 2_000_000_000);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("12XB").is_err());
        assert!(parse_size("99999999999999T").is_err());
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1.5m").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("2").unwrap(), Duration::from_secs(2));
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("3 weeks").is_err());
    }
}
