fn main() {
    // The generator input inside this package (kept in step with openapi/ by `cargo xtask regen`).
    gpucloud_codegen::generate_client("openapi.json");
}
