//! Fractional index keys: strings whose byte order is the list order, with room for a new
//! key between any two.
//!
//! A key is read as the digits after the point of a base-62 fraction in `(0, 1)`, the digits
//! being `0-9A-Za-z` (in ASCII order, so byte order is numeric order). A key never ends in
//! `0`: `"V"` and `"V0"` would be the same number but different strings, and a key of only
//! zeros would leave no room below it.
//!
//! Between two keys this takes the midpoint (the scheme of David Greenspan's
//! "fractional-indexing"), which grows a key by about one digit per six inserts into the same
//! gap. At the ends it steps by one digit instead, because appending at the end is the common
//! case and stepping grows a key by one digit per 61 appends rather than per six.

/// The digits, in numeric order, which is also their ASCII order.
const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
/// The middle digit (`V`), used where any digit would do, leaving room on both sides.
const MID: u8 = 31;
/// The highest digit (`z`).
const TOP: u8 = 61;

/// The longest key accepted, in bytes: it bounds what one remote op can make us store.
pub const MAX_KEY_LEN: usize = 1024;

fn digit(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'A'..=b'Z' => Some(byte - b'A' + 10),
        b'a'..=b'z' => Some(byte - b'a' + 36),
        _ => None,
    }
}

fn push_digit(out: &mut Vec<u8>, d: u8) {
    out.push(DIGITS[usize::from(d.min(TOP))]);
}

/// Whether `key` is a well-formed key: 1 to [`MAX_KEY_LEN`] digits of `0-9A-Za-z`, not ending
/// in `0`.
pub fn is_valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= MAX_KEY_LEN
        && key.bytes().all(|b| digit(b).is_some())
        && !key.ends_with('0')
}

/// A key strictly between `a` and `b`; `None` stands for the start or the end of the list.
///
/// With valid keys and `a < b` the result is valid and `a < result < b`. The function never
/// panics: an invalid key counts as `None`, and a `b` that is not above `a` is ignored (the
/// result is then just above `a`). The result is at most one digit longer than the longer of
/// `a` and `b`, so it may exceed [`MAX_KEY_LEN`]; callers validate before sending.
pub fn key_between(a: Option<&str>, b: Option<&str>) -> String {
    let a = a.filter(|k| is_valid_key(k));
    let b = b
        .filter(|k| is_valid_key(k))
        .filter(|b| a.is_none_or(|a| a < *b));
    let mut out = Vec::new();
    match (a, b) {
        (None, None) => push_digit(&mut out, MID),
        (Some(a), None) => after(a.as_bytes(), 1, &mut out),
        (None, Some(b)) => before(b.as_bytes(), &mut out),
        (Some(a), Some(b)) => midpoint(a.as_bytes(), b.as_bytes(), &mut out),
    }
    out.into_iter().map(char::from).collect()
}

/// Appends to `out` a key above `a` (read as a fraction; empty is zero). If `a` is all `z`s
/// the key is `a` plus the digit `fresh`: at the end of the list the lowest digit leaves the
/// most room for further appends, inside a gap the middle one leaves room on both sides.
fn after(a: &[u8], fresh: u8, out: &mut Vec<u8>) {
    for &byte in a {
        let d = digit(byte).unwrap_or(0);
        if d < TOP {
            push_digit(out, d + 1);
            return;
        }
        out.push(DIGITS[usize::from(TOP)]);
    }
    push_digit(out, fresh);
}

/// Appends to `out` a key below `b`, which must be valid.
fn before(b: &[u8], out: &mut Vec<u8>) {
    for &byte in b {
        match digit(byte).unwrap_or(0) {
            0 => out.push(b'0'),
            // `0z` < `1...`; `0` alone would be a trailing zero. `z` leaves the most room
            // for further prepends.
            1 => {
                out.push(b'0');
                push_digit(out, TOP);
                return;
            }
            d => {
                push_digit(out, d - 1);
                return;
            }
        }
    }
    // Only reachable for a key of zeros, which is invalid and filtered out earlier.
    push_digit(out, MID);
}

