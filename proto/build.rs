//! Generates the Rust types of `alyx/v1/*.proto` with the protoc shipped by the
//! protoc-bin-vendored crate, so no system protoc is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc);
    tonic_prost_build::configure().compile_with_config(config, &["alyx/v1/event.proto"], &["."])?;
    println!("cargo:rerun-if-changed=alyx/v1");
    Ok(())
}
