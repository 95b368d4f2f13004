//! Finding and scrubbing personal data and secrets in free text: e-mail addresses, phone
//! numbers, payment card numbers, IPv4 and IPv6 addresses, and secrets (API keys of the common
//! providers, `Bearer` tokens, JWTs, PEM private keys).
//!
//! [`scrub`] is a pure function of the text and a [`PiiMode`]: `Off` returns the text as it is,
//! `Mask` replaces each finding with its kind (`[EMAIL]`), `Hash` with its kind and a digest of
//! the finding (`[EMAIL:1f0c…]`), so equal values stay linkable across records without being
//! readable. The digest is an unsalted SHA-256 prefix: fine for keys and tokens, but a phone
//! number or a card can be found again by trying every value, so `Hash` is pseudonymisation,
//! not anonymisation.
//!
//! Precision comes before recall where the two fight, because scrubbing ordinary numbers ruins
//! training data: a card number needs 13–19 digits, a Luhn check digit and an issuer prefix
//! (an order number rarely has all three); a phone number needs a `+` country code, or a
//! national shape (`(555) 123-4567`, `555-123-4567`, `020 7946 0958`, `06 12 34 56 78`);
//! bare runs of digits, dates and times are left alone. A dotted quad is an IPv4 address unless
//! it is a version (`v1.2.3.4`, `version 1.2.3.4`) or part of a longer dotted number
//! (`1.2.3.4.5`); a bare `1.2.3.4` is scrubbed, since a version number lost costs less than an
//! address leaked.

use regex::{Regex, RegexSet};
use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::ops::Range;
use std::sync::LazyLock;

/// What [`scrub`] does with what it finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PiiMode {
    /// Leave the text unchanged (nothing is counted either).
    Off,
    /// Replace each finding with its kind: `[EMAIL]`.
    #[default]
    Mask,
    /// Replace each finding with its kind and a digest: `[EMAIL:1f0c9a2b7d3e]`.
    Hash,
}

impl PiiMode {
    pub const ALL: [PiiMode; 3] = [Self::Off, Self::Mask, Self::Hash];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Mask => "mask",
            Self::Hash => "hash",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

/// The kinds of personal data and secrets found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PiiKind {
    Email,
    Phone,
    CardNumber,
    IpAddress,
    Secret,
}

impl PiiKind {
    /// The placeholder's name.
    pub fn label(self) -> &'static str {
        match self {
            Self::Email => "EMAIL",
            Self::Phone => "PHONE",
            Self::CardNumber => "CARD_NUMBER",
            Self::IpAddress => "IP_ADDRESS",
            Self::Secret => "SECRET",
        }
    }
}

/// How many findings of each kind were replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PiiCounts {
    pub email: u64,
    pub phone: u64,
    pub card_number: u64,
    pub ip_address: u64,
    pub secret: u64,
}

impl PiiCounts {
    pub fn total(&self) -> u64 {
        self.email + self.phone + self.card_number + self.ip_address + self.secret
    }

    pub fn add(&mut self, other: &PiiCounts) {
        self.email += other.email;
        self.phone += other.phone;
        self.card_number += other.card_number;
        self.ip_address += other.ip_address;
        self.secret += other.secret;
    }

    pub fn count(&mut self, kind: PiiKind) {
        *match kind {
            PiiKind::Email => &mut self.email,
            PiiKind::Phone => &mut self.phone,
            PiiKind::CardNumber => &mut self.card_number,
            PiiKind::IpAddress => &mut self.ip_address,
            PiiKind::Secret => &mut self.secret,
        } += 1;
    }
}

/// One thing found: its kind and its byte range in the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub kind: PiiKind,
    pub range: Range<usize>,
}

