//! `serve`, `check-config`, `token create` and `simulate`: each returns the process exit
//! code.

use std::process::ExitCode;
use std::time::Duration;

use super::args::{ConfigArg, ServeArgs, SimulateArgs, TokenCreateArgs};
use crate::config::Settings;
use crate::observe::logs;
use crate::simulate::{Simulator, SimulatorOptions};
use crate::startup::{Application, ServeOptions};

fn load(config: &ConfigArg) -> Result<Settings, ExitCode> {
    load_logged(config, false)
}

fn load_logged(config: &ConfigArg, json: bool) -> Result<Settings, ExitCode> {
    Settings::load(config.config.as_deref()).map_err(|e| {
        errln!("{}", logs::direct_line(json, "ERROR", &format!("gns3-central: {e}")));
        ExitCode::from(1)
    })
}

pub(super) async fn serve(args: ServeArgs) -> ExitCode {
    let mut settings = match load_logged(&args.config, args.log_json) {
        Ok(s) => s,
        Err(code) => return code,
    };
    if let Some(bind) = args.bind.clone() {
        settings.http.bind = bind;
        if let Err(e) = settings.validate() {
            let json = args.log_json || settings.log.format == "json";
            errln!("{}", logs::direct_line(json, "ERROR", &format!("gns3-central: --bind: {e}")));
            return ExitCode::from(1);
        }
    }
    if args.debug {
        settings.log.level = "debug".into();
    }
    if args.log_json {
        settings.log.format = "json".into();
    }
    let json = settings.log.format == "json";
    let service_log = match settings.log.open_file(crate::observe::logs::SERVICE_LOG) {
        Ok(f) => f,
        Err(e) => {
            errln!("{}", logs::direct_line(json, "ERROR", &format!("gns3-central: cannot open the service log: {e}")));
            return ExitCode::from(1);
        }
    };
    logs::init_with(&settings.log.level, json, service_log);
    let reload = crate::config::live::ReloadSource {
        file: args.config.config.clone(),
        bind: args.bind.clone(),
        debug: args.debug,
        log_json: args.log_json,
        test_mode: args.test_mode,
    };
    let opts = ServeOptions { no_events: args.no_events, test_mode: args.test_mode, reload: Some(reload) };
    let app = match Application::build(settings, opts).await {
        Ok(app) => app,
        Err(e) => {
            errln!("{}", logs::direct_line(json, "ERROR", &format!("gns3-central: cannot start: {e}")));
            return ExitCode::from(1);
        }
    };
    if let Some(token) = app.generated_token() {
        // stdout, once, and never through the log: logs are often shipped elsewhere. Lines a
        // shell can eval: `eval "$(… | head -2)"` sets TOKEN.
        outln!("# No API token is configured; admin token for this run (shown once):\nexport TOKEN={token}");
    }
    let banner = format!("gns3-central listening on http://127.0.0.1:{}/ (API docs: /api/docs/)", app.port());
    errln!("{}", logs::direct_line(json, "INFO", &banner));
    match app.run_until_stopped().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            errln!("{}", logs::direct_line(json, "ERROR", &format!("gns3-central: {e}")));
            ExitCode::from(1)
        }
    }
}

pub(super) fn token_create(args: TokenCreateArgs) -> ExitCode {
    use crate::auth::{token, Role};
    let name = args.name.trim();
    if name.is_empty() || name.contains(['"', '\\', '\n']) {
        errln!("gns3-central: --name must be a non-empty name without quotes, backslashes or newlines");
        return ExitCode::from(2);
    }
    let role = match Role::parse(&args.role) {
        Ok(r) => r,
        Err(e) => {
            errln!("gns3-central: --role {e}");
            return ExitCode::from(2);
        }
    };
    let mut projects = Vec::new();
    for p in &args.projects {
        match uuid::Uuid::parse_str(p.trim()) {
            Ok(id) => projects.push(format!("\"{id}\"")),
            Err(_) => {
                errln!("gns3-central: --project '{p}' is not a project UUID");
                return ExitCode::from(2);
            }
        }
    }
    let value = token::generate();
    outln!("Token (shown only now; keep it secret):\n{value}\n");
    outln!("Add to the configuration:\n[[auth.tokens]]");
    outln!("name = \"{name}\"\nrole = \"{}\"\nhash = \"{}\"", role.as_str(), token::hash(&value));
    if !projects.is_empty() {
        outln!("projects = [{}]", projects.join(", "));
    }
    ExitCode::SUCCESS
}

pub(super) fn check_config(args: ConfigArg) -> ExitCode {
    match load(&args) {
        Ok(settings) => {
            outln!("# effective configuration (secrets masked)");
            out!("{}", settings.to_masked_toml());
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

pub(super) async fn simulate(args: SimulateArgs) -> ExitCode {
    logs::init("info", false);
    if !(args.activity.is_finite() && args.activity >= 0.0) {
        errln!("gns3-central: --activity must be a non-negative number");
        return ExitCode::from(2);
    }
    let opts = SimulatorOptions {
        bind: std::net::SocketAddr::new(args.host, args.port),
        projects: args.projects,
        nodes: args.nodes,
        links: true,
        activity: args.activity,
        seed: args.seed,
    };
    let sim = match Simulator::start(opts).await {
        Ok(sim) => sim,
        Err(e) => {
            errln!("gns3-central: cannot start the stand-in: {e}");
            return ExitCode::from(1);
        }
    };
    errln!("GNS3 stand-in (API v2) on {} — Ctrl-C to stop", sim.url());
    let _ = tokio::signal::ctrl_c().await;
    tokio::time::timeout(Duration::from_secs(5), sim.stop()).await.ok();
    ExitCode::SUCCESS
}
