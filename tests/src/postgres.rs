//! A private Postgres cluster for one test: `initdb` and `pg_ctl` from Debian's `postgresql`
//! package (scripts/test.sh installs it) in a temporary directory, listening on a loopback port
//! and a socket in that directory, owned by the test and stopped (immediately) when dropped.
//! Never the system's cluster. `initdb` refuses to run as root, so as root the cluster runs as
//! the `postgres` user the package creates.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct PgCluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    pub port: u16,
    /// Run the server's tools as this user (`postgres` when the test runs as root).
    run_as: Option<String>,
}

/// The directory holding `initdb`, `pg_ctl` and `postgres`: the newest Debian install, or the PATH.
fn bin_dir() -> Result<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    let which = Command::new("sh").args(["-c", "command -v initdb"]).output()?;
    let path = String::from_utf8_lossy(&which.stdout).trim().to_string();
    match Path::new(&path).parent() {
        Some(dir) if which.status.success() => Ok(dir.to_path_buf()),
        _ => bail!(
            "Postgres is not installed: scripts/test.sh installs Debian's postgresql package \
             (or: sudo apt-get install postgresql)"
        ),
    }
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0").unwrap_or(false)
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl PgCluster {
    /// A fresh cluster, started, with a `livestore` superuser and database.
    pub fn start() -> Result<PgCluster> {
        PgCluster::start_with(false)
    }

    /// [`PgCluster::start`] with TLS on: a certificate for 127.0.0.1 and localhost signed by
    /// a test authority, whose PEM is [`PgCluster::ca_file`].
    pub fn start_tls() -> Result<PgCluster> {
        PgCluster::start_with(true)
    }

    /// The authority that signed a TLS cluster's certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    fn start_with(tls: bool) -> Result<PgCluster> {
        let bin = bin_dir()?;
        let dir = tempfile::Builder::new().prefix("livestore-pg-").tempdir()?;
        let run_as = is_root().then(|| "postgres".to_string());
        if let Some(user) = &run_as {
            let chown = Command::new("chown").args(["-R", user]).arg(dir.path()).status()?;
            if !chown.success() {
                bail!(
                    "chown {user} {} failed (is there a `postgres` user? apt-get install postgresql)",
                    dir.path().display()
                );
            }
        }
        let mut cluster = PgCluster { bin, dir, port: free_port()?, run_as };
        let data = cluster.data_dir();
        cluster.run(
            "initdb",
            &["-D", &data, "-U", "livestore", "-A", "trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"],
        )?;
        if tls {
            cluster.make_certificate()?;
        }
        cluster.start_server()?;
        // Ports picked this way can race with another process; one retry on a new port.
        if cluster.psql("postgres", "SELECT 1").is_err() {
            cluster.port = free_port()?;
            cluster.start_server()?;
        }
        cluster.psql("postgres", "CREATE DATABASE livestore")?;
        Ok(cluster)
    }

    fn data_dir(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn run(&self, tool: &str, args: &[&str]) -> Result<String> {
        let exe = self.bin.join(tool);
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&exe);
                c
            }
            None => Command::new(&exe),
        };
        let out = cmd.args(args).current_dir(self.dir.path()).output().with_context(|| format!("running {tool}"))?;
        if !out.status.success() {
            bail!(
                "{tool} {args:?} failed: {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into())
    }

    /// A test authority (`ca.crt`) and a server certificate it signed for 127.0.0.1 and
    /// localhost (`server.crt`, `server.key`).
    fn make_certificate(&self) -> Result<()> {
        let dir = self.dir.path();
        let openssl = |args: &[&str]| -> Result<()> {
            let out = Command::new("openssl").args(args).current_dir(dir).output().context("running openssl")?;
            if !out.status.success() {
                bail!("openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
            }
            Ok(())
        };
        std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n")?;
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=livestore test CA",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
        ])?;
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ])?;
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.ext",
            "-out",
            "server.crt",
        ])?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.join("server.key"), std::fs::Permissions::from_mode(0o600))?;
        if let Some(user) = &self.run_as {
            let chown =
                Command::new("chown").arg(user).arg(dir.join("server.key")).arg(dir.join("server.crt")).status()?;
            if !chown.success() {
                bail!("chown {user} of the certificate failed");
            }
        }
        Ok(())
    }

    /// Start (or start again) the server on `self.port`, waiting until it accepts connections.
    pub fn start_server(&self) -> Result<()> {
        let mut options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c max_connections=200 -c fsync=on",
            self.port,
            self.dir.path().display()
        );
        let (crt, key) = (self.dir.path().join("server.crt"), self.dir.path().join("server.key"));
        if crt.exists() {
            options.push_str(&format!(
                " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
                crt.display(),
                key.display()
            ));
        }
        let log = self.dir.path().join("server.log").display().to_string();
        self.run("pg_ctl", &["-D", &self.data_dir(), "-o", &options, "-l", &log, "-w", "-t", "60", "start"])
            .with_context(|| std::fs::read_to_string(&log).unwrap_or_default())?;
        Ok(())
    }

    /// Stop the server at once (like a crash: no checkpoint; committed work is in the WAL).
    pub fn stop_server(&self) -> Result<()> {
        self.run("pg_ctl", &["-D", &self.data_dir(), "-m", "immediate", "-w", "stop"])?;
        Ok(())
    }

    /// Run SQL with psql as the `livestore` user; returns unaligned, tuples-only output.
    pub fn psql(&self, database: &str, sql: &str) -> Result<String> {
        let out = Command::new("psql")
            .args([
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-U",
                "livestore",
                "-d",
                database,
            ])
            .args(["-p", &self.port.to_string(), "-c", sql])
            .output()
            .context("running psql")?;
        if !out.status.success() {
            bail!("psql {sql:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    /// A connection URL for `database` (created on first use).
    pub fn url(&self, database: &str) -> Result<String> {
        if !database.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            bail!("test database names are letters, digits and _: {database:?}");
        }
        let exists = self.psql("postgres", &format!("SELECT 1 FROM pg_database WHERE datname = '{database}'"))?;
        if exists.is_empty() {
            self.psql("postgres", &format!("CREATE DATABASE \"{database}\""))?;
        }
        Ok(format!("postgres://livestore@127.0.0.1:{}/{database}", self.port))
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = self.stop_server();
    }
}
