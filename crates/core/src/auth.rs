//! API keys: their format, their hash and what each role may do. Keys are random secrets shown
//! once; only their SHA-256 is stored, so a key is looked up by its hash. (A slow password hash
//! is for low-entropy secrets; a 190-bit random key needs none.)

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Every secret key starts with this, so leaked keys are easy to spot in logs and scanners.
pub const KEY_PREFIX: &str = "fl_sk_";
/// Characters of a key after the prefix.
const KEY_BODY_LEN: usize = 32;
const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// What a key may do within its project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyRole {
    /// Everything: ingest, read, taxonomy and keys.
    Admin,
    /// Write traces and feedback only.
    Ingest,
    /// Read only.
    Read,
}

/// What an API call needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    Ingest,
    Read,
    Admin,
}

impl KeyRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Ingest => "ingest",
            Self::Read => "read",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Admin, Self::Ingest, Self::Read]
            .into_iter()
            .find(|r| r.as_str() == s)
    }

    pub fn allows(self, permission: Permission) -> bool {
        match (self, permission) {
            (Self::Admin, _) => true,
            (Self::Ingest, Permission::Ingest) => true,
            (Self::Read, Permission::Read) => true,
            (Self::Ingest, Permission::Read | Permission::Admin) => false,
            (Self::Read, Permission::Ingest | Permission::Admin) => false,
        }
    }
}

/// Makes a key from random bytes (the caller supplies the randomness: this crate does no IO).
/// Each byte picks one of 62 characters, so 32 bytes give ~190 bits.
pub fn key_from_random(random: [u8; KEY_BODY_LEN]) -> String {
    let mut key = String::with_capacity(KEY_PREFIX.len() + KEY_BODY_LEN);
    key.push_str(KEY_PREFIX);
    // 256 % 62 != 0, so a plain modulo is slightly biased (by < 1 %); it costs ~0.1 bit each.
    key.extend(
        random
            .iter()
            .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char),
    );
    key
}

/// The stored form of a key.
pub fn hash_key(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// The part of a key that may be shown in lists: its prefix and first four characters.
pub fn display_prefix(key: &str) -> String {
    key.chars().take(KEY_PREFIX.len() + 4).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_prefix_and_length() {
        let key = key_from_random([7; 32]);
        assert!(key.starts_with(KEY_PREFIX));
        assert_eq!(key.len(), KEY_PREFIX.len() + 32);
        assert_eq!(display_prefix(&key).len(), KEY_PREFIX.len() + 4);
        assert_ne!(hash_key(&key), hash_key("fl_sk_other"));
    }

    #[test]
    fn roles_allow_what_they_say() {
        assert!(KeyRole::Admin.allows(Permission::Admin));
        assert!(KeyRole::Ingest.allows(Permission::Ingest));
        assert!(!KeyRole::Ingest.allows(Permission::Read));
        assert!(!KeyRole::Read.allows(Permission::Ingest));
    }
}
