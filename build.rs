//! Records the git revision for `drctl --version` (falls back to "unknown" outside a checkout),
//! and generates the Milvus gRPC client from the pinned protos in `proto/milvus/` with the
//! protoc that `protoc-bin-vendored` ships (nothing to install).
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rev = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=DRCTL_GIT_REV={rev}");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");

    println!("cargo:rerun-if-changed=proto/milvus");
    if std::env::var_os("PROTOC").is_none() {
        std::env::set_var("PROTOC", protoc_bin_vendored::protoc_bin_path()?);
    }
    tonic_build::configure()
        .build_server(false)
        .compile_protos(&["proto/milvus/milvus.proto"], &["proto/milvus"])?;
    Ok(())
}
