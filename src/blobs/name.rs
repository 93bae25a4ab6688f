//! Received file names made safe, and save paths that never overwrite.

use std::path::{Path, PathBuf};

/// The longest safe name, in bytes (most file systems allow 255).
pub const MAX_NAME_BYTES: usize = 200;

/// Names Windows reserves for devices, with any extension.
const RESERVED: &[&str] = &[
    "con", "prn", "aux", "nul", "com1", "com2", "com3", "com4", "com5", "com6", "com7", "com8",
    "com9", "lpt1", "lpt2", "lpt3", "lpt4", "lpt5", "lpt6", "lpt7", "lpt8", "lpt9",
];

/// A name a peer offered, reduced to a safe base name: the part after the last `/` or
/// `\`, without control, bidi or Windows-forbidden characters (`<>:"|?*`), leading dots
/// or trailing dots and spaces; a Windows device name gets a `_` prefix; at most
/// [`MAX_NAME_BYTES`]; `file` if nothing is left.
pub fn safe_name(raw: &str) -> String {
    let base = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let kept: String = base
        .chars()
        .filter(|c| !crate::text::is_unsafe(*c) && !c.is_control())
        .map(|c| if "<>:\"|?*".contains(c) { '_' } else { c })
        .collect();
    let trimmed = kept
        .trim_start_matches(['.', ' '])
        .trim_end_matches(['.', ' ']);
    let mut name = String::new();
    for c in trimmed.chars() {
        if name.len() + c.len_utf8() > MAX_NAME_BYTES {
            break;
        }
        name.push(c);
    }
    if name.is_empty() {
        return "file".into();
    }
    let stem = name.split('.').next().unwrap_or_default().trim_end();
    if RESERVED.contains(&stem.to_ascii_lowercase().as_str()) {
        name.insert(0, '_');
    }
    name
}

/// `dir/name`, or `dir/name (1).ext`, `(2)`, ... : the first that does not exist.
pub fn unique_path(dir: &Path, name: &str) -> PathBuf {
    let first = dir.join(name);
    if !first.exists() {
        return first;
    }
    let (stem, ext) = match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i..]),
        _ => (name, ""),
    };
    (1u32..)
        .map(|n| dir.join(format!("{stem} ({n}){ext}")))
        .find(|p| !p.exists())
        .unwrap_or(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_are_made_safe() {
        for (raw, want) in [
            ("report.pdf", "report.pdf"),
            ("../../etc/passwd", "passwd"),
            ("..\\..\\windows\\system.ini", "system.ini"),
            ("..", "file"),
            ("", "file"),
            ("/", "file"),
            (".bashrc", "bashrc"),
            ("evil\u{202e}fdp.exe", "evilfdp.exe"),
            ("a\nb\x1b[31m.txt", "ab[31m.txt"),
            ("CON", "_CON"),
            ("nul.txt", "_nul.txt"),
            ("lpt1.tar.gz", "_lpt1.tar.gz"),
            ("what?.txt", "what_.txt"),
            ("trailing. . ", "trailing"),
            ("C:drive.txt", "C_drive.txt"),
        ] {
            assert_eq!(safe_name(raw), want, "{raw:?}");
        }
        let long = "é".repeat(300);
        assert!(safe_name(&long).len() <= MAX_NAME_BYTES);
    }

    #[test]
    fn an_existing_file_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(unique_path(dir.path(), "a.txt"), dir.path().join("a.txt"));
        std::fs::write(dir.path().join("a.txt"), b"1").unwrap();
        assert_eq!(
            unique_path(dir.path(), "a.txt"),
            dir.path().join("a (1).txt")
        );
        std::fs::write(dir.path().join("a (1).txt"), b"1").unwrap();
        assert_eq!(
            unique_path(dir.path(), "a.txt"),
            dir.path().join("a (2).txt")
        );
        std::fs::write(dir.path().join("noext"), b"1").unwrap();
        assert_eq!(
            unique_path(dir.path(), "noext"),
            dir.path().join("noext (1)")
        );
    }
}
