//! The memory budget work is planned against: what the machine has available
//! (`MemAvailable`), or less where the user set a limit (`--memory-limit`). Sizing rules
//! (chunks of images, walk sizes) stay within it and refuse work that cannot, with a message
//! saying what to lower, instead of letting an allocation abort the process.

use std::sync::atomic::{AtomicU64, Ordering};

/// The user's limit in bytes; 0: none.
static LIMIT: AtomicU64 = AtomicU64::new(0);

/// Sets (or, with `None`, clears) the user's memory limit for this process.
pub fn set_limit(bytes: Option<u64>) {
    LIMIT.store(bytes.unwrap_or(0), Ordering::Relaxed);
}

/// Bytes of memory available to new allocations (Linux's `MemAvailable`), if readable.
pub fn available() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|line| line.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The budget: the user's limit if set (never more than the available memory), else half
/// of the available memory (the other half is headroom for what the estimates leave out:
/// weights, datasets, the allocator, other processes); `None` when neither is known.
pub fn budget() -> Option<u64> {
    let limit = Some(LIMIT.load(Ordering::Relaxed)).filter(|&l| l > 0);
    match (available(), limit) {
        (Some(a), Some(l)) => Some(a.min(l)),
        (Some(a), None) => Some(a / 2),
        (None, l) => l,
    }
}

/// `bytes` in GiB or MiB, one decimal, for messages.
pub fn gib(bytes: u64) -> String {
    if bytes >= 1 << 30 {
        format!("{:.1} GiB", bytes as f64 / f64::from(1 << 30))
    } else {
        format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
    }
}

/// Parses a size such as `4G`, `512M`, `1.5GiB` or `1000000` (bytes).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number.parse().map_err(|_| format!("{text:?} is not a size such as 4G or 512M"))?;
    let scale: f64 = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1.0,
        "K" | "KB" | "KIB" => 1024.0,
        "M" | "MB" | "MIB" => 1024.0 * 1024.0,
        "G" | "GB" | "GIB" => 1024.0 * 1024.0 * 1024.0,
        "T" | "TB" | "TIB" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return Err(format!("{text:?}: unknown unit (use K, M, G or T)")),
    };
    let bytes = value * scale;
    if !(1.0..1e19).contains(&bytes) {
        return Err(format!("{text:?} is not a positive size"));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("4G"), Ok(4 << 30));
        assert_eq!(parse_size("512M"), Ok(512 << 20));
        assert_eq!(parse_size("1.5GiB"), Ok(3 << 29));
        assert_eq!(parse_size("1000"), Ok(1000));
        for bad in ["", "G", "-1G", "4X", "0"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}
