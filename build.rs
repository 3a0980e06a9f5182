//! Compiles the project's .proto files (proto/) for the Hubble and Falco gRPC sources.
//! protoc: `$PROTOC` when set (CI sets Debian's protobuf-compiler), else the one shipped in
//! the protoc-bin-vendored crate, so a fresh clone builds without installing anything.
//! With the `ebpf` feature, also compiles the eBPF source's BPF programs with clang
//! (`$CLANG`, else `clang`; headers from Debian's libbpf-dev).

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = match std::env::var_os("PROTOC") {
        Some(p) => PathBuf::from(p),
        None => protoc_bin_vendored::protoc_bin_path()?,
    };
    // The well-known types (Timestamp, BoolValue) come with the vendored crate either way.
    let well_known = protoc_bin_vendored::include_path()?;
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc);
    tonic_prost_build::configure()
        // Servers for the tests' Hubble Relay and Falco stand-ins.
        .build_server(true)
        .compile_with_config(
            config,
            &[
                PathBuf::from("proto/observer/observer.proto"),
                PathBuf::from("proto/falco/outputs.proto"),
            ],
            &[PathBuf::from("proto"), well_known],
        )?;
    if std::env::var_os("CARGO_FEATURE_EBPF").is_some() {
        compile_bpf()?;
    }
    println!("cargo:rerun-if-changed=proto");
    println!("cargo:rerun-if-env-changed=PROTOC");
    Ok(())
}

/// `src/sources/ebpf/connect.bpf.c` -> `$OUT_DIR/connect.bpf.o`, for the kernel's BPF target.
fn compile_bpf() -> Result<(), Box<dyn std::error::Error>> {
    let source = "src/sources/ebpf/connect.bpf.c";
    let out = PathBuf::from(std::env::var("OUT_DIR")?).join("connect.bpf.o");
    let clang = std::env::var("CLANG").unwrap_or_else(|_| "clang".into());
    // <asm/types.h> lives under the host's multiarch include folder.
    let arch = std::env::var("CARGO_CFG_TARGET_ARCH")?;
    let multiarch = format!("/usr/include/{arch}-linux-gnu");
    let status = std::process::Command::new(&clang)
        .args([
            "-O2", "-g", "-Wall", "-Werror", "-target", "bpf", "-c", source, "-o",
        ])
        .arg(&out)
        .arg(format!("-I{multiarch}"))
        .status()
        .map_err(|e| {
            format!(
                "the ebpf feature compiles BPF programs with {clang}: {e}; install clang and \
                 libbpf-dev (apt-get install clang libbpf-dev)"
            )
        })?;
    if !status.success() {
        return Err(format!(
            "{clang} could not compile {source} ({status}); it needs libbpf-dev's headers"
        )
        .into());
    }
    println!("cargo:rerun-if-changed={source}");
    println!("cargo:rerun-if-env-changed=CLANG");
    Ok(())
}
