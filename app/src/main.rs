//! `app`: serve the site (the default), or `app healthcheck` to probe a running one.
//!
//! The process is the whole container: it reads `PORT`, `WORKERS`, `REQUEST_TIMEOUT` and
//! `KEEPALIVE_TIMEOUT` (`settings.rs`), renders the page, binds
//! 0.0.0.0:`PORT`, logs JSON lines on stdout, and on SIGTERM (how ECS and Docker stop a task)
//! drains in-flight requests and exits 0. Exit codes: 0 success, 1 runtime failure or unhealthy,
//! 2 bad usage or settings.

use std::process::ExitCode;
use std::sync::Arc;

use app::access_log::AccessLog;
use app::build_info::BUILD;
use app::page::{Page, TEMPLATE};
use app::routes::Site;
use app::settings::Settings;
use app::{healthcheck, server};

const USAGE: &str = concat!(
    "usage: app [serve | healthcheck | version]\n",
    "  serve        serve the site on 0.0.0.0:$PORT (default 8080) with $WORKERS threads (default: CPUs);\n",
    "               $REQUEST_TIMEOUT (default 20) and $KEEPALIVE_TIMEOUT (default 75) are seconds\n",
    "  healthcheck  exit 0 if the server on 127.0.0.1:$PORT answers /healthz with 200, else 1\n",
    "  version      print the version, commit and build time",
);

fn main() -> ExitCode {
    let command = std::env::args().nth(1);
    // Only the commands that use the settings read them: `version` and `help` work whatever the
    // environment holds.
    let settings = || {
        Settings::from_env().map_err(|message| {
            eprintln!("app: {message}");
            ExitCode::from(2)
        })
    };
    match command.as_deref() {
        None | Some("serve") => match settings() {
            Ok(settings) => serve(&settings),
            Err(code) => code,
        },
        Some("healthcheck") => match settings().map(|settings| healthcheck::check(settings.port)) {
            Err(code) => code,
            Ok(Ok(())) => ExitCode::SUCCESS,
            Ok(Err(reason)) => {
                eprintln!("app healthcheck: unhealthy: {reason}");
                ExitCode::FAILURE
            }
        },
        Some("version" | "--version") => {
            println!("app {} (commit {}, built {})", BUILD.version, BUILD.commit, BUILD.build_time);
            ExitCode::SUCCESS
        }
        Some("help" | "--help" | "-h") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("app: unknown command `{other}`\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn serve(settings: &Settings) -> ExitCode {
    let log = AccessLog::stdout();
    let page = Page::render(TEMPLATE, &BUILD);
    let site = Arc::new(Site::new(&page, &BUILD, Arc::clone(&log)));
    let bound = match server::bind(settings) {
        Ok(bound) => bound,
        Err(error) => {
            eprintln!("app: {error}; set PORT to a free port");
            return ExitCode::FAILURE;
        }
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let signal_log = Arc::clone(&log);
    let signals = match std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || wait_for_stop_signal(stop_tx, &signal_log))
    {
        Ok(thread) => thread,
        Err(error) => {
            eprintln!("app: cannot start the signal thread: {error}");
            return ExitCode::FAILURE;
        }
    };
    log.event(
        "listening",
        serde_json::json!({
            "addr": bound.addr().to_string(),
            "workers": settings.workers,
            "version": BUILD.version,
            "commit": BUILD.commit,
        }),
    );
    #[cfg(feature = "test-slow-route")]
    log.event("warning", serde_json::json!({"message": "built with the test-only slow route"}));
    let served = server::serve(bound, site, settings.workers, settings.timeouts, stop_rx);
    drop(signals);
    log.event("stopped", serde_json::Value::Null);
    log.flush();
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("app: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Blocks until SIGTERM or SIGINT, then tells the workers to drain.
fn wait_for_stop_signal(stop: tokio::sync::watch::Sender<bool>, log: &AccessLog) {
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("app: cannot watch for signals ({error}); stopping");
            let _ = stop.send(true);
            return;
        }
    };
    runtime.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut terminate), Ok(mut interrupt)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
        else {
            eprintln!("app: cannot install the SIGTERM/SIGINT handlers; stopping");
            let _ = stop.send(true);
            return;
        };
        let name = tokio::select! {
            _ = terminate.recv() => "SIGTERM",
            _ = interrupt.recv() => "SIGINT",
        };
        log.event("draining", serde_json::json!({"signal": name}));
        let _ = stop.send(true);
    });
}
