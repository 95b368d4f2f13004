//! OTLP attribute lists as JSON values, keyed by name, with a record of which keys the mapping
//! read, so that whatever no convention claims is kept as metadata rather than dropped.

use base64::Engine;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use serde_json::{Map, Number, Value};
use std::cell::Cell;
use std::collections::BTreeMap;

/// The attributes of one span (or event, or resource), as JSON values.
///
/// A span has a few dozen attributes and the mapping asks for each by name, several times: a
/// list sorted by key answers by binary search, and a flag per entry records what was read,
/// without allocating a key per look-up.
#[derive(Debug, Default)]
pub struct Attributes {
    /// Sorted by key, one entry per key: the last value sent, as a map would keep it.
    entries: Vec<(String, Value)>,
    /// Whether a convention read the entry at the same place: known, so not metadata.
    read: Vec<Cell<bool>>,
}

impl Attributes {
    pub fn new(list: Vec<KeyValue>) -> Self {
        let mut sent: Vec<(String, Value)> = list
            .into_iter()
            .map(|kv| (kv.key, kv.value.map_or(Value::Null, any_value_to_json)))
            .collect();
        // Stable: of the entries of one key, the last sent stays last.
        sent.sort_by(|(a, _), (b, _)| a.cmp(b));
        let mut entries: Vec<(String, Value)> = Vec::with_capacity(sent.len());
        for entry in sent {
            match entries.last_mut() {
                Some(last) if last.0 == entry.0 => *last = entry,
                _ => entries.push(entry),
            }
        }
        let read = entries.iter().map(|_| Cell::new(false)).collect();
        Self { entries, read }
    }

    /// Where `key` is, if it was sent.
    fn position(&self, key: &str) -> Option<usize> {
        self.entries
            .binary_search_by(|(name, _)| name.as_str().cmp(key))
            .ok()
    }

    /// Where the keys starting with `prefix` begin (they follow one another).
    fn start_of(&self, prefix: &str) -> usize {
        self.entries
            .partition_point(|(name, _)| name.as_str() < prefix)
    }

    /// The value of `key`, marked as read.
    pub fn get(&self, key: &str) -> Option<&Value> {
        let index = self.position(key)?;
        self.read[index].set(true);
        Some(&self.entries[index].1)
    }

    /// The value of `key` as text: a string as it is, a number or boolean written out.
    pub fn text(&self, key: &str) -> Option<String> {
        match self.get(key)? {
            Value::String(text) => Some(text.clone()),
            Value::Null => None,
            Value::Number(number) => Some(number.to_string()),
            Value::Bool(flag) => Some(flag.to_string()),
            other => Some(other.to_string()),
        }
        .filter(|text| !text.is_empty())
    }

    /// The first of `keys` that has text (current names first, deprecated ones after). Every
    /// one of them is marked as read: they are names of one thing.
    pub fn first_text(&self, keys: &[&str]) -> Option<String> {
        keys.iter().fold(None, |found, key| {
            let text = self.text(key);
            found.or(text)
        })
    }

    /// The value of `key` as a non-negative integer (an int, an integral double, or digits).
    pub fn count(&self, key: &str) -> Option<u64> {
        match self.get(key)? {
            Value::Number(number) => number.as_u64().or_else(|| {
                number
                    .as_f64()
                    .filter(|f| *f >= 0.0 && f.fract() == 0.0)
                    .map(|f| f as u64)
            }),
            Value::String(text) => text.trim().parse().ok(),
            _ => None,
        }
    }

    /// Like [`Self::first_text`], for counts.
    pub fn first_count(&self, keys: &[&str]) -> Option<u64> {
        keys.iter().fold(None, |found, key| {
            let count = self.count(key);
            found.or(count)
        })
    }

    /// The value of `key` as a finite number.
    pub fn number(&self, key: &str) -> Option<f64> {
        match self.get(key)? {
            Value::Number(number) => number.as_f64(),
            Value::String(text) => text.trim().parse().ok(),
            _ => None,
        }
        .filter(|f: &f64| f.is_finite())
    }

