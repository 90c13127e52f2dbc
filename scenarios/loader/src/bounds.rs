//! The allowed range of a setting. Each range is a constant next to its setting's raw field
//! (`stack::range::SLEEP_INTERVAL` beside `RawStolon::sleep_interval`), and every value the
//! file gives is checked against it, so that no file that validates can make a run's work
//! unbounded (`write_interval = "1ns"`) or overflow a counter (`write_rps = 9.2e18`). The
//! bounds are wide: what a real deployment could set, well past what the shipped scenarios use.

use std::time::Duration;

use crate::diag::Diagnostic;
use crate::raw::{Bandwidth, Dur, S, Size};

type Res<T> = Result<T, Diagnostic>;

/// `min..=max` for the setting called `name` in the file.
#[derive(Clone, Copy, Debug)]
pub struct Bounds<T> {
    pub name: &'static str,
    pub min: T,
    pub max: T,
}

pub type DurBounds = Bounds<Duration>;

impl<T> Bounds<T> {
    pub const fn new(name: &'static str, min: T, max: T) -> Bounds<T> {
        Bounds { name, min, max }
    }
}

/// Shorthands for the range tables.
pub const fn ns(n: u64) -> Duration {
    Duration::from_nanos(n)
}
pub const fn us(n: u64) -> Duration {
    Duration::from_micros(n)
}
pub const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}
pub const fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}
pub const fn hours(n: u64) -> Duration {
    Duration::from_secs(n * 3600)
}
pub const fn days(n: u64) -> Duration {
    Duration::from_secs(n * 86_400)
}

/// A duration as a file would write it: the largest unit that divides it ("1h", "100ms").
pub fn show_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    let units: [(&str, u128); 7] = [
        ("d", 86_400_000_000_000),
        ("h", 3_600_000_000_000),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
        ("us", 1_000),
        ("ns", 1),
    ];
    let (unit, per) =
        units.iter().find(|(_, per)| ns.is_multiple_of(*per) && ns > 0).copied().unwrap_or(("s", 1_000_000_000));
    format!("{}{unit}", ns / per)
}

/// A kind of value a range can bound: how the file spells it (`Raw`) and how a message shows it.
pub trait Value: Copy + PartialOrd {
    type Raw;
    fn from_raw(raw: &Self::Raw) -> Self;
    fn show(self) -> String;
}

impl Value for Duration {
    type Raw = Dur;
    fn from_raw(raw: &Dur) -> Duration {
        raw.0
    }
    fn show(self) -> String {
        show_duration(self)
    }
}

macro_rules! plain_value {
    ($($t:ty),*) => {$(
        impl Value for $t {
            type Raw = $t;
            fn from_raw(raw: &$t) -> $t {
                *raw
            }
            fn show(self) -> String {
                self.to_string()
            }
        }
    )*};
}
plain_value!(u32, u64, f64);

impl<T: Value> Bounds<T> {
    /// The value, if within `min..=max` (NaN is in no range).
    pub fn check(&self, path: &str, text: &str, v: &S<T::Raw>) -> Res<T> {
        let x = T::from_raw(v.get_ref());
        if !(x >= self.min && x <= self.max) {
            let message =
                format!("{} must be between {} and {}, got {}", self.name, self.min.show(), self.max.show(), x.show());
            return Err(Diagnostic::at(path, text, v.span(), message));
        }
        Ok(x)
    }

    /// The value if given (checked), else `default`.
    pub fn or(&self, path: &str, text: &str, v: &Option<S<T::Raw>>, default: T) -> Res<T> {
        debug_assert!(self.min <= default && default <= self.max, "{}'s default is in its range", self.name);
        v.as_ref().map_or(Ok(default), |v| self.check(path, text, v))
    }

    /// The value if given (checked).
    pub fn opt(&self, path: &str, text: &str, v: &Option<S<T::Raw>>) -> Res<Option<T>> {
        v.as_ref().map(|v| self.check(path, text, v)).transpose()
    }
}

/// Sizes and bandwidths: byte counts, shown in bytes.
pub fn size_or(b: &Bounds<u64>, path: &str, text: &str, v: &Option<S<Size>>, default: u64) -> Res<u64> {
    let Some(v) = v else { return Ok(default) };
    b.check(path, text, &S::new(v.span(), v.get_ref().0))
}

pub fn bandwidth_opt(b: &Bounds<u64>, path: &str, text: &str, v: &Option<S<Bandwidth>>) -> Res<Option<u64>> {
    v.as_ref().map(|v| b.check(path, text, &S::new(v.span(), v.get_ref().0))).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_show_in_their_largest_exact_unit() {
        assert_eq!(show_duration(ms(100)), "100ms");
        assert_eq!(show_duration(hours(1)), "1h");
        assert_eq!(show_duration(days(7)), "7d");
        assert_eq!(show_duration(ns(1)), "1ns");
        assert_eq!(show_duration(ms(1500)), "1500ms");
        assert_eq!(show_duration(Duration::ZERO), "0s");
    }

    #[test]
    fn a_value_outside_its_range_names_the_range_and_the_place() {
        let text = "write_interval = \"1ns\"\n";
        let b = DurBounds::new("write_interval", ms(1), hours(1));
        let v = S::new(17..22, Dur(ns(1)));
        let d = b.check("x.toml", text, &v).unwrap_err();
        assert_eq!((d.line, d.column), (1, 18));
        assert_eq!(d.message, "write_interval must be between 1ms and 1h, got 1ns");
        let n = Bounds::new("write_rps", 0.0, 1e7);
        let e = n.check("x.toml", "write_rps = 9e18\n", &S::new(12..16, 9e18)).unwrap_err();
        assert!(e.message.starts_with("write_rps must be between 0 and 10000000"), "{}", e.message);
        assert!(n.check("x.toml", "nan", &S::new(0..3, f64::NAN)).is_err(), "NaN is in no range");
    }
}
