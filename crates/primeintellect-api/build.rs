fn main() {
    gpucloud_codegen::generate_client("../../openapi/primeintellect/generated.json");
}
