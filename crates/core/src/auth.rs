//! API keys and people: key formats, their hash, and what each key role and each person's role
//! in a project may do. Keys are random secrets shown once; only their SHA-256 is stored, so a
//! key is looked up by its hash. (A slow password hash is for low-entropy secrets such as
//! passwords; a 190-bit random key needs none.)

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Every secret key starts with this, so leaked keys are easy to spot in logs and scanners.
pub const KEY_PREFIX: &str = "fl_sk_";
/// Public keys (for browsers: feedback and signals only, from allowed origins) start with this.
pub const PUBLIC_KEY_PREFIX: &str = "fl_pk_";
/// Session tokens (the web UI's cookie) start with this.
pub const SESSION_PREFIX: &str = "fl_ss_";
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
    /// A public key, shipped in web pages: feedback and signals only, and only from the key's
    /// allowed origins.
    Public,
}

/// What an API call needs. Each route asks for exactly one; the table of who holds which is
/// [`KeyRole::allows`] and [`UserRole::allows`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Write traces (and anything an app writes: context injections, feedback tokens).
    Ingest,
    /// Write feedback and signals: what apps, public keys and feedback tokens do.
    Feedback,
    /// Read data and settings.
    Read,
    /// Act on review queues, write lessons and datasets, export datasets.
    Review,
    /// Keys, people, settings (taxonomy, loop, signals, queues, webhooks), deletions.
    Admin,
}

/// A person's role in one project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserRole {
    /// Everything, people and keys included.
    Admin,
    /// Reads, works review queues, writes lessons and datasets, gives feedback.
    Reviewer,
    /// Reads only.
    Viewer,
}

impl UserRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Reviewer => "reviewer",
            Self::Viewer => "viewer",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Admin, Self::Reviewer, Self::Viewer]
            .into_iter()
            .find(|r| r.as_str() == s)
    }

    pub fn allows(self, permission: Permission) -> bool {
        match (self, permission) {
            (Self::Admin, _) => true,
            (Self::Reviewer, Permission::Read | Permission::Review | Permission::Feedback) => true,
            (Self::Reviewer, Permission::Ingest | Permission::Admin) => false,
            (Self::Viewer, Permission::Read) => true,
            (
                Self::Viewer,
                Permission::Ingest | Permission::Feedback | Permission::Review | Permission::Admin,
            ) => false,
        }
    }
}

impl KeyRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Ingest => "ingest",
            Self::Read => "read",
            Self::Public => "public",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Admin, Self::Ingest, Self::Read, Self::Public]
            .into_iter()
            .find(|r| r.as_str() == s)
    }

    /// Public keys are the only kind a browser may hold; the others are secret.
    pub fn is_public(self) -> bool {
        self == Self::Public
    }

    /// The prefix of this role's secrets.
    pub fn prefix(self) -> &'static str {
        if self.is_public() {
            PUBLIC_KEY_PREFIX
        } else {
            KEY_PREFIX
        }
    }

    pub fn allows(self, permission: Permission) -> bool {
        match (self, permission) {
            (Self::Admin, _) => true,
            (Self::Ingest, Permission::Ingest | Permission::Feedback) => true,
            (Self::Read, Permission::Read) => true,
            (Self::Public, Permission::Feedback) => true,
            (Self::Ingest, Permission::Read | Permission::Review | Permission::Admin) => false,
            (
                Self::Read,
                Permission::Ingest | Permission::Feedback | Permission::Review | Permission::Admin,
            ) => false,
            (
                Self::Public,
                Permission::Ingest | Permission::Read | Permission::Review | Permission::Admin,
            ) => false,
        }
    }
}

/// Makes a key from random bytes (the caller supplies the randomness: this crate does no IO).
/// Each byte picks one of 62 characters, so 32 bytes give ~190 bits.
pub fn key_from_random(random: [u8; KEY_BODY_LEN]) -> String {
    secret_from_random(KEY_PREFIX, random)
}

/// A random secret with `prefix` (a key, a public key, a session token): ~190 bits after it.
pub fn secret_from_random(prefix: &str, random: [u8; KEY_BODY_LEN]) -> String {
    let mut key = String::with_capacity(prefix.len() + KEY_BODY_LEN);
    key.push_str(prefix);
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

/// An allowed origin of a public key: `scheme://host[:port]`, as browsers send it in `Origin`
/// (no path, no trailing slash), lowercase.
pub fn check_origin(origin: &str) -> Result<(), &'static str> {
    let rest = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .ok_or("must start with https:// or http://")?;
    if rest.is_empty() || rest.contains(['/', '?', '#', ' ', '*']) {
        return Err("must be scheme://host[:port] with no path or wildcard");
    }
    if origin.chars().any(|c| c.is_ascii_uppercase()) {
        return Err("must be lowercase, as browsers send it");
    }
    Ok(())
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
        assert!(KeyRole::Ingest.allows(Permission::Feedback));
        assert!(!KeyRole::Ingest.allows(Permission::Review));
        assert!(KeyRole::Public.allows(Permission::Feedback));
        assert!(!KeyRole::Public.allows(Permission::Ingest));
        assert!(!KeyRole::Public.allows(Permission::Read));
    }

    #[test]
    fn user_roles_nest_viewer_reviewer_admin() {
        let all = [
            Permission::Ingest,
            Permission::Feedback,
            Permission::Read,
            Permission::Review,
            Permission::Admin,
        ];
        for permission in all {
            // Whatever a viewer may, a reviewer may; whatever a reviewer may, an admin may.
            if UserRole::Viewer.allows(permission) {
                assert!(UserRole::Reviewer.allows(permission));
            }
            if UserRole::Reviewer.allows(permission) {
                assert!(UserRole::Admin.allows(permission));
            }
        }
        assert!(!UserRole::Reviewer.allows(Permission::Admin));
        assert!(!UserRole::Viewer.allows(Permission::Review));
        assert_eq!(UserRole::parse("reviewer"), Some(UserRole::Reviewer));
    }

    #[test]
    fn origins_are_scheme_host_port() {
        assert!(check_origin("https://app.example.com").is_ok());
        assert!(check_origin("http://localhost:3000").is_ok());
        assert!(check_origin("https://app.example.com/").is_err());
        assert!(check_origin("app.example.com").is_err());
        assert!(check_origin("https://*.example.com").is_err());
        assert!(check_origin("https://App.example.com").is_err());
    }
}
