//! SoftHSM2 tokens for tests, demos and benchmarks: a configuration and token directory of the
//! caller's own, tokens initialised with `softhsm2-util`, keys generated (or imported) with
//! OpenSC's `pkcs11-tool`. Both come from Debian's packages `softhsm2` and `opensc`, which
//! `scripts/prereqs.sh` installs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Where Debian (and others) install SoftHSM2's PKCS#11 module.
const MODULE_CANDIDATES: [&str; 4] = [
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib64/pkcs11/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
];

/// A SoftHSM2 installation of the caller's own: `SOFTHSM2_CONF` points at [`SoftHsm::conf`],
/// whose token directory is [`SoftHsm::tokens`]. Deleted on drop.
pub struct SoftHsm {
    dir: tempfile::TempDir,
    /// The configuration file (give it to processes as `SOFTHSM2_CONF`).
    pub conf: PathBuf,
    /// The token directory.
    pub tokens: PathBuf,
    /// The PKCS#11 module.
    pub module: PathBuf,
}

/// The SoftHSM2 module, or a panic saying how to install it.
pub fn softhsm_module() -> PathBuf {
    let found = MODULE_CANDIDATES.iter().map(PathBuf::from).find(|p| p.is_file());
    found.unwrap_or_else(|| {
        panic!(
            "SoftHSM2's PKCS#11 module (libsofthsm2.so) was not found in {MODULE_CANDIDATES:?}: install Debian's softhsm2 and opensc packages (scripts/prereqs.sh does it as root: apt-get install -y softhsm2 opensc)"
        )
    })
}

fn tool(name: &str) -> Command {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(name).is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "{name} is not installed: install Debian's softhsm2 and opensc packages (scripts/prereqs.sh does it as root: apt-get install -y softhsm2 opensc)"
    );
    Command::new(name)
}

fn checked(what: &str, output: std::io::Result<Output>) -> Output {
    let output = output.unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

impl SoftHsm {
    /// An empty SoftHSM2 (no tokens) in a fresh temporary directory.
    pub fn new() -> Self {
        let module = softhsm_module();
        let dir = tempfile::tempdir().expect("temporary directory");
        let tokens = dir.path().join("tokens");
        std::fs::create_dir(&tokens).expect("token directory");
        let conf = dir.path().join("softhsm2.conf");
        let text =
            format!("directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n", tokens.display());
        std::fs::write(&conf, text).expect("softhsm2.conf");
        Self { dir, conf, tokens, module }
    }

    /// The directory everything lives in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `SOFTHSM2_CONF` for a process using this installation.
    pub fn env(&self) -> (&'static str, String) {
        ("SOFTHSM2_CONF", self.conf.display().to_string())
    }

    fn softhsm2_util(&self) -> Command {
        let mut cmd = tool("softhsm2-util");
        cmd.env("SOFTHSM2_CONF", &self.conf);
        cmd
    }

    fn pkcs11_tool(&self, token: &str, pin: &str) -> Command {
        let mut cmd = tool("pkcs11-tool");
        cmd.env("SOFTHSM2_CONF", &self.conf).arg("--module").arg(&self.module).args([
            "--token-label",
            token,
            "--login",
            "--pin",
            pin,
        ]);
        cmd
    }

    /// Initialises a token `label` in the first free slot with these PINs.
    pub fn init_token(&self, label: &str, so_pin: &str, pin: &str) {
        let mut cmd = self.softhsm2_util();
        cmd.args(["--init-token", "--free", "--label", label, "--so-pin", so_pin, "--pin", pin]);
        checked(&format!("softhsm2-util --init-token {label}"), cmd.output());
    }

    /// Generates a key pair on `token` (`key_type` as pkcs11-tool takes it: `EC:prime256v1`,
    /// `EC:secp384r1`, `rsa:3072`...) with this label and hex ID; the private key is sensitive
    /// and not extractable. Returns the public key as SubjectPublicKeyInfo DER.
    pub fn generate_key(&self, token: &str, pin: &str, key_type: &str, label: &str, id: &str) -> Vec<u8> {
        let mut cmd = self.pkcs11_tool(token, pin);
        cmd.args(["--keypairgen", "--key-type", key_type, "--label", label, "--id", id, "--usage-sign"]);
        checked(&format!("pkcs11-tool --keypairgen {label}"), cmd.output());
        self.public_key(token, pin, label)
    }

    /// The public key `label` on `token`, as SubjectPublicKeyInfo DER.
    pub fn public_key(&self, token: &str, pin: &str, label: &str) -> Vec<u8> {
        let out = self.dir.path().join(format!("{label}.pub.der"));
        let mut cmd = self.pkcs11_tool(token, pin);
        cmd.args(["--read-object", "--type", "pubkey", "--label", label, "-o"]).arg(&out);
        checked(&format!("pkcs11-tool --read-object pubkey {label}"), cmd.output());
        let written = std::fs::read(&out).expect("public key file");
        // pkcs11-tool writes RSA and EC keys as DER, EdDSA keys as PEM.
        match std::str::from_utf8(&written).ok().filter(|text| text.starts_with("-----BEGIN PUBLIC KEY-----")) {
            Some(text) => {
                let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
                use base64::Engine as _;
                base64::engine::general_purpose::STANDARD.decode(body).expect("public key PEM")
            }
            None => written,
        }
    }

    /// Imports a private key (PKCS#8 PEM) onto `token` as a sensitive signing key with this label
    /// and hex ID, extractable (it may be wrapped off the token) or not.
    pub fn import_key(&self, token: &str, pin: &str, key_pem: &str, label: &str, id: &str, extractable: bool) {
        let pem_path = self.dir.path().join(format!("{label}.key.pem"));
        let der_path = self.dir.path().join(format!("{label}.key.der"));
        std::fs::write(&pem_path, key_pem).expect("key PEM");
        let mut convert = Command::new("openssl");
        convert.args(["pkey", "-in"]).arg(&pem_path).args(["-outform", "DER", "-out"]).arg(&der_path);
        checked("openssl pkey -outform DER", convert.output());
        let mut cmd = self.pkcs11_tool(token, pin);
        cmd.arg("--write-object").arg(&der_path);
        cmd.args(["--type", "privkey", "--label", label, "--id", id, "--usage-sign", "--sensitive"]);
        if extractable {
            cmd.arg("--extractable");
        }
        checked(&format!("pkcs11-tool --write-object {label}"), cmd.output());
        let _ = std::fs::remove_file(&pem_path);
        let _ = std::fs::remove_file(&der_path);
    }

    /// Deletes the private key `label` from `token`.
    pub fn delete_private_key(&self, token: &str, pin: &str, label: &str) {
        let mut cmd = self.pkcs11_tool(token, pin);
        cmd.args(["--delete-object", "--type", "privkey", "--label", label]);
        checked(&format!("pkcs11-tool --delete-object {label}"), cmd.output());
    }

    /// What pkcs11-tool lists of the objects on `token` (`--list-objects`), for assertions on
    /// a key's attributes ("never extractable", "sensitive").
    pub fn list_objects(&self, token: &str, pin: &str) -> String {
        let mut cmd = self.pkcs11_tool(token, pin);
        cmd.arg("--list-objects");
        String::from_utf8_lossy(&checked("pkcs11-tool --list-objects", cmd.output()).stdout).into_owned()
    }
}

impl Default for SoftHsm {
    fn default() -> Self {
        Self::new()
    }
}
