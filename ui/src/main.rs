fn main() {
    std::process::exit(ui::cli::main());
}
