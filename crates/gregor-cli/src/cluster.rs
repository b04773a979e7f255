//! `gregor coordination`: the embedded coordination store as a service that
//! brokers in other processes share; `gregor cluster`: a local cluster of N
//! brokers (and that service, unless ZooKeeper is given) as child
//! processes, stopped together on Ctrl-C or SIGTERM.

use std::path::PathBuf;
use std::process::{Child, Command};

use anyhow::Context;
use gregor_coord::{CoordSecret, CoordServer, EmbeddedStore};

/// Flags of `gregor coordination`.
#[derive(Debug, clap::Args)]
pub struct CoordinationArgs {
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:2181")]
    pub listen: String,
    /// Where the store keeps its snapshot and log.
    #[arg(long, default_value = "./data/coordination")]
    pub dir: PathBuf,
    /// Serve only clients that prove the secret in this file (brokers set
    /// `coordination.auth.secret.file` to a file with the same secret).
    #[arg(long)]
    pub auth_secret_file: Option<PathBuf>,
}

/// Flags of `gregor cluster`.
#[derive(Debug, clap::Args)]
pub struct ClusterArgs {
    /// How many brokers.
    #[arg(long, default_value_t = 3)]
    pub brokers: u16,
    /// Data directory: `broker-<id>/` per broker, `coordination/`.
    #[arg(long, default_value = "./cluster")]
    pub dir: PathBuf,
    /// Port of broker 0; broker i listens on this + i.
    #[arg(long, default_value_t = 9092)]
    pub base_port: u16,
    /// Metrics port of broker 0; broker i serves `/metrics` on this + i.
    #[arg(long, default_value_t = 9644)]
    pub metrics_port: u16,
    /// Port of the embedded coordination service.
    #[arg(long, default_value_t = 2181)]
    pub coordination_port: u16,
    /// Coordinate through this ZooKeeper (`host:port`) instead.
    #[arg(long)]
    pub zookeeper: Option<String>,
    /// Secret file of the embedded coordination service (given to it and
    /// to every broker).
    #[arg(long)]
    pub coordination_secret_file: Option<PathBuf>,
    /// Extra broker properties, `name=value` (repeatable).
    #[arg(long = "override", value_name = "NAME=VALUE")]
    pub overrides: Vec<String>,
}

/// Serves the store until SIGTERM or SIGINT.
pub async fn coordination(args: CoordinationArgs) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    let secret = match &args.auth_secret_file {
        Some(file) => Some(CoordSecret::from_file(file).context("--auth-secret-file")?),
        None => None,
    };
    let authenticated = secret.is_some();
    let store = EmbeddedStore::open(&args.dir).with_context(|| format!("opening {}", args.dir.display()))?;
    let server = CoordServer::bind_with_secret(args.listen.as_str(), store, secret)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    if authenticated {
        println!(
            "gregor coordination listening on {} (clients must prove the shared secret)",
            server.local_addr()
        );
    } else {
        println!(
            "gregor coordination listening on {} (no authentication: anyone who reaches it can change the cluster's metadata)",
            server.local_addr()
        );
    }
    tokio::select! {
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
    }
    server.shutdown().await;
    Ok(())
}

/// Starts the cluster's processes and waits for a signal (or a process
/// exiting), then stops them all.
pub fn cluster(args: ClusterArgs) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("finding the gregor executable")?;
    std::fs::create_dir_all(&args.dir).with_context(|| format!("creating {}", args.dir.display()))?;
    let mut children: Vec<(String, Child)> = Vec::new();
    let coordination = match &args.zookeeper {
        Some(zk) => format!("--zookeeper={zk}"),
        None => {
            let address = format!("127.0.0.1:{}", args.coordination_port);
            let mut command = Command::new(&exe);
            command
                .args(["coordination", "--listen", &address, "--dir"])
                .arg(args.dir.join("coordination"));
            if let Some(file) = &args.coordination_secret_file {
                command.arg("--auth-secret-file").arg(file);
            }
            let child = command.spawn().context("starting the coordination service")?;
            children.push(("coordination".into(), child));
            std::thread::sleep(std::time::Duration::from_millis(300));
            format!("--coordination={address}")
        }
    };
    for id in 0..args.brokers {
        let port = args.base_port + id;
        let mut command = Command::new(&exe);
        command
            .arg("server")
            .arg(format!("--broker-id={id}"))
            .arg(format!("--listeners=PLAINTEXT://127.0.0.1:{port}"))
            .arg(format!("--metrics-listen=127.0.0.1:{}", args.metrics_port + id))
            .arg(format!(
                "--log-dirs={}",
                args.dir.join(format!("broker-{id}")).display()
            ))
            .arg(&coordination);
        if let (Some(file), None) = (&args.coordination_secret_file, &args.zookeeper) {
            command.arg(format!("--override=coordination.auth.secret.file={}", file.display()));
        }
        for o in &args.overrides {
            command.arg(format!("--override={o}"));
        }
        let child = command.spawn().with_context(|| format!("starting broker {id}"))?;
        children.push((format!("broker {id}"), child));
    }
    println!(
        "gregor cluster: {} brokers on 127.0.0.1:{}..{}; Ctrl-C stops it",
        args.brokers,
        args.base_port,
        args.base_port + args.brokers - 1
    );
    let signals = signal_flag()?;
    loop {
        if signals.load(std::sync::atomic::Ordering::Relaxed) {
            break;
        }
        if let Some((name, status)) = children
            .iter_mut()
            .find_map(|(name, c)| c.try_wait().ok().flatten().map(|s| (name.clone(), s)))
        {
            eprintln!("gregor cluster: {name} exited ({status}); stopping the others");
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // Brokers first, coordination last.
    for (_, child) in children.iter_mut().rev() {
        // SAFETY: kill(2) on our own child's pid has no memory effects.
        unsafe {
            libc::kill(child.id() as i32, libc::SIGTERM);
        }
    }
    for (_, child) in children.iter_mut().rev() {
        let _ = child.wait();
    }
    Ok(())
}

/// Set when SIGINT or SIGTERM arrives.
fn signal_flag() -> anyhow::Result<std::sync::Arc<std::sync::atomic::AtomicBool>> {
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let set = flag.clone();
    std::thread::spawn(move || {
        runtime.block_on(async {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut terminate), Ok(mut interrupt)) =
                (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
            else {
                return;
            };
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            set.store(true, std::sync::atomic::Ordering::Relaxed);
        });
    });
    Ok(flag)
}
