//! Throwaway certificates for the TLS tests (Redis, Milvus).

use super::*;

/// A throwaway CA with a server certificate for one IP address and a client certificate,
/// made with the openssl CLI.
pub struct Pki {
    pub dir: std::path::PathBuf,
}

impl Pki {
    /// The CA `ca_name`, and certificates whose subjectAltName is `IP:127.0.0.1`.
    pub fn new(dir: &Path, ca_name: &str) -> Pki {
        Pki::for_ip(dir, ca_name, "127.0.0.1")
    }

    pub fn for_ip(dir: &Path, ca_name: &str, ip: &str) -> Pki {
        std::fs::create_dir_all(dir).unwrap();
        let sh = |script: &str| {
            let o = Command::new("sh")
                .args(["-ec", script])
                .current_dir(dir)
                .output()
                .expect("sh + openssl");
            assert!(o.status.success(), "{}", stderr(&o));
        };
        std::fs::write(
            dir.join("leaf.ext"),
            format!(
                "subjectAltName=IP:{ip}\nbasicConstraints=CA:FALSE\n\
                 keyUsage=digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n"
            ),
        )
        .unwrap();
        let ec = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
        sh(&format!(
            "openssl req -x509 {ec} -keyout ca.key -out ca.crt -days 2 -subj /CN={ca_name} \
               -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign
             for n in server client; do
               openssl req {ec} -keyout $n.key -out $n.csr -subj /CN=$n
               openssl x509 -req -in $n.csr -CA ca.crt -CAkey ca.key -CAcreateserial \
                 -out $n.crt -days 2 -extfile leaf.ext
             done
             chmod 644 *.key"
        ));
        Pki {
            dir: dir.to_path_buf(),
        }
    }

    pub fn file(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}
