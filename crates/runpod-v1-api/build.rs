fn main() {
    gpucloud_codegen::generate_client("../../openapi/runpod-v1/generated.json");
}
