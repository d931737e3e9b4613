//! Starting and stopping `redis-server` and `memcached` on unix sockets in a private
//! directory, for one benchmark child at a time (each run starts from an empty server).

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::net::Kind;

pub fn kind_of(contender: &str) -> Option<Kind> {
    if contender.starts_with("redis") {
        Some(Kind::Redis)
    } else if contender.starts_with("memcached") {
        Some(Kind::Memcached)
    } else {
        None
    }
}

fn program(kind: Kind) -> &'static str {
    match kind {
        Kind::Redis => "redis-server",
        Kind::Memcached => "memcached",
    }
}

pub fn socket_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Redis => "redis.sock",
        Kind::Memcached => "memcached.sock",
    }
}

fn installed(kind: Kind) -> bool {
    Command::new(program(kind))
        .arg(if kind == Kind::Redis {
            "--version"
        } else {
            "-V"
        })
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Makes sure both servers are installed, with `apt-get` if they are not. Returns an
/// error saying what is missing when that fails.
pub fn ensure_installed() -> Result<(), String> {
    if installed(Kind::Redis) && installed(Kind::Memcached) {
        return Ok(());
    }
    eprintln!("installing redis-server and memcached with apt-get…");
    let ok = Command::new("apt-get")
        .args(["install", "-y", "-q", "redis-server", "memcached"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok && installed(Kind::Redis) && installed(Kind::Memcached) {
        Ok(())
    } else {
        Err(
            "redis-server and memcached are needed for the server contenders \
             (apt-get install -y redis-server memcached)"
                .into(),
        )
    }
}

/// A running server, killed and its socket directory removed on drop.
pub struct Server {
    child: Child,
    dir: PathBuf,
}

impl Server {
    /// Starts a server of `kind` allowed `memory` bytes for data, evicting LRU entries
    /// beyond that, with `threads` worker threads where the server has them.
    pub fn start(kind: Kind, memory: u64, threads: usize) -> io::Result<Server> {
        let dir = std::env::temp_dir().join(format!(
            "cachee-bench-{}-{}",
            std::process::id(),
            program(kind)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir)?;
        let socket = dir.join(socket_name(kind));
        let mut cmd = Command::new(program(kind));
        match kind {
            Kind::Redis => {
                cmd.arg("--port")
                    .arg("0")
                    .arg("--unixsocket")
                    .arg(&socket)
                    .arg("--unixsocketperm")
                    .arg("700")
                    .args(["--save", "", "--appendonly", "no"])
                    .arg("--maxmemory")
                    .arg(memory.to_string())
                    .args(["--maxmemory-policy", "allkeys-lru", "--daemonize", "no"])
                    .arg("--dir")
                    .arg(&dir);
            }
            Kind::Memcached => {
                cmd.arg("-s")
                    .arg(&socket)
                    .args(["-a", "0700", "-U", "0", "-c", "4096"])
                    .arg("-m")
                    .arg(memory.div_ceil(1 << 20).max(64).to_string())
                    .arg("-t")
                    .arg(threads.max(1).to_string());
                // memcached refuses to run as root without a user to switch to.
                // SAFETY: `geteuid` has no preconditions.
                if unsafe { libc::geteuid() } == 0 {
                    cmd.args(["-u", "root"]);
                }
            }
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let server = Server { child, dir };
        server.wait_ready(&socket)?;
        Ok(server)
    }

    fn wait_ready(&self, socket: &Path) -> io::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if std::os::unix::net::UnixStream::connect(socket).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("server socket {} did not appear", socket.display()),
        ))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