/// Replaces the personal data and secrets in `text` according to `mode`; returns the new text
/// and how many findings of each kind it replaced.
pub fn scrub(text: &str, mode: PiiMode) -> (String, PiiCounts) {
    let mut counts = PiiCounts::default();
    if mode == PiiMode::Off {
        return (text.to_owned(), counts);
    }
    let findings = find(text);
    if findings.is_empty() {
        return (text.to_owned(), counts);
    }
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for finding in findings {
        out.push_str(&text[at..finding.range.start]);
        let found = &text[finding.range.clone()];
        out.push_str(&placeholder(finding.kind, found, mode));
        counts.count(finding.kind);
        at = finding.range.end;
    }
    out.push_str(&text[at..]);
    (out, counts)
}

/// What replaces `found`, a finding of `kind`: `[EMAIL]` in `Mask` mode, `[EMAIL:1f0c9a2b7d3e]`
/// in `Hash` mode (and in `Off` mode, where [`scrub`] replaces nothing, the mask).
pub fn placeholder(kind: PiiKind, found: &str, mode: PiiMode) -> String {
    match mode {
        PiiMode::Hash => {
            let digest = sha2::Sha256::digest(found.as_bytes());
            let hex: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
            format!("[{}:{hex}]", kind.label())
        }
        PiiMode::Mask | PiiMode::Off => format!("[{}]", kind.label()),
    }
}

/// Every finding in `text`, in order, none overlapping. Detectors run from the most specific
/// (a PEM block, a JWT, a provider's key) to the least (a phone number), and a later detector
/// never claims text an earlier one claimed: the dots of a JWT are no IP address, the digits of
/// a card no phone number.
pub fn find(text: &str) -> Vec<Finding> {
    let detectors = &*DETECTORS;
    let candidates = detectors.set.matches(text);
    if !candidates.matched_any() {
        return Vec::new();
    }
    let mut claimed: Vec<Finding> = Vec::new();
    for index in candidates.iter() {
        let detector = &detectors.list[index];
        for captures in detector.regex.captures_iter(text) {
            let whole = captures.get(0).expect("a match has group 0");
            let range = captures.get(1).unwrap_or(whole).range();
            let overlaps = claimed
                .iter()
                .any(|c| c.range.start < range.end && range.start < c.range.end);
            if !overlaps && (detector.accept)(text, range.clone()) {
                claimed.push(Finding {
                    kind: detector.kind,
                    range,
                });
            }
        }
    }
    claimed.sort_by_key(|f| f.range.start);
    claimed
}

/// Decides whether a match (its byte range in the text) is a real finding.
type Accept = fn(&str, Range<usize>) -> bool;

/// A pattern, the kind it finds, and a check of each match against its surroundings. When the
/// pattern has a group 1, only that group is replaced (`Bearer <token>` keeps `Bearer`).
struct Detector {
    kind: PiiKind,
    regex: Regex,
    accept: Accept,
}

struct Detectors {
    list: Vec<Detector>,
    set: RegexSet,
}

