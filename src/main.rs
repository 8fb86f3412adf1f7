fn main() {
    let cli = drctl::cli::parse();
    drctl::logging::init(cli.log_format, cli.verbose, cli.quiet);
    let json = cli.output == drctl::cli::Output::Json;
    opendal::install_default();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    };
    let code = match rt.block_on(drctl::commands::dispatch(cli)) {
        Ok(()) => 0,
        Err(e) => {
            if json {
                eprintln!("{}", drctl::redact::scrub(&e.to_json().to_string()));
            } else {
                eprintln!("error: {}", drctl::redact::scrub(&e.to_string()));
            }
            e.exit_code()
        }
    };
    rt.shutdown_timeout(std::time::Duration::from_secs(5));
    std::process::exit(code);
}
