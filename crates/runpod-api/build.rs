fn main() {
    gpucloud_codegen::generate_client("../../openapi/runpod-v2/generated.json");
}