/// In priority order (see [`find`]).
const PATTERNS: &[(PiiKind, &str, Accept)] = &[
    (
        PiiKind::Secret,
        r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----[\s\S]*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----",
        always,
    ),
    // JWT: base64url header and payload (both JSON objects, so `eyJ`) and a signature.
    (
        PiiKind::Secret,
        r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}",
        always,
    ),
    // OpenAI (sk-…, sk-proj-…) and Anthropic (sk-ant-api03-…) keys.
    (PiiKind::Secret, r"\bsk-[A-Za-z0-9_-]{20,}", always),
    // AWS access key ids, and secret keys where they are named.
    (
        PiiKind::Secret,
        r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b",
        always,
    ),
    (
        PiiKind::Secret,
        r#"(?i)aws_?secret_?access_?key["']?\s*[:=]\s*["']?([A-Za-z0-9/+=]{40})"#,
        always,
    ),
    // GitHub tokens (classic and fine-grained).
    (
        PiiKind::Secret,
        r"\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\b",
        always,
    ),
    // Slack tokens and webhook URLs.
    (PiiKind::Secret, r"\bxox[abposr]-[A-Za-z0-9-]{10,}", always),
    (
        PiiKind::Secret,
        r"https://hooks\.slack\.com/services/[A-Za-z0-9/]{20,}",
        always,
    ),
    // Stripe secret and restricted keys, webhook secrets (publishable pk_ keys are public).
    (
        PiiKind::Secret,
        r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}|\bwhsec_[A-Za-z0-9]{24,}",
        always,
    ),
    // Google API keys.
    (PiiKind::Secret, r"\bAIza[0-9A-Za-z_-]{35}", always),
    // npm, Hugging Face and GitLab tokens.
    (
        PiiKind::Secret,
        r"\b(?:npm_[A-Za-z0-9]{36}|hf_[A-Za-z0-9]{30,}|glpat-[A-Za-z0-9_-]{20})\b",
        always,
    ),
    // Whatever follows `Bearer` in an authorization header or a log line.
    (
        PiiKind::Secret,
        r"(?i)\bbearer\s+([A-Za-z0-9._~+/-]{16,}=*)",
        always,
    ),
    // A value assigned to a name that says it is secret (`password: …`, `"client_secret":
    // "…"`, `API_KEY=…`), whatever its shape; a placeholder (`[SECRET]`) is not taken again.
    (
        PiiKind::Secret,
        r#"(?i)(?:\b|_)(?:password|passwd|pwd|passphrase|client_secret|secret|secret_key|api[_-]?key|apikey|access[_-]?token|auth[_-]?token|private[_-]?key)["']?\s*[:=]\s*["']?([^\s"',;\[][^\s"',;]{5,})"#,
        always,
    ),
    (
        PiiKind::Email,
        r"[\w.%+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}\b",
        always,
    ),
    (
        PiiKind::CardNumber,
        r"\b\d{4}(?:[ -]?\d{2,4}){2,4}\d{0,3}\b",
        is_card,
    ),
    (
        PiiKind::IpAddress,
        r"\b(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\b",
        is_ipv4,
    ),
    (
        PiiKind::IpAddress,
        r"[0-9A-Fa-f:.]*::?[0-9A-Fa-f:.]*",
        is_ipv6,
    ),
    // International: +, a country code, then groups.
    (
        PiiKind::Phone,
        r"\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,4}){1,4}\b",
        is_phone,
    ),
    // North American: (555) 123-4567, 555-123-4567, 555.123.4567.
    (
        PiiKind::Phone,
        r"(?:\(\d{3}\)\s?|\b\d{3}[.-])\d{3}[.-]\d{4}\b",
        is_phone,
    ),
    // National trunk prefix 0 with spaced groups: 020 7946 0958, 06 12 34 56 78, 030-1234567.
    (
        PiiKind::Phone,
        r"\b0\d{1,4}(?:[ -]\d{2,8}){1,4}\b",
        is_national_phone,
    ),
];

static DETECTORS: LazyLock<Detectors> = LazyLock::new(|| {
    let list: Vec<Detector> = PATTERNS
        .iter()
        .map(|(kind, pattern, accept)| Detector {
            kind: *kind,
            regex: Regex::new(pattern).expect("pii patterns compile"),
            accept: *accept,
        })
        .collect();
    let set = RegexSet::new(PATTERNS.iter().map(|(_, pattern, _)| *pattern))
        .expect("pii patterns compile");
    Detectors { list, set }
});

fn always(_: &str, _: Range<usize>) -> bool {
    true
}

fn digits(text: &str) -> Vec<u32> {
    text.chars().filter_map(|c| c.to_digit(10)).collect()
}

/// Whether the characters around `range` continue it as a longer token: a letter, a digit, or
/// one of `joiners` with a digit beyond it.
fn continues(text: &str, range: &Range<usize>, joiners: &[char]) -> bool {
    let before = text[..range.start].chars().next_back();
    let mut after = text[range.end..].chars();
    let (next, next_but_one) = (after.next(), after.next());
    let before_joins = before.is_some_and(|c| c.is_alphanumeric() || c == '_')
        || (before.is_some_and(|c| joiners.contains(&c))
            && text[..range.start]
                .chars()
                .rev()
                .nth(1)
                .is_some_and(|c| c.is_ascii_digit()));
    let after_joins = next.is_some_and(|c| c.is_alphanumeric() || c == '_')
        || (next.is_some_and(|c| joiners.contains(&c))
            && next_but_one.is_some_and(|c| c.is_ascii_digit()));
    before_joins || after_joins
}

