//! The `pirouterd` command: arguments -> config -> real backends -> run. Prints the whole error
//! chain on failure.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use pirouterd::app::App;
use pirouterd::config::{self, Config, ListenAddr};
use pirouterd::http::server;
use pirouterd::sys::clock::SystemClock;
use pirouterd::{daemon, demo, logging, status};

const USAGE: &str = "\
pirouterd: firewall, NAT64, WAN and relay dashboard for Raspberry Pi routers

usage:
  pirouterd serve [--config FILE] [--listen ADDR]...   run the daemon
  pirouterd demo [--listen ADDR]...                    the whole product in private namespaces
  pirouterd check-config FILE                          report every problem in a config file
  pirouterd status [--config FILE] [--json]            summary from the running daemon
  pirouterd analyze [--prefix P] [--json] FILE...      summarise dropped-packet kernel log lines
                    [--top N]                          (rows per table, default 10)
  pirouterd relays off [--config FILE]                 drive every relay to its safe state
  pirouterd --version

options:
  -v, -vv          more logging (debug, trace)
  --config FILE    default /etc/pirouterd/pirouterd.toml
  --listen ADDR    IP:PORT or unix:/path; repeatable; replaces http.listen
";

/// Exit codes: 0 success, 1 failure (bad config, runtime error), 2 usage or not available.
fn main() -> ExitCode {
    // Before any thread exists, so every thread inherits the mask (see sys::signals).
    if let Err(e) = pirouterd::sys::signals::block() {
        eprintln!("pirouterd: cannot block signals: {e}");
        return ExitCode::from(1);
    }
    match run() {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("pirouterd: {e}");
            let mut source = e.source();
            while let Some(s) = source {
                eprintln!("  caused by: {s}");
                source = s.source();
            }
            ExitCode::from(1)
        }
    }
}

type AnyError = Box<dyn std::error::Error>;

#[derive(Default)]
struct Args {
    command: Vec<String>,
    config: Option<PathBuf>,
    listen: Vec<ListenAddr>,
    verbosity: u8,
    json: bool,
    prefix: Option<String>,
    top: Option<String>,
}

fn parse_args() -> Result<Args, lexopt::Error> {
    use lexopt::prelude::*;
    let mut a = Args::default();
    let mut p = lexopt::Parser::from_env();
    while let Some(arg) = p.next()? {
        match arg {
            Short('v') | Long("verbose") => a.verbosity += 1,
            Long("version") | Short('V') => a.command = vec!["--version".into()],
            Short('h') | Long("help") => a.command = vec!["help".into()],
            Long("config") | Short('c') => a.config = Some(p.value()?.into()),
            Long("listen") | Short('l') => {
                let v: String = p.value()?.string()?;
                a.listen.push(
                    v.parse()
                        .map_err(|m: String| lexopt::Error::Custom(m.into()))?,
                );
            }
            Long("json") => a.json = true,
            Long("prefix") => a.prefix = Some(p.value()?.string()?),
            Long("top") => a.top = Some(p.value()?.string()?),
            Value(v) => a.command.push(v.string()?),
            _ => return Err(arg.unexpected()),
        }
    }
    Ok(a)
}

fn run() -> Result<u8, AnyError> {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("pirouterd: {e}\n\n{USAGE}");
            return Ok(2);
        }
    };
    logging::init(args.verbosity);
    let cmd: Vec<&str> = args.command.iter().map(String::as_str).collect();
    match cmd.as_slice() {
        ["--version"] => {
            println!("pirouterd {}", env!("CARGO_PKG_VERSION"));
            Ok(0)
        }
        [] | ["help"] => {
            print!("{USAGE}");
            Ok(if cmd.is_empty() { 2 } else { 0 })
        }
        ["serve"] => serve(&args),
        ["demo"] => {
            demo::run(args.listen.clone())?;
            Ok(0)
        }
        ["check-config", file] => Ok(check_config(file)),
        ["check-config"] => {
            eprintln!(
                "pirouterd check-config: name the file to check, e.g. pirouterd check-config {}",
                config::DEFAULT_PATH
            );
            Ok(2)
        }
        ["status"] => show_status(&args),
        ["analyze", files @ ..] => {
            // The global parser took --prefix and --json; hand them back to analyze.
            let mut a: Vec<String> = Vec::new();
            if let Some(p) = &args.prefix {
                a.extend(["--prefix".to_string(), p.clone()]);
            }
            if let Some(n) = &args.top {
                a.extend(["--top".to_string(), n.clone()]);
            }
            if args.json {
                a.push("--json".into());
            }
            a.push("--".into());
            a.extend(files.iter().map(|f| f.to_string()));
            Ok(pirouterd::drops::analyze::analyze_main(&a).clamp(0, 255) as u8)
        }
        ["relays", "off"] => {
            let cfg = load_config(&args)?;
            Ok(pirouterd::relays::area::relays_off(
                &cfg,
                Arc::new(SystemClock),
            ))
        }
        _ => {
            eprintln!(
                "pirouterd: unknown command {:?}\n\n{USAGE}",
                args.command.join(" ")
            );
            Ok(2)
        }
    }
}

