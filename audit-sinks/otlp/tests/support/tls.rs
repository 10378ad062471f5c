//! TLS for the test receiver, made at test time: a private CA (not among the public
//! roots), a server certificate for `127.0.0.1` / `localhost` signed by it, and a client
//! certificate signed by it that the receiver requires (mutual TLS). The receiver serves
//! them with rustls (HTTP) and tonic's server TLS (gRPC).

use super::receiver::{Conn, ServerTls};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A private CA with a server and a client certificate, as PEM.
pub struct TestPki {
    pub ca_pem: String,
    pub server_cert_pem: String,
    pub server_key_pem: String,
    pub client_cert_pem: String,
    pub client_key_pem: String,
}

/// Where [`TestPki::write`] put the files a sink is given.
pub struct PkiFiles {
    pub ca: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl TestPki {
    pub fn generate() -> TestPki {
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "heliosdb test CA");
        let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
        let issuer = Issuer::new(ca_params, ca_key);
        let leaf = |names: Vec<String>, usage: ExtendedKeyUsagePurpose| {
            let key = KeyPair::generate().expect("key");
            let mut params = CertificateParams::new(names).expect("params");
            params.extended_key_usages = vec![usage];
            let cert = params.signed_by(&key, &issuer).expect("certificate");
            (cert.pem(), key.serialize_pem())
        };
        let (server_cert_pem, server_key_pem) = leaf(
            vec!["127.0.0.1".to_owned(), "localhost".to_owned()],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let (client_cert_pem, client_key_pem) = leaf(
            vec!["heliosdb-sink".to_owned()],
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        TestPki {
            ca_pem: ca_cert.pem(),
            server_cert_pem,
            server_key_pem,
            client_cert_pem,
            client_key_pem,
        }
    }

    /// Writes the CA and the client certificate and key into `dir`.
    pub fn write(&self, dir: &Path) -> PkiFiles {
        let files = PkiFiles {
            ca: dir.join("ca.pem"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client.key"),
        };
        std::fs::write(&files.ca, &self.ca_pem).expect("write CA");
        std::fs::write(&files.client_cert, &self.client_cert_pem).expect("write cert");
        std::fs::write(&files.client_key, &self.client_key_pem).expect("write key");
        files
    }

    /// The receiver's TLS: its server certificate, and clients must present a certificate
    /// signed by the CA.
    pub fn server_tls(&self) -> ServerTls {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_slice(self.ca_pem.as_bytes()).expect("CA der"))
            .expect("CA root");
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            Arc::clone(&provider),
        )
        .build()
        .expect("client verifier");
        let chain = vec![
            CertificateDer::from_pem_slice(self.server_cert_pem.as_bytes()).expect("cert der"),
        ];
        let key = PrivateKeyDer::from_pem_slice(self.server_key_pem.as_bytes()).expect("key der");
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .expect("server config");
        let config = Arc::new(config);
        let http = Arc::new(move |tcp: std::net::TcpStream| {
            let connection = rustls::ServerConnection::new(Arc::clone(&config))
                .map_err(std::io::Error::other)?;
            Ok(Box::new(rustls::StreamOwned::new(connection, tcp)) as Box<dyn Conn>)
        });
        let grpc = tonic::transport::ServerTlsConfig::new()
            .identity(tonic::transport::Identity::from_pem(
                &self.server_cert_pem,
                &self.server_key_pem,
            ))
            .client_ca_root(tonic::transport::Certificate::from_pem(&self.ca_pem));
        ServerTls { http, grpc }
    }
}