/// Words that, just before a number, say it is an identifier of a thing (a product, an order,
/// a device), not a card or a phone: `IMEI 356938035643809`, `part no. 0612-3456-78`.
const IDENTIFIER_LABELS: &[&str] = &[
    "article",
    "batch",
    "case",
    "ean",
    "gtin",
    "imei",
    "invoice",
    "isbn",
    "item",
    "order",
    "part",
    "po",
    "product",
    "ref",
    "reference",
    "serial",
    "sku",
    "sn",
    "ticket",
    "tracking",
    "upc",
];

/// Whether one of the two words before `range` is an identifier label.
fn labelled_as_identifier(text: &str, range: &Range<usize>) -> bool {
    text[..range.start]
        .rsplit(|c: char| !c.is_alphanumeric())
        .filter(|word| !word.is_empty())
        .take(2)
        .any(|word| IDENTIFIER_LABELS.contains(&word.to_lowercase().as_str()))
}

/// 13–19 digits, one kind of separator used consistently, a Luhn check digit and the prefix of
/// a card network (Visa, Mastercard, Amex, Discover, JCB, Diners, UnionPay, Maestro).
fn is_card(text: &str, range: Range<usize>) -> bool {
    let found = &text[range.clone()];
    let digits = digits(found);
    if !(13..=19).contains(&digits.len()) || continues(text, &range, &['.', '-', ':']) {
        return false;
    }
    if found.contains(' ') && found.contains('-') {
        return false;
    }
    luhn(&digits) && card_prefix(&digits) && !labelled_as_identifier(text, &range)
}