/// Loads the config named by `--config`, or the default path (defaults when it is absent).
fn load_config(args: &Args) -> Result<Config, AnyError> {
    let mut cfg = match &args.config {
        Some(p) => Config::load(p)?,
        None => {
            let p = std::path::Path::new(config::DEFAULT_PATH);
            if p.exists() {
                Config::load(p)?
            } else {
                log::warn!(
                    "no config at {}: using defaults (see systemd/pirouterd.toml)",
                    p.display()
                );
                Config::default()
            }
        }
    };
    if !args.listen.is_empty() {
        cfg.http.listen = args.listen.clone();
    }
    Ok(cfg)
}

/// Reads the token file; a token file that others can read is refused.
fn read_token(cfg: &Config) -> Result<Option<String>, AnyError> {
    let Some(path) = &cfg.http.token_file else {
        return Ok(None);
    };
    if let Some(p) = cfg.check_environment().into_iter().next() {
        return Err(p.message.into());
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the token file {}: {e}", path.display()))?;
    let token = text.trim().to_string();
    if token.len() < 16 {
        return Err(format!(
            "the token in {} is shorter than 16 characters: use `head -c 32 /dev/urandom | base64`",
            path.display()
        )
        .into());
    }
    Ok(Some(token))
}

fn serve(args: &Args) -> Result<u8, AnyError> {
    let cfg = load_config(args)?;
    let token = read_token(&cfg)?;
    let bound = server::bind(&cfg.http.listen, cfg.http.client_timeout)?;
    let app = Arc::new(App::new(cfg, Arc::new(SystemClock), token, false));
    daemon::run(app, bound, |addrs| {
        log::info!("ready: {}", addrs.join(", "))
    })?;
    Ok(0)
}

fn check_config(file: &str) -> u8 {
    let path = std::path::Path::new(file);
    let problems = match Config::load(path) {
        Ok(cfg) => cfg.check_environment(),
        Err(config::ConfigError::Invalid { problems, .. }) => problems,
        Err(e) => {
            eprintln!("{file}: {e}");
            if let Some(s) = std::error::Error::source(&e) {
                eprintln!("  caused by: {s}");
            }
            return 1;
        }
    };
    if problems.is_empty() {
        println!("{file}: ok");
        return 0;
    }
    for p in &problems {
        match p.line {
            Some(l) => eprintln!("{file}:{l}: {}: {}", p.key, p.message),
            None => eprintln!("{file}: {}: {}", p.key, p.message),
        }
    }
    eprintln!("{file}: {} problem(s)", problems.len());
    1
}

fn show_status(args: &Args) -> Result<u8, AnyError> {
    let cfg = load_config(args)?;
    let token = read_token(&cfg).ok().flatten();
    let mut last_err = None;
    for addr in &cfg.http.listen {
        match status::get(addr, "/api/v1/status", token.as_deref()) {
            Ok((200, body)) => {
                let v: serde_json::Value = serde_json::from_slice(&body)?;
                if args.json {
                    println!("{}", serde_json::to_string_pretty(&v)?);
                } else {
                    print!("{}", status::render(&v));
                    if let Ok((200, fw)) = status::get(addr, "/api/v1/firewall", token.as_deref()) {
                        if let Ok(fw) = serde_json::from_slice(&fw) {
                            print!("{}", pirouterd::firewall::api::render_terminal(&fw));
                        }
                    }
                }
                return Ok(0);
            }
            Ok((code, body)) => {
                last_err = Some(format!(
                    "{addr} answered {code}: {}",
                    String::from_utf8_lossy(&body)
                ));
            }
            Err(e) => last_err = Some(e.to_string()),
        }
    }
    Err(last_err
        .unwrap_or_else(|| "no listen address configured".into())
        .into())
}
