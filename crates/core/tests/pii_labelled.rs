//! The PII detectors against a labelled set (`tests/data/pii_labelled.txt`): positives of every
//! kind and tricky negatives (order numbers, ISBNs, versions, dates, times, prices, tracking
//! codes, UUIDs, git SHAs, numbers shaped like phones). Prints precision and recall per kind
//! (the table in BENCHMARKS.md) and holds them to the targets.

#![allow(clippy::unwrap_used)] // test code

use feedloop_core::pii::{PiiKind, find};
use std::collections::BTreeMap;
use std::ops::Range;

/// One labelled string: the text and the findings it must yield.
struct Case {
    line: usize,
    text: String,
    expected: Vec<(PiiKind, Range<usize>)>,
}

fn kind_of(name: &str) -> PiiKind {
    match name {
        "email" => PiiKind::Email,
        "phone" => PiiKind::Phone,
        "card" => PiiKind::CardNumber,
        "ip" => PiiKind::IpAddress,
        "secret" => PiiKind::Secret,
        other => panic!("unknown kind {other:?}"),
    }
}

/// Parses a line with `⟦kind:text⟧` marks into the plain text and the marked byte ranges.
fn parse(line: usize, marked: &str) -> Case {
    let marked = marked.replace("\\n", "\n");
    let (mut text, mut expected) = (String::new(), Vec::new());
    let mut rest = marked.as_str();
    while let Some(open) = rest.find('⟦') {
        text.push_str(&rest[..open]);
        let after = &rest[open + '⟦'.len_utf8()..];
        let close = after
            .find('⟧')
            .unwrap_or_else(|| panic!("line {line}: unclosed mark"));
        let (kind, value) = after[..close].split_once(':').unwrap();
        expected.push((kind_of(kind), text.len()..text.len() + value.len()));
        text.push_str(value);
        rest = &after[close + '⟧'.len_utf8()..];
    }
    text.push_str(rest);
    Case {
        line,
        text,
        expected,
    }
}

fn cases() -> Vec<Case> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/pii_labelled.txt");
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.is_empty() && !line.starts_with('#'))
        .map(|(index, line)| parse(index + 1, line))
        .collect()
}

#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    true_positives: u32,
    false_positives: u32,
    false_negatives: u32,
}

impl Tally {
    fn precision(&self) -> f64 {
        ratio(
            self.true_positives,
            self.true_positives + self.false_positives,
        )
    }

    fn recall(&self) -> f64 {
        ratio(
            self.true_positives,
            self.true_positives + self.false_negatives,
        )
    }

    fn add(&mut self, other: Tally) {
        self.true_positives += other.true_positives;
        self.false_positives += other.false_positives;
        self.false_negatives += other.false_negatives;
    }
}

fn ratio(part: u32, whole: u32) -> f64 {
    if whole == 0 {
        1.0
    } else {
        f64::from(part) / f64::from(whole)
    }
}

/// A finding matches an expected one of the same kind that it overlaps; each expected finding
/// is matched at most once.
fn tally(cases: &[Case]) -> (BTreeMap<PiiKind, Tally>, Vec<String>) {
    let mut by_kind: BTreeMap<PiiKind, Tally> = BTreeMap::new();
    let mut mistakes = Vec::new();
    for case in cases {
        let found = find(&case.text);
        let mut matched = vec![false; case.expected.len()];
        for finding in &found {
            let hit = case
                .expected
                .iter()
                .enumerate()
                .position(|(i, (kind, range))| {
                    !matched[i]
                        && *kind == finding.kind
                        && range.start < finding.range.end
                        && finding.range.start < range.end
                });
            let entry = by_kind.entry(finding.kind).or_default();
            match hit {
                Some(i) => {
                    matched[i] = true;
                    entry.true_positives += 1;
                }
                None => {
                    entry.false_positives += 1;
                    mistakes.push(format!(
                        "line {}: found {:?} {:?} in {:?}",
                        case.line,
                        finding.kind,
                        &case.text[finding.range.clone()],
                        case.text
                    ));
                }
            }
        }
        for (i, (kind, range)) in case.expected.iter().enumerate() {
            if !matched[i] {
                by_kind.entry(*kind).or_default().false_negatives += 1;
                mistakes.push(format!(
                    "line {}: missed {kind:?} {:?} in {:?}",
                    case.line,
                    &case.text[range.clone()],
                    case.text
                ));
            }
        }
    }
    (by_kind, mistakes)
}

#[test]
fn detectors_meet_precision_and_recall_targets_on_the_labelled_set() {
    let cases = cases();
    let num_negatives = cases.iter().filter(|c| c.expected.is_empty()).count();
    assert!(cases.len() >= 200, "{} cases", cases.len());
    assert!(num_negatives >= 60, "{num_negatives} negatives");
    let (by_kind, mistakes) = tally(&cases);
    let mut overall = Tally::default();
    println!(
        "{} strings ({} without personal data)\n",
        cases.len(),
        num_negatives
    );
    println!("| kind | expected | found | precision | recall |");
    println!("|---|---:|---:|---:|---:|");
    for (kind, t) in &by_kind {
        overall.add(*t);
        println!(
            "| {} | {} | {} | {:.3} | {:.3} |",
            kind.label(),
            t.true_positives + t.false_negatives,
            t.true_positives + t.false_positives,
            t.precision(),
            t.recall()
        );
    }
    println!(
        "| all | {} | {} | {:.3} | {:.3} |",
        overall.true_positives + overall.false_negatives,
        overall.true_positives + overall.false_positives,
        overall.precision(),
        overall.recall()
    );
    for mistake in &mistakes {
        println!("{mistake}");
    }
    for kind in [PiiKind::Email, PiiKind::CardNumber, PiiKind::Secret] {
        let recall = by_kind[&kind].recall();
        assert!(recall >= 0.98, "{kind:?} recall {recall:.3}: {mistakes:#?}");
    }
    for kind in [PiiKind::Phone, PiiKind::IpAddress] {
        let recall = by_kind[&kind].recall();
        assert!(recall >= 0.9, "{kind:?} recall {recall:.3}: {mistakes:#?}");
    }
    for (kind, t) in &by_kind {
        let precision = t.precision();
        assert!(
            precision >= 0.95,
            "{kind:?} precision {precision:.3}: {mistakes:#?}"
        );
    }
    assert!(overall.precision() >= 0.95 && overall.recall() >= 0.98);
}

#[test]
fn marks_parse_into_plain_text_and_byte_ranges() {
    let case = parse(1, "a ⟦email:é@example.com⟧ b\\nc");
    assert_eq!(case.text, "a é@example.com b\nc");
    assert_eq!(case.expected, vec![(PiiKind::Email, 2..16)]);
}
