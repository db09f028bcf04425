fn main() {
    println!("pirouterd {}", env!("CARGO_PKG_VERSION"));
}
