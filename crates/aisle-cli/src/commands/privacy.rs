//! `aisle privacy` (the budget ledger, and the noise and accounting for cross-checks
//! against other libraries) and `aisle audit` (the hash-chained audit log).

use aisle_engine::privacy::{AUDIT_FILE, LEDGER_FILE};
use aisle_privacy::{Cost, Noise};
use anyhow::Context;
use rand::SeedableRng;

use super::DataDir;

#[derive(clap::Args, Debug)]
pub struct PrivacyArgs {
    #[command(subcommand)]
    command: PrivacyCommand,
}

#[derive(clap::Subcommand, Debug)]
enum PrivacyCommand {
    /// What private answers have spent in the budget's window, release by release.
    Budget {
        #[command(flatten)]
        data: DataDir,
        /// The window, in days (as the server's privacy_window_days).
        #[arg(long, default_value_t = 30.0)]
        window_days: f64,
    },
    /// Draw noise exactly as private answers do, one integer per line (to check it
    /// against another library).
    Noise {
        /// laplace or gaussian.
        #[arg(long, default_value = "laplace")]
        mechanism: String,
        /// The scale (Laplace b, or Gaussian σ).
        #[arg(long)]
        scale: f64,
        /// How many draws.
        #[arg(long, default_value_t = 10_000)]
        count: usize,
        /// Seed of the generator (the server draws from the operating system instead).
        #[arg(long)]
        seed: Option<u64>,
    },
    /// The ε of a composition of releases, as the ledger counts it.
    Epsilon {
        /// A discrete Laplace release as SCALE:SENSITIVITY (L1); repeatable.
        #[arg(long)]
        laplace: Vec<String>,
        /// A discrete Gaussian release as SIGMA:SENSITIVITY (L2); repeatable.
        #[arg(long)]
        gaussian: Vec<String>,
        /// δ at which zCDP is converted.
        #[arg(long, default_value_t = 1e-6)]
        delta: f64,
    },
}

#[derive(clap::Args, Debug)]
pub struct AuditArgs {
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(clap::Subcommand, Debug)]
enum AuditCommand {
    /// Check every line's hash and link; print the record count and the head hash (keep it
    /// elsewhere: a log cut short still verifies, but no longer reaches that head).
    Verify {
        #[command(flatten)]
        data: DataDir,
    },
}

fn pair(text: &str, what: &str) -> anyhow::Result<(f64, f64)> {
    let (a, b) = text
        .split_once(':')
        .with_context(|| format!("--{what} {text:?}: write SCALE:SENSITIVITY, e.g. 2.0:1"))?;
    let parse = |s: &str| {
        s.trim()
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite() && *x > 0.0)
            .with_context(|| format!("--{what} {text:?}: {s:?} is not a positive number"))
    };
    Ok((parse(a)?, parse(b)?))
}

pub fn privacy(args: PrivacyArgs) -> anyhow::Result<()> {
    match args.command {
        PrivacyCommand::Budget { data, window_days } => {
            let path = data.data_dir.join(LEDGER_FILE);
            if !path.is_file() {
                println!(
                    "no private answers released yet ({} does not exist)",
                    path.display()
                );
                return Ok(());
            }
            let entries = aisle_privacy::ledger::read_entries(&path)?;
            let now = aisle_engine::now_ms();
            let cut = now - (window_days * 86_400_000.0) as i64;
            let mut total = Cost::default();
            for e in entries.iter().filter(|e| e.at_ms > cut) {
                total = total.plus(e.cost);
                println!(
                    "{}  {:<12} data version {:<6} epsilon {:.4}",
                    chrono::DateTime::from_timestamp_millis(e.at_ms)
                        .map_or_else(|| e.at_ms.to_string(), |t| t.to_rfc3339()),
                    e.query,
                    e.data_version,
                    e.cost.epsilon_at(1e-6)
                );
            }
            println!(
                "spent in the last {window_days} days: epsilon {:.4}",
                total.epsilon_at(1e-6)
            );
        }
        PrivacyCommand::Noise {
            mechanism,
            scale,
            count,
            seed,
        } => {
            anyhow::ensure!(
                scale.is_finite() && scale > 0.0,
                "--scale must be a positive number"
            );
            let noise = match mechanism.as_str() {
                "laplace" => Noise::Laplace { scale },
                "gaussian" => Noise::Gaussian { sigma: scale },
                other => anyhow::bail!("--mechanism {other:?}: use laplace or gaussian"),
            };
            let mut rng = match seed {
                Some(s) => rand::rngs::StdRng::seed_from_u64(s),
                None => rand::rngs::StdRng::from_os_rng(),
            };
            let mut out = String::with_capacity(count * 4);
            for _ in 0..count {
                out.push_str(&noise.sample(&mut rng).to_string());
                out.push('\n');
            }
            print!("{out}");
        }
        PrivacyCommand::Epsilon {
            laplace,
            gaussian,
            delta,
        } => {
            let mut total = Cost::default();
            for l in &laplace {
                let (scale, sensitivity) = pair(l, "laplace")?;
                total = total.plus(Cost::of(Noise::Laplace { scale }, sensitivity));
            }
            for g in &gaussian {
                let (sigma, sensitivity) = pair(g, "gaussian")?;
                total = total.plus(Cost::of(Noise::Gaussian { sigma }, sensitivity));
            }
            println!(
                "{}",
                serde_json::json!({
                    "pure_epsilon": total.epsilon,
                    "rho": total.rho,
                    "delta": delta,
                    "epsilon": total.epsilon_at(delta),
                })
            );
        }
    }
    Ok(())
}