/// The Luhn checksum: every second digit from the right doubled, the sum divisible by 10.
pub fn luhn(digits: &[u32]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

fn card_prefix(digits: &[u32]) -> bool {
    let prefix = |n: usize| digits[..n].iter().fold(0, |acc, d| acc * 10 + d);
    let (one, two, four) = (prefix(1), prefix(2), prefix(4));
    one == 4                                      // Visa
        || (51..=55).contains(&two)               // Mastercard
        || (2221..=2720).contains(&four)          // Mastercard 2-series
        || two == 34 || two == 37                 // Amex
        || four == 6011 || two == 65 || (644..=649).contains(&prefix(3)) // Discover
        || (3528..=3589).contains(&four)          // JCB
        || (300..=305).contains(&prefix(3)) || two == 36 || two == 38 // Diners
        || two == 62                              // UnionPay
        || two == 50 || (56..=69).contains(&two) // Maestro
}

/// A dotted quad that is not a version number and not part of a longer dotted number.
fn is_ipv4(text: &str, range: Range<usize>) -> bool {
    // A port (`:8080`) ends an address; another dotted number does not.
    if continues(text, &range, &['.']) {
        return false;
    }
    let previous_word = text[..range.start]
        .trim_end()
        .rsplit(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    !matches!(
        previous_word.as_str(),
        "v" | "version" | "release" | "build"
    )
}

/// A run of hex digits, colons and dots that parses as an IPv6 address, with at least two
/// colons, standing on its own (`std::vector` and `12:30:45` are no addresses).
fn is_ipv6(text: &str, range: Range<usize>) -> bool {
    let found = &text[range.clone()];
    if found.matches(':').count() < 2 || found.len() < 3 {
        return false;
    }
    let before = text[..range.start].chars().next_back();
    let after = text[range.end..].chars().next();
    if before.is_some_and(|c| c.is_alphanumeric() || c == '_')
        || after.is_some_and(|c| c.is_alphanumeric() || c == '_')
    {
        return false;
    }
    // `::` alone parses too; an address has at least one hex digit.
    found.chars().any(|c| c.is_ascii_hexdigit()) && found.parse::<std::net::Ipv6Addr>().is_ok()
}

/// 7–15 digits (E.164 allows 15), not glued to a longer token, and not a date.
fn is_phone(text: &str, range: Range<usize>) -> bool {
    let found = &text[range.clone()];
    let num_digits = digits(found).len();
    (7..=15).contains(&num_digits)
        && !continues(text, &range, &['.', '-', ':'])
        && !looks_like_date(found)
        && !labelled_as_identifier(text, &range)
}

/// A national number (trunk prefix 0): 9–11 digits in at least two groups, so `0 5` or a
/// leading-zero id of one block is not taken.
fn is_national_phone(text: &str, range: Range<usize>) -> bool {
    let found = &text[range.clone()];
    let num_digits = digits(found).len();
    (9..=11).contains(&num_digits) && is_phone(text, range)
}

/// `2024-01-15`, `15-01-2024` and the like: three groups, one of four digits, months and days
/// in range.
fn looks_like_date(found: &str) -> bool {
    let groups: Vec<&str> = found
        .split(|c: char| !c.is_ascii_digit())
        .filter(|g| !g.is_empty())
        .collect();
    if groups.len() != 3 {
        return false;
    }
    let lengths: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    matches!(
        lengths.as_slice(),
        [4, 2, 2] | [2, 2, 4] | [1 | 2, 1 | 2, 4]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(text: &str) -> String {
        scrub(text, PiiMode::Mask).0
    }

    fn kinds(text: &str) -> Vec<PiiKind> {
        find(text).into_iter().map(|f| f.kind).collect()
    }

    #[test]
    fn emails_are_masked() {
        assert_eq!(
            masked("write to jane.doe+billing@example.co.uk today"),
            "write to [EMAIL] today"
        );
        assert_eq!(
            masked("user@localhost is no address"),
            "user@localhost is no address"
        );
        assert_eq!(masked("@mention and a@b"), "@mention and a@b");
    }

    #[test]
    fn phone_numbers_in_international_and_national_formats() {
        for phone in [
            "+1 415 555 2671",
            "+44 20 7946 0958",
            "+33 6 12 34 56 78",
            "+49 (30) 123456",
            "+14155552671",
            "(415) 555-2671",
            "415-555-2671",
            "415.555.2671",
            "020 7946 0958",
            "06 12 34 56 78",
            "030-12345678",
        ] {
            assert_eq!(
                masked(&format!("call {phone} now")),
                "call [PHONE] now",
                "{phone}"
            );
        }
    }

    #[test]
    fn ordinary_numbers_dates_and_ids_are_not_phones() {
        for text in [
            "order 123456789 shipped",
            "on 2024-01-15 at 12:30:45",
            "on 15-01-2024",
            "the year 2024 and 1,000,000 users",
            "ticket #4521-99",
            "pi is 3.14159265",
            "release 2.14.0",
            "ISBN 978-3-16-148410-0",
            "id 550e8400-e29b-41d4-a716-446655440000",
        ] {
            assert_eq!(masked(text), text, "{text}");
        }
    }

    #[test]
    fn card_numbers_need_luhn_and_a_network_prefix() {
        for card in [
            "4111 1111 1111 1111",
            "4111-1111-1111-1111",
            "4111111111111111",
            "5500 0000 0000 0004",
            "3782 822463 10005",
            "6011 0009 9013 9424",
        ] {
            assert_eq!(
                masked(&format!("card {card}, exp 12/27")),
                "card [CARD_NUMBER], exp 12/27",
                "{card}"
            );
        }
        // Fails Luhn; a Luhn-valid number without a network prefix (an order number); mixed
        // separators; too short.
        for text in [
            "card 4111 1111 1111 1112",
            "order 1234 5678 9012 3452",
            "ref 4111 1111-1111 1111",
            "pin 4111 1111 1",
        ] {
            assert!(!kinds(text).contains(&PiiKind::CardNumber), "{text}");
        }
        assert!(luhn(&digits("79927398713")));
        assert!(!luhn(&digits("79927398710")));
    }

    #[test]
    fn ip_addresses_but_not_versions() {
        assert_eq!(masked("from 192.168.0.12."), "from [IP_ADDRESS].");
        assert_eq!(masked("peer 10.0.0.1:8080"), "peer [IP_ADDRESS]:8080");
        assert_eq!(
            masked("host 2001:db8::8a2e:370:7334 up"),
            "host [IP_ADDRESS] up"
        );
        assert_eq!(
            masked("loopback ::1 and fe80::1"),
            "loopback [IP_ADDRESS] and [IP_ADDRESS]"
        );
        // A bare dotted quad is taken for an address (documented in the module).
        assert_eq!(masked("1.2.3.4"), "[IP_ADDRESS]");
        for text in [
            "upgrade to v1.2.3.4",
            "version 1.2.3.4 fixed it",
            "oid 1.2.3.4.5.6",
            "999.1.1.1 is out of range",
            "std::vector<int>",
            "at 12:30:45",
            "ratio 3:2",
        ] {
            assert_eq!(masked(text), text, "{text}");
        }
    }

    #[test]
    fn secrets_of_common_providers() {
        let jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
        let pem = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7\nabc\n-----END RSA PRIVATE KEY-----";
        for secret in [
            "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789",
            "sk-ant-api03-abcdefghijklmnopqrstuvwxyz012345-AAAA",
            "AKIAIOSFODNN7EXAMPLE",
            "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
            "github_pat_11ABCDEFG0123456789_abcdefghijklmnop",
            "xoxb-123456789012-1234567890123-abcdefghijkl",
            "sk_live_abcdefghijklmnop1234",
            "rk_test_abcdefghijklmnop1234",
            jwt,
            pem,
        ] {
            assert_eq!(
                masked(&format!("key: {secret} end")),
                "key: [SECRET] end",
                "{secret}"
            );
        }
        assert_eq!(
            masked("Authorization: Bearer abc123def456ghi789jkl"),
            "Authorization: Bearer [SECRET]"
        );
        assert_eq!(
            masked("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
            "aws_secret_access_key = [SECRET]"
        );
        // Publishable keys, short words and a JWT's dots are left to the secret detector.
        for text in [
            "pk_live_abcdefghijklmnop1234",
            "a bearer of news",
            "sk-short",
        ] {
            assert_eq!(masked(text), text, "{text}");
        }
        assert_eq!(kinds(jwt), vec![PiiKind::Secret]);
    }

    #[test]
    fn counts_and_hash_mode() {
        let text = "mail a@example.com or b@example.com, card 4111111111111111, ip 8.8.8.8";
        let (masked, counts) = scrub(text, PiiMode::Mask);
        assert_eq!(
            masked,
            "mail [EMAIL] or [EMAIL], card [CARD_NUMBER], ip [IP_ADDRESS]"
        );
        assert_eq!(
            counts,
            PiiCounts {
                email: 2,
                card_number: 1,
                ip_address: 1,
                ..PiiCounts::default()
            }
        );
        assert_eq!(counts.total(), 4);
        let (hashed, _) = scrub("a@example.com a@example.com b@example.com", PiiMode::Hash);
        let parts: Vec<&str> = hashed.split(' ').collect();
        assert_eq!(parts[0], parts[1]);
        assert_ne!(parts[0], parts[2]);
        assert!(parts[0].starts_with("[EMAIL:") && parts[0].len() == "[EMAIL:]".len() + 12);
        assert_eq!(
            scrub(text, PiiMode::Off),
            (text.to_owned(), PiiCounts::default())
        );
    }

    #[test]
    fn text_without_findings_is_unchanged_and_unicode_is_safe() {
        let text = "Prix : 12 € par mois — écrivez à zoé@exemple.fr";
        assert_eq!(masked(text), "Prix : 12 € par mois — écrivez à [EMAIL]");
        assert_eq!(masked("nothing here"), "nothing here");
    }
}