/// Appends to `out` a key strictly between `a` and `b`, given `a < b`, both without trailing
/// zeros (`a` may be empty, meaning zero).
fn midpoint(a: &[u8], b: &[u8], out: &mut Vec<u8>) {
    // Strip the common prefix, reading `a` as padded with zeros. `b` cannot end inside the
    // prefix: that would make `b` equal to `a` plus zeros, so `b <= a` or a trailing zero.
    let at = |s: &[u8], i: usize| s.get(i).copied().unwrap_or(b'0');
    let mut n = 0;
    while n < b.len() && at(a, n) == b[n] {
        n += 1;
    }
    out.extend_from_slice(&b[..n]);
    let a = a.get(n..).unwrap_or(&[]);
    let b = &b[n..];

    let da = a.first().and_then(|&c| digit(c)).unwrap_or(0);
    let Some(db) = b.first().and_then(|&c| digit(c)) else {
        after(a, MID, out);
        return;
    };
    if db > da + 1 {
        push_digit(out, da + (db - da) / 2);
    } else if b.len() > 1 {
        // First digits are consecutive; `b`'s first digit alone is above `a` and below `b`.
        push_digit(out, db);
    } else {
        // `b` is the single digit after `a`'s first: keep `a`'s first digit and go above
        // the rest of `a`.
        push_digit(out, da);
        after(a.get(1..).unwrap_or(&[]), MID, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key_strategy() -> impl Strategy<Value = String> {
        // Short keys over a few digits make common prefixes and neighbours likely.
        proptest::string::string_regex("[0-2yz]{0,5}[1-2yz]").expect("the pattern is a valid regex")
    }

    fn check_between(a: Option<&str>, b: Option<&str>) -> Result<String, TestCaseError> {
        let k = key_between(a, b);
        prop_assert!(
            is_valid_key(&k),
            "invalid key {k:?} between {a:?} and {b:?}"
        );
        if let Some(a) = a {
            prop_assert!(a < k.as_str(), "{k:?} not above {a:?}");
        }
        if let Some(b) = b {
            prop_assert!(k.as_str() < b, "{k:?} not below {b:?}");
        }
        Ok(k)
    }

    proptest! {
        #[test]
        fn key_between_is_strictly_between(x in key_strategy(), y in key_strategy()) {
            prop_assume!(x != y);
            let (a, b) = if x < y { (x, y) } else { (y, x) };
            check_between(Some(&a), Some(&b))?;
            check_between(None, Some(&a))?;
            check_between(Some(&b), None)?;
        }

        #[test]
        fn repeated_inserts_keep_a_sorted_list_of_distinct_keys(
            slots in proptest::collection::vec(any::<prop::sample::Index>(), 1..200)
        ) {
            let mut keys: Vec<String> = Vec::new();
            for slot in slots {
                let i = slot.index(keys.len() + 1);
                let lo = i.checked_sub(1).map(|j| keys[j].as_str());
                let hi = keys.get(i).map(String::as_str);
                let k = check_between(lo, hi)?;
                keys.insert(i, k);
            }
            prop_assert!(keys.windows(2).all(|w| w[0] < w[1]));
        }

        #[test]
        fn invalid_or_unordered_bounds_still_give_a_valid_key(a in ".{0,6}", b in ".{0,6}") {
            let k = key_between(Some(&a), Some(&b));
            prop_assert!(is_valid_key(&k));
            if is_valid_key(&a) {
                prop_assert!(a < k);
            }
        }
    }

    #[test]
    fn no_bounds_gives_the_middle_digit() {
        assert_eq!(key_between(None, None), "V");
    }

    #[test]
    fn appends_and_prepends_grow_keys_slowly() {
        let mut last = key_between(None, None);
        for _ in 0..1000 {
            let next = key_between(Some(&last), None);
            assert!(next > last);
            last = next;
        }
        // One digit per 61 appends: 1000 appends stay under 20 digits.
        assert!(last.len() <= 20, "{} digits", last.len());

        let mut first = key_between(None, None);
        for _ in 0..1000 {
            let next = key_between(None, Some(&first));
            assert!(next < first && is_valid_key(&next));
            first = next;
        }
        assert!(first.len() <= 20, "{} digits", first.len());
    }

    #[test]
    fn midpoint_examples() {
        assert_eq!(key_between(Some("1"), Some("3")), "2");
        assert_eq!(key_between(Some("1"), Some("2")), "1V");
        assert_eq!(key_between(Some("49"), Some("5")), "4A");
        assert_eq!(key_between(Some("1"), Some("2V")), "2");
        assert_eq!(key_between(Some("1z"), Some("2")), "1zV");
        assert_eq!(key_between(None, Some("1")), "0z");
        assert_eq!(key_between(None, Some("01")), "00z");
        assert_eq!(key_between(Some("z"), None), "z1");
        assert_eq!(key_between(Some("zz"), None), "zz1");
    }

    #[test]
    fn validity_rules() {
        assert!(is_valid_key("V"));
        assert!(is_valid_key("0V"));
        assert!(!is_valid_key(""));
        assert!(!is_valid_key("V0"));
        assert!(!is_valid_key("0"));
        assert!(!is_valid_key("a-b"));
        assert!(!is_valid_key("é"));
        assert!(!is_valid_key(&"V".repeat(MAX_KEY_LEN + 1)));
        assert!(is_valid_key(&"V".repeat(MAX_KEY_LEN)));
    }
}
