//! `aisle serve`: the HTTP API, dashboard and storefront over a data directory.

use std::path::PathBuf;
use std::sync::Arc;

use aisle_features::EventLog;
use aisle_server::{App, ServerConfig};
use anyhow::Context;

use super::search::EngineArgs;

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    pub engine: EngineArgs,
    /// A TOML config file (AISLE_* environment variables override it).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Address and port to listen on (overrides the config).
    #[arg(long)]
    pub listen: Option<String>,
    /// The recommender to serve (overrides the config).
    #[arg(long)]
    pub model: Option<String>,
}

/// Settings from the file and the environment, then the flags.
pub fn load_config(args: &ServeArgs) -> anyhow::Result<ServerConfig> {
    let mut config = ServerConfig::load(args.config.as_deref(), |name| std::env::var(name).ok())?;
    if let Some(listen) = &args.listen {
        config.listen.clone_from(listen);
    }
    if let Some(model) = &args.model {
        config.model.clone_from(model);
    }
    Ok(config)
}

fn init_logs(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("AISLE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second initialisation (tests calling in twice) is harmless and ignored.
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Runs the server until Ctrl-C or SIGTERM.
pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let config = load_config(&args)?;
    serve_with(config, &args.engine)
}

pub fn serve_with(mut config: ServerConfig, engine_args: &EngineArgs) -> anyhow::Result<()> {
    init_logs(config.log_json);
    let data_dir = engine_args.data.data_dir.clone();
    let deployed = super::deployed(&data_dir)?;
    if let Some(d) = &deployed {
        let file = super::policy::deployed_path(&data_dir);
        let (serving, candidate) = d.serving();
        if let Some(p) = serving {
            eprintln!(
                "serving the deployed policy {} (version {}) from {}",
                p.policy,
                p.version,
                file.display()
            );
            config.exploration = p.policy;
            config.policy_version = p.version;
        }
        if let Some(c) = candidate {
            eprintln!(
                "rolling out {} (version {}) over {}: shadow for {} requests, then {:.0}% of users until each side has {} lists with a final reward",
                c.policy,
                c.version,
                config.exploration,
                config.canary_shadow_requests,
                config.canary_share * 100.0,
                config.canary_min_lists
            );
            config.canary = Some(c.policy);
            config.canary_version = c.version;
        }
        if let Some(v) = &d.verdict {
            eprintln!("the last canary's verdict: {v}");
        }
    }
    if config.keys.is_empty() && config.demo_key.is_none() {
        eprintln!(
            "note: no API keys are configured, so nothing can write; set keys in --config or AISLE_API_KEYS=KEY:ROLE,..."
        );
    }
    let store: Arc<dyn aisle_store::Store> = Arc::from(engine_args.data.open_existing_store()?);
    let log = EventLog::load(store.as_ref())?;
    let engine = super::search::open_engine(engine_args, store.as_ref(), &log)
        .context("while opening the search index")?;
    drop(log);
    eprintln!("training {} and the prediction models...", config.model);
    let mut engine_config = config.engine_config(Some(data_dir.clone()));
    if let Some(url) = &config.stream_url {
        if engine_args.data.database_url.is_none() {
            anyhow::bail!(
                "stream_url is set but --database-url is not: replicas share one database, and the stream only tells them what it committed"
            );
        }
        let stream = aisle_stream::EventStream::connect(url, &config.stream_name)
            .with_context(|| format!("while opening the event stream {}", config.stream_name))?;
        let replica = config
            .replica
            .clone()
            .unwrap_or_else(|| format!("{}#{}", config.listen, std::process::id()));
        eprintln!(
            "replica {replica}: following the stream {} at {url}",
            config.stream_name
        );
        engine_config.replication = Some(aisle_engine::replication::Replication {
            stream: std::sync::Arc::new(stream),
            replica,
        });
    }
    if let (Some(canary), Some(d)) = (engine_config.canary.as_mut(), deployed) {
        // The verdict outlives the process: the file then names what serves after it.
        let dir = data_dir.clone();
        canary.on_decision = Some(aisle_engine::DecisionHook(std::sync::Arc::new(
            move |stage: &aisle_engine::Stage| {
                let mut record = d.clone();
                match stage {
                    aisle_engine::Stage::Full => {
                        record.stage = super::policy::DeployStage::Full;
                        record.verdict =
                            Some("promoted: the canary's online reward was better".into());
                    }
                    aisle_engine::Stage::RolledBack { reason } => {
                        record.stage = super::policy::DeployStage::RolledBack;
                        record.verdict = Some(format!("rolled back: {reason}"));
                    }
                    _ => return,
                }
                if let Err(e) = super::policy::write_deployed(&dir, &record) {
                    eprintln!("error: could not record the canary's verdict in policy.json: {e:#}");
                }
            },
        )));
    }
    let (engine, writer) = aisle_engine::Engine::start(engine_config, store, Some(engine))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let app = App::over(config.clone(), engine);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&config.listen)
            .await
            .with_context(|| format!("while binding {}", config.listen))?;
        let address = listener.local_addr()?;
        println!("aisle is serving on http://{address}/ (dashboard), http://{address}/shop (storefront), http://{address}/openapi.json");
        aisle_server::serve(app, listener, shutdown_signal()).await?;
        anyhow::Ok(())
    })?;
    // Every acknowledged event was committed before its answer; what is still queued was
    // never acknowledged. The writer finishes its current commit before the process ends.
    drop(runtime);
    writer.join();
    eprintln!("aisle stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    eprintln!("shutting down: finishing requests in flight");
}