    /// The value of `key` as JSON: a string holding JSON is parsed, anything else is as it is.
    pub fn json(&self, key: &str) -> Option<Value> {
        match self.get(key)? {
            Value::String(text) => {
                Some(serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.clone())))
            }
            Value::Null => None,
            other => Some(other.clone()),
        }
    }

    /// Like [`Self::json`], without marking the key as read: for a value that stays metadata
    /// although one of its fields is read.
    pub fn peek_json(&self, key: &str) -> Option<Value> {
        match &self.entries[self.position(key)?].1 {
            Value::String(text) => serde_json::from_str(text).ok(),
            Value::Null => None,
            other => Some(other.clone()),
        }
    }

    /// The indexed family under `prefix` (`llm.input_messages.`): for each index, in order, the
    /// fields after `N.`, marked as read. `llm.input_messages.0.message.role` gives index 0 the
    /// field `message.role`.
    pub fn indexed(&self, prefix: &str) -> Vec<Map<String, Value>> {
        let mut items: BTreeMap<u64, Map<String, Value>> = BTreeMap::new();
        let start = self.start_of(prefix);
        for ((key, value), read) in self.entries[start..].iter().zip(&self.read[start..]) {
            let Some(rest) = key.strip_prefix(prefix) else {
                break;
            };
            let Some((index, field)) = rest.split_once('.') else {
                continue;
            };
            let Ok(index) = index.parse::<u64>() else {
                continue;
            };
            read.set(true);
            items
                .entry(index)
                .or_default()
                .insert(field.to_owned(), value.clone());
        }
        items.into_values().collect()
    }

    /// Whether any key starts with `prefix`.
    pub fn has_prefix(&self, prefix: &str) -> bool {
        self.entries
            .get(self.start_of(prefix))
            .is_some_and(|(key, _)| key.starts_with(prefix))
    }

    /// Every attribute but those named in `left_out` or starting with one of `left_out_prefixes`,
    /// for a span's own attribute map.
    pub fn all_except(&self, left_out: &[&str], left_out_prefixes: &[&str]) -> Map<String, Value> {
        self.entries
            .iter()
            .filter(|(key, _)| !is_left_out(key, left_out, left_out_prefixes))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect()
    }

    /// The attributes no convention read.
    pub fn unread(&self) -> Map<String, Value> {
        self.entries
            .iter()
            .zip(&self.read)
            .filter(|(_, read)| !read.get())
            .map(|((key, value), _)| (key.clone(), value.clone()))
            .collect()
    }

    /// [`Self::all_except`] and [`Self::unread`] at once, taking the values: only an unread
    /// attribute that the span also keeps is copied.
    pub fn into_kept_and_unread(
        self,
        left_out: &[&str],
        left_out_prefixes: &[&str],
    ) -> (Map<String, Value>, Map<String, Value>) {
        let mut kept = Vec::with_capacity(self.entries.len());
        let mut unread = Vec::new();
        for ((key, value), read) in self.entries.into_iter().zip(self.read) {
            match (is_left_out(&key, left_out, left_out_prefixes), read.get()) {
                (false, false) => {
                    unread.push((key.clone(), value.clone()));
                    kept.push((key, value));
                }
                (false, true) => kept.push((key, value)),
                (true, false) => unread.push((key, value)),
                (true, true) => {}
            }
        }
        // Both are in key order, which a map builds from in one pass.
        (kept.into_iter().collect(), unread.into_iter().collect())
    }
}

fn is_left_out(key: &str, left_out: &[&str], left_out_prefixes: &[&str]) -> bool {
    left_out.contains(&key)
        || left_out_prefixes
            .iter()
            .any(|prefix| key.starts_with(prefix))
}

/// An OTLP value as JSON: arrays and key-value lists nest, bytes become base64, and a double
/// that JSON cannot hold (NaN, infinities) becomes its name as a string.
pub fn any_value_to_json(value: AnyValue) -> Value {
    match value.value {
        None => Value::Null,
        Some(any_value::Value::StringValue(text)) => Value::String(text),
        Some(any_value::Value::BoolValue(flag)) => Value::Bool(flag),
        Some(any_value::Value::IntValue(int)) => Value::from(int),
        Some(any_value::Value::DoubleValue(double)) => Number::from_f64(double)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(double.to_string())),
        Some(any_value::Value::ArrayValue(array)) => {
            Value::Array(array.values.into_iter().map(any_value_to_json).collect())
        }
        Some(any_value::Value::KvlistValue(list)) => Value::Object(
            list.values
                .into_iter()
                .map(|kv| (kv.key, kv.value.map_or(Value::Null, any_value_to_json)))
                .collect(),
        ),
        Some(any_value::Value::BytesValue(bytes)) => {
            Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
        }
        // An index into a string table that only profiles carry: kept as it came.
        Some(any_value::Value::StringValueStrindex(index)) => {
            serde_json::json!({ "string_value_strindex": index })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(key: &str, value: any_value::Value) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
            ..Default::default()
        }
    }

    #[test]
    fn indexed_families_group_by_index_in_numeric_order() {
        let attributes = Attributes::new(vec![
            kv("m.10.role", any_value::Value::StringValue("user".into())),
            kv("m.2.role", any_value::Value::StringValue("system".into())),
            kv(
                "m.2.content",
                any_value::Value::StringValue("be brief".into()),
            ),
            kv("other", any_value::Value::IntValue(3)),
        ]);
        let items = attributes.indexed("m.");
        assert_eq!(items.len(), 2);
        assert_eq!(items[0]["role"], "system");
        assert_eq!(items[0]["content"], "be brief");
        assert_eq!(items[1]["role"], "user");
        assert_eq!(
            Value::Object(attributes.unread()),
            serde_json::json!({"other": 3})
        );
    }

    #[test]
    fn numbers_json_can_not_hold_become_strings() {
        assert_eq!(
            any_value_to_json(AnyValue {
                value: Some(any_value::Value::DoubleValue(f64::NAN))
            }),
            Value::String("NaN".into())
        );
    }
}
