//! Pseudonymous user ids: HMAC-SHA256 of the external id under a secret, so the store never
//! holds the shop's own customer ids, the same customer always maps to the same pseudonym,
//! and nobody without the secret can link one to the other (a plain hash of an e-mail or a
//! customer number is reversed by hashing every candidate).

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::{Error, Result};

/// The shortest secret accepted, in bytes.
pub const MIN_SECRET_BYTES: usize = 16;

/// Maps external ids to pseudonyms under one secret.
#[derive(Clone)]
pub struct Pseudonymizer {
    key: Hmac<Sha256>,
}

impl std::fmt::Debug for Pseudonymizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pseudonymizer(<secret>)")
    }
}

impl Pseudonymizer {
    /// A pseudonymizer keyed by `secret` (at least [`MIN_SECRET_BYTES`] bytes).
    pub fn new(secret: &[u8]) -> Result<Pseudonymizer> {
        if secret.len() < MIN_SECRET_BYTES {
            return Err(Error::Setting(format!(
                "the pseudonym secret must be at least {MIN_SECRET_BYTES} bytes (it has {})",
                secret.len()
            )));
        }
        let key = Hmac::<Sha256>::new_from_slice(secret)
            .map_err(|e| Error::Setting(format!("the pseudonym secret: {e}")))?;
        Ok(Pseudonymizer { key })
    }

    /// The pseudonym of `external`: `p_` and 128 bits of the HMAC in hex.
    pub fn pseudonym(&self, external: &str) -> String {
        let mut mac = self.key.clone();
        mac.update(external.as_bytes());
        let tag = mac.finalize().into_bytes();
        format!("p_{}", crate::audit::hex(&tag[..16]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudonyms_are_stable_keyed_and_distinct() {
        let a = Pseudonymizer::new(b"0123456789abcdef").expect("key");
        let b = Pseudonymizer::new(b"fedcba9876543210").expect("key");
        assert_eq!(a.pseudonym("alice"), a.pseudonym("alice"));
        assert_ne!(a.pseudonym("alice"), a.pseudonym("bob"));
        assert_ne!(a.pseudonym("alice"), b.pseudonym("alice"));
        assert_eq!(a.pseudonym("alice").len(), 34);
        assert!(!a.pseudonym("alice").contains("alice"));
        assert!(Pseudonymizer::new(b"short").is_err());
    }
}
