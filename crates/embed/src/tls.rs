//! The process's TLS crypto provider. reqwest is built with rustls but without its default
//! provider (aws-lc, a slow C build); ring is installed instead. Every process that makes HTTP
//! clients calls [`install_tls_provider`] first: reqwest refuses to build a client otherwise.

/// Installs ring as the process's rustls provider; later calls do nothing.
pub fn install_tls_provider() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        // Err means another provider is installed already, which serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