pub fn audit(args: AuditArgs) -> anyhow::Result<()> {
    match args.command {
        AuditCommand::Verify { data } => {
            let path = data.data_dir.join(AUDIT_FILE);
            anyhow::ensure!(
                path.is_file(),
                "{} does not exist: the audit log starts with the first audited action",
                path.display()
            );
            let v = aisle_privacy::audit::verify(&path)?;
            println!(
                "{}: intact, {} records, head {}",
                path.display(),
                v.records,
                v.head
            );
        }
    }
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct KeysArgs {
    #[command(subcommand)]
    command: KeysCommand,
}

#[derive(clap::Subcommand, Debug)]
enum KeysCommand {
    /// Whether the data directory is encrypted, and whether the master key in the
    /// environment opens it.
    Status {
        #[command(flatten)]
        data: DataDir,
    },
    /// Rewrap the data key under a new master key, at once: the current one comes from
    /// AISLE_MASTER_KEY, AISLE_MASTER_KEY_FILE or AISLE_PASSPHRASE, the new one from
    /// AISLE_NEW_MASTER_KEY, AISLE_NEW_MASTER_KEY_FILE or AISLE_NEW_PASSPHRASE. Stop the
    /// server first; its next start needs the new key.
    Rotate {
        #[command(flatten)]
        data: DataDir,
    },
}

pub fn keys(args: KeysArgs) -> anyhow::Result<()> {
    use aisle_store::keys::{self, MasterKey};
    match args.command {
        KeysCommand::Status { data } => {
            let dir = &data.data_dir;
            if !keys::is_encrypted(dir) {
                println!(
                    "{}: not encrypted (a new data directory is encrypted when a master key is set)",
                    dir.display()
                );
                return Ok(());
            }
            match MasterKey::from_env()? {
                None => println!(
                    "{}: encrypted; no master key is set in this environment",
                    dir.display()
                ),
                Some(master) => {
                    keys::data_key(dir, &master, false)?;
                    println!(
                        "{}: encrypted; the master key in this environment opens it",
                        dir.display()
                    );
                }
            }
            match aisle_store::keyring::records(dir)? {
                Some(n) => println!(
                    "{}: {n} per-user keys (made ahead for new shoppers; a forget destroys one); back it up apart from the store",
                    aisle_store::keyring::USER_KEYS_FILE
                ),
                None => println!(
                    "{}: none yet (made at the store's next open)",
                    aisle_store::keyring::USER_KEYS_FILE
                ),
            }
        }
        KeysCommand::Rotate { data } => {
            let dir = &data.data_dir;
            let old = MasterKey::from_env()?.context(
                "set the current master key (AISLE_MASTER_KEY, AISLE_MASTER_KEY_FILE or AISLE_PASSPHRASE)",
            )?;
            let new = MasterKey::from_lookup(|name| {
                let renamed = name.replacen("AISLE_", "AISLE_NEW_", 1);
                std::env::var(renamed).ok().filter(|v| !v.is_empty())
            })?
            .context("set the new master key (AISLE_NEW_MASTER_KEY, AISLE_NEW_MASTER_KEY_FILE or AISLE_NEW_PASSPHRASE)")?;
            keys::rotate(dir, &old, &new)?;
            aisle_privacy::audit::AuditLog::open(&dir.join(AUDIT_FILE))?.append(
                aisle_engine::now_ms(),
                "cli",
                "key_rotate",
                serde_json::json!({ "data_key": "rewrapped" }),
            )?;
            println!(
                "{}: the data key is now wrapped by the new master key; the old one no longer opens it",
                dir.display()
            );
        }
    }
    Ok(())
}
