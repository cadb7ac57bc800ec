//! Test harness for the local Kubernetes control plane.
//!
//! The control plane (etcd, kube-apiserver, kube-controller-manager,
//! kube-scheduler, kwok and the cphelper agent) is built and started by the
//! scripts in `tests/control-plane/`; see `docs/dev-cluster.md`. This crate
//! starts it once per test run, or reuses one that is already up and healthy,
//! and gives every test its own namespace so tests run in parallel:
//!
//! ```no_run
//! # async fn example() {
//! test_harness::run("my-test", |t| async move {
//!     let pods = t.api::<k8s_openapi::api::core::v1::Pod>();
//!     let _ = pods.list(&Default::default()).await?;
//!     Ok::<_, test_harness::Error>(())
//! })
//! .await;
//! # }
//! ```
//!
//! When a test fails, the harness prints the namespace's events and pods and
//! the tail of every component's log before it deletes the namespace.

use std::fmt::{Display, Write as _};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use futures::FutureExt as _;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Event, Namespace, Pod, ServiceAccount};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Status;
use kube::api::{Api, AttachParams, DeleteParams, ListParams, ObjectMeta, PostParams};
use kube::config::{AuthInfo, KubeConfigOptions, Kubeconfig};
use kube::runtime::wait::{Condition, await_condition, conditions};
use kube::{Client, Config, Resource};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// Label put on every namespace the harness creates.
pub const NAMESPACE_LABEL: &str = "test-harness.tarantool.io/test";

/// Errors of the harness.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A script or binary could not be started at all.
    #[error("cannot run {command}: {source}")]
    Spawn {
        /// What was run.
        command: String,
        /// Why it could not start.
        #[source]
        source: std::io::Error,
    },
    /// `cluster-up.sh` failed; its output names the component and shows its log.
    #[error("the control plane did not start ({status}):\n{output}")]
    Start {
        /// Exit status of cluster-up.sh.
        status: String,
        /// Its combined output.
        output: String,
    },
    /// A command (kubectl, helm, ...) exited with a failure.
    #[error("{command} failed ({status}):\n{stderr}")]
    Command {
        /// What was run.
        command: String,
        /// Its exit status.
        status: String,
        /// Its standard error.
        stderr: String,
    },
    /// The admin kubeconfig could not be read or used.
    #[error("kubeconfig {path}: {message}")]
    Kubeconfig {
        /// Path of the kubeconfig.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A Kubernetes API call failed.
    #[error("kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    /// Waiting for a condition took longer than the harness's timeout.
    #[error("timed out after {timeout:?} waiting for {what}")]
    Timeout {
        /// How long the harness waited.
        timeout: Duration,
        /// What it waited for.
        what: String,
    },
    /// A watch broke while waiting for a condition.
    #[error("watch failed while waiting for {what}: {message}")]
    Watch {
        /// What was waited for.
        what: String,
        /// The watch error.
        message: String,
    },
    /// The object waited for does not exist.
    #[error("{what}: the object does not exist")]
    Gone {
        /// What was waited for.
        what: String,
    },
    /// An exec stream broke or returned no status.
    #[error("exec into {pod}: {message}")]
    Exec {
        /// The pod.
        pod: String,
        /// What went wrong.
        message: String,
    },
    /// A TokenRequest was answered without a token.
    #[error("the TokenRequest for ServiceAccount {service_account} returned no token")]
    Token {
        /// `namespace/name` of the ServiceAccount.
        service_account: String,
    },
    /// Reading or writing a local file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// Result with the harness's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How long a wait may take before the test fails, overridable with
/// `HARNESS_TIMEOUT_SECS`. A guard against hangs, not a performance assertion.
pub fn default_timeout() -> Duration {
    std::env::var("HARNESS_TIMEOUT_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(Duration::from_secs(180), Duration::from_secs)
}

/// The running local control plane: paths to its kubeconfig, binaries and logs.
#[derive(Debug)]
pub struct ControlPlane {
    repo: PathBuf,
    dir: PathBuf,
}

static CONTROL_PLANE: OnceLock<Result<ControlPlane, String>> = OnceLock::new();

impl ControlPlane {
    /// The control plane of this test run: started by `cluster-up.sh` on first
    /// use (the script reuses one that is up and healthy, and serialises
    /// concurrent callers with a lock), shared by every test afterwards. It is
    /// left running when the tests end: `make cluster-down` stops it, and
    /// `make test-control-plane` does so when it started it.
    pub fn get() -> Result<&'static ControlPlane> {
        let started = CONTROL_PLANE.get_or_init(|| Self::start().map_err(|e| e.to_string()));
        match started {
            Ok(cp) => Ok(cp),
            Err(message) => Err(Error::Start {
                status: "earlier attempt in this test run".into(),
                output: message.clone(),
            }),
        }
    }

    fn start() -> Result<ControlPlane> {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let repo = repo.canonicalize().unwrap_or(repo);
        let dir = std::env::var_os("CP_TARGET")
            .map(PathBuf::from)
            .unwrap_or_else(|| repo.join("target/control-plane"));
        let script = repo.join("tests/control-plane/cluster-up.sh");
        let output = std::process::Command::new("bash")
            .arg(&script)
            .current_dir(&repo)
            .output()
            .map_err(|source| Error::Spawn {
                command: script.display().to_string(),
                source,
            })?;
        if !output.status.success() {
            return Err(Error::Start {
                status: output.status.to_string(),
                output: format!(
                    "{}{}",
                    String::from_utf8_lossy(&output.stdout),
                    String::from_utf8_lossy(&output.stderr)
                ),
            });
        }
        Ok(ControlPlane { repo, dir })
    }

    /// The repository root.
    pub fn repo(&self) -> &Path {
        &self.repo
    }

    /// The admin kubeconfig (`target/control-plane/kubeconfig`).
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }

    /// Path of a control-plane binary (`kubectl`, `helm`, ...).
    pub fn bin(&self, name: &str) -> PathBuf {
        self.dir.join("bin").join(name)
    }

    /// Root of the per-pod exec work dirs: `<pods_dir>/<namespace>/<pod>`.
    pub fn pods_dir(&self) -> PathBuf {
        self.dir.join("pods")
    }

    /// Run state: pid files, `ports.env` (ports and `DOUBLE_CONTROL`, the
    /// Cartridge double's control socket).
    pub fn run_dir(&self) -> PathBuf {
        self.dir.join("run")
    }

    /// Root of the hostPath volumes the provisioner creates.
    pub fn volumes_dir(&self) -> PathBuf {
        self.dir.join("volumes")
    }

    /// Directory holding one log file per component.
    pub fn logs_dir(&self) -> PathBuf {
        self.dir.join("logs")
    }

    /// The admin configuration (cluster URL, CA, client certificate) read from
    /// the admin kubeconfig.
    pub async fn config(&self) -> Result<Config> {
        let path = self.kubeconfig();
        let kubeconfig_error = |message: String| Error::Kubeconfig {
            path: path.clone(),
            message,
        };
        let kubeconfig =
            Kubeconfig::read_from(&path).map_err(|e| kubeconfig_error(e.to_string()))?;
        Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .map_err(|e| kubeconfig_error(e.to_string()))
    }

    /// A client authenticated as the cluster admin.
    pub async fn client(&self) -> Result<Client> {
        Ok(Client::try_from(self.config().await?)?)
    }

    /// The CA certificate (PEM) that signed the apiserver's serving certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("certs/ca.crt")
    }

    /// Requests a token for the ServiceAccount `namespace/name` through the
    /// TokenRequest API (`serviceaccounts/token` create, as the admin),
    /// valid for `ttl` (the apiserver raises anything below 10 minutes to 10
    /// minutes). The token is bound to the ServiceAccount only: it stops
    /// working when the ServiceAccount is deleted.
    pub async fn service_account_token(
        &self,
        namespace: &str,
        name: &str,
        ttl: Duration,
    ) -> Result<String> {
        let request = TokenRequest {
            // No audiences: the apiserver's own, as for a projected token.
            spec: Some(TokenRequestSpec {
                expiration_seconds: Some(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX)),
                ..TokenRequestSpec::default()
            }),
            ..TokenRequest::default()
        };
        let answer = Api::<ServiceAccount>::namespaced(self.client().await?, namespace)
            .create_token_request(name, &PostParams::default(), &request)
            .await?;
        answer
            .status
            .and_then(|s| s.token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Error::Token {
                service_account: format!("{namespace}/{name}"),
            })
    }

    /// A client that authenticates with the bearer `token` only (no client
    /// certificate): the admin kubeconfig's cluster URL and CA, nothing else
    /// of the admin's identity. With a ServiceAccount's token, every request
    /// is authorized exactly as the ServiceAccount's RBAC allows, as for the
    /// operator in its pod. The token is not refreshed.
    pub async fn client_with_token(&self, token: &str) -> Result<Client> {
        let admin = self.config().await?;
        let mut config = Config::new(admin.cluster_url.clone());
        config.root_cert = admin.root_cert.clone();
        config.tls_server_name = admin.tls_server_name.clone();
        config.auth_info = AuthInfo {
            token: Some(token.to_string().into()),
            ..AuthInfo::default()
        };
        Ok(Client::try_from(config)?)
    }

    /// A client acting as the ServiceAccount `namespace/name`: a fresh token
    /// from [`Self::service_account_token`] (valid one hour) in
    /// [`Self::client_with_token`].
    pub async fn service_account_client(&self, namespace: &str, name: &str) -> Result<Client> {
        let token = self
            .service_account_token(namespace, name, Duration::from_secs(3600))
            .await?;
        self.client_with_token(&token).await
    }

    /// Writes a kubeconfig at `path` that authenticates with the bearer
    /// `token` against this control plane (its URL, its CA file), for a local
    /// process that should run with a ServiceAccount's permissions (e.g. the
    /// operator run with `KUBECONFIG=path`).
    pub async fn write_token_kubeconfig(&self, token: &str, path: &Path) -> Result<()> {
        let admin = self.config().await?;
        let kubeconfig = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "local", "cluster": {
                "server": admin.cluster_url.to_string(),
                "certificate-authority": self.ca_file(),
            }}],
            "users": [{"name": "token", "user": {"token": token}}],
            "contexts": [{"name": "token", "context": {"cluster": "local", "user": "token"}}],
            "current-context": "token",
        });
        std::fs::write(path, kubeconfig.to_string()).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })
    }

    /// A command for one of the control plane's binaries with `KUBECONFIG`
    /// pointing at the admin kubeconfig.
    pub fn command(&self, bin: &str) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(self.bin(bin));
        cmd.env("KUBECONFIG", self.kubeconfig())
            .current_dir(&self.repo)
            .kill_on_drop(true);
        cmd
    }

    /// The last `lines` lines of every component's log, for failure reports.
    pub fn log_tails(&self, lines: usize) -> String {
        let mut out = String::new();
        let Ok(entries) = std::fs::read_dir(self.logs_dir()) else {
            return format!("(no logs in {})\n", self.logs_dir().display());
        };
        let mut files: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        files.sort();
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            let all: Vec<&str> = text.lines().collect();
            let tail = &all[all.len().saturating_sub(lines)..];
            let _ = writeln!(out, "==> {} <==", file.display());
            for line in tail {
                let _ = writeln!(out, "    {line}");
            }
        }
        out
    }
}

/// Runs a command to completion and returns its standard output; a failure
/// exit status becomes [`Error::Command`] with its standard error.
pub async fn output(cmd: &mut tokio::process::Command) -> Result<String> {
    let command = format!("{:?}", cmd.as_std());
    let out = cmd.output().await.map_err(|source| Error::Spawn {
        command: command.clone(),
        source,
    })?;
    if !out.status.success() {
        return Err(Error::Command {
            command,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A namespaced Kubernetes object type the harness can get, watch and wait for.
pub trait NamespacedObject:
    Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType: Default>
    + Clone
    + std::fmt::Debug
    + serde::de::DeserializeOwned
    + Send
    + 'static
{
}

impl<K> NamespacedObject for K where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType: Default>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + 'static
{
}

/// What a test gets: its own namespace and an admin client.
#[derive(Clone)]
pub struct TestContext {
    /// The test's namespace (created for it, deleted after it).
    pub namespace: String,
    /// Admin client of the control plane.
    pub client: Client,
    /// The control plane.
    pub cp: &'static ControlPlane,
}

impl TestContext {
    /// A namespaced API in the test's namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// Watches the object `name` (in the test namespace) until `cond` holds,
    /// for at most [`default_timeout`]; `None` when the object does not exist.
    async fn await_object<K: NamespacedObject>(
        &self,
        name: &str,
        what: &str,
        cond: impl Condition<K> + Clone,
    ) -> Result<Option<K>> {
        let timeout = default_timeout();
        let deadline = tokio::time::Instant::now() + timeout;
        let what = format!("{what} ({}/{name})", self.namespace);
        loop {
            let watch = await_condition(self.api::<K>(), name, cond.clone());
            match tokio::time::timeout_at(deadline, watch).await {
                Err(_) => return Err(Error::Timeout { timeout, what }),
                Ok(Ok(obj)) => return Ok(obj),
                // A watch can expire (410 Gone) on a busy apiserver: watch
                // again from a fresh list, until the deadline.
                Ok(Err(e)) if tokio::time::Instant::now() < deadline => {
                    eprintln!("watch for {what} restarted: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Ok(Err(e)) => {
                    return Err(Error::Watch {
                        what,
                        message: e.to_string(),
                    });
                }
            }
        }
    }

    /// Waits until `cond` holds for the object `name` (in the test namespace),
    /// for at most [`default_timeout`], and returns the object.
    pub async fn wait_for<K: NamespacedObject>(
        &self,
        name: &str,
        what: &str,
        cond: impl Condition<K> + Clone,
    ) -> Result<K> {
        self.await_object(name, what, cond)
            .await?
            .ok_or_else(|| Error::Gone {
                what: format!("{what} ({}/{name})", self.namespace),
            })
    }

    /// Waits until the object `name` (in the test namespace) is gone, for at
    /// most [`default_timeout`]. A new object of the same name (another uid)
    /// counts as gone.
    pub async fn wait_deleted<K: NamespacedObject>(&self, name: &str, what: &str) -> Result<()> {
        let Some(obj) = self.api::<K>().get_opt(name).await? else {
            return Ok(());
        };
        let uid = obj.meta().uid.clone().unwrap_or_default();
        // Gone, or replaced by another object of the same name.
        let gone = move |obj: Option<&K>| {
            obj.is_none_or(|o| o.meta().uid.as_deref() != Some(uid.as_str()))
        };
        self.await_object(name, what, gone).await.map(drop)
    }

    /// Polls `check` every 200 ms until it returns `Some`, for at most
    /// [`default_timeout`].
    pub async fn eventually<T, F, Fut>(&self, what: &str, mut check: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Option<T>>>,
    {
        let timeout = default_timeout();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(v) = check().await? {
                return Ok(v);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::Timeout {
                    timeout,
                    what: format!("{what} (namespace {})", self.namespace),
                });
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Runs `command` in `pod` over the exec subresource (kwok runs it as a
    /// local process in the pod's work dir), feeding `stdin` and closing it,
    /// and collects stdout, stderr and the exit code.
    pub async fn exec(
        &self,
        pod: &str,
        container: Option<&str>,
        command: &[&str],
        stdin: Option<&[u8]>,
    ) -> Result<ExecOutput> {
        let exec_error = |message: String| Error::Exec {
            pod: format!("{}/{pod}", self.namespace),
            message,
        };
        let mut params = AttachParams::default()
            .stdin(stdin.is_some())
            .stdout(true)
            .stderr(true);
        if let Some(c) = container {
            params = params.container(c);
        }
        let mut process = self
            .api::<Pod>()
            .exec(pod, command.iter().copied(), &params)
            .await?;
        let status = process
            .take_status()
            .ok_or_else(|| exec_error("no status channel".into()))?;
        if let (Some(data), Some(mut writer)) = (stdin, process.stdin()) {
            writer
                .write_all(data)
                .await
                .map_err(|e| exec_error(format!("writing stdin: {e}")))?;
            writer
                .shutdown()
                .await
                .map_err(|e| exec_error(format!("closing stdin: {e}")))?;
        }
        let mut out_reader = process.stdout();
        let mut err_reader = process.stderr();
        let read_out = async {
            let mut buf = Vec::new();
            if let Some(r) = out_reader.as_mut() {
                r.read_to_end(&mut buf).await?;
            }
            Ok::<_, std::io::Error>(buf)
        };
        let read_err = async {
            let mut buf = Vec::new();
            if let Some(r) = err_reader.as_mut() {
                r.read_to_end(&mut buf).await?;
            }
            Ok::<_, std::io::Error>(buf)
        };
        let (stdout, stderr, status) = tokio::join!(read_out, read_err, status);
        let stdout = stdout.map_err(|e| exec_error(format!("reading stdout: {e}")))?;
        let stderr = stderr.map_err(|e| exec_error(format!("reading stderr: {e}")))?;
        process
            .join()
            .await
            .map_err(|e| exec_error(format!("stream: {e}")))?;
        Ok(ExecOutput {
            stdout: String::from_utf8_lossy(&stdout).into_owned(),
            stderr: String::from_utf8_lossy(&stderr).into_owned(),
            status,
        })
    }

    /// `kubectl ARGS -n <namespace>` as admin; returns its stdout.
    pub async fn kubectl(&self, args: &[&str]) -> Result<String> {
        output(
            self.cp
                .command("kubectl")
                .args(args)
                .args(["-n", &self.namespace]),
        )
        .await
    }

    /// Installs the operator's CRDs from `crds/` as a user would (`kubectl
    /// apply --server-side`) and waits until they are established and known
    /// to kubectl. Idempotent; tests call it concurrently.
    pub async fn install_crds(&self) -> Result<()> {
        let dir = self.cp.repo().join("crds");
        output(
            self.cp
                .command("kubectl")
                .args([
                    "apply",
                    "--server-side",
                    "--force-conflicts",
                    "--field-manager=tarantool-operator-tests",
                    "-f",
                ])
                .arg(&dir),
        )
        .await?;
        // Polled rather than `kubectl wait --for=condition=Established`: that
        // fails at once (".status.conditions accessor error: <nil>") on a CRD
        // the apiserver has not given any condition yet, right after the apply.
        let crds = Api::<CustomResourceDefinition>::all(self.client.clone());
        for crd in ["clusters.tarantool.io", "roles.tarantool.io"] {
            self.eventually(&format!("CRD {crd} to be established"), || async {
                let found = crds.get_opt(crd).await?;
                Ok(conditions::is_crd_established()
                    .matches_object(found.as_ref())
                    .then_some(()))
            })
            .await?;
        }
        // kubectl caches discovery; a CRD that just became established may
        // still be unknown to it for a moment.
        self.eventually("kubectl to know roles.tarantool.io", || async {
            Ok(self.kubectl(&["get", "roles.tarantool.io"]).await.ok())
        })
        .await
        .map(drop)
    }

    /// `helm ARGS -n <namespace>` as admin; returns its stdout.
    pub async fn helm(&self, args: &[&str]) -> Result<String> {
        output(
            self.cp
                .command("helm")
                .args(args)
                .args(["--namespace", &self.namespace]),
        )
        .await
    }

    /// Events and pods of the namespace, for failure reports.
    pub async fn describe(&self) -> String {
        let mut out = String::new();
        match self.api::<Pod>().list(&ListParams::default()).await {
            Ok(pods) => {
                for p in pods {
                    let status = p.status.unwrap_or_default();
                    let _ = writeln!(
                        out,
                        "pod {} node={} phase={} conditions={:?}",
                        p.metadata.name.unwrap_or_default(),
                        p.spec.and_then(|s| s.node_name).unwrap_or_default(),
                        status.phase.unwrap_or_default(),
                        status
                            .conditions
                            .unwrap_or_default()
                            .into_iter()
                            .map(|c| format!("{}={}", c.type_, c.status))
                            .collect::<Vec<_>>()
                    );
                }
            }
            Err(e) => {
                let _ = writeln!(out, "(listing pods failed: {e})");
            }
        }
        match self.api::<Event>().list(&ListParams::default()).await {
            Ok(events) => {
                for e in events {
                    let obj = e.involved_object;
                    let _ = writeln!(
                        out,
                        "event {} {}/{}: {} {}",
                        e.type_.unwrap_or_default(),
                        obj.kind.unwrap_or_default(),
                        obj.name.unwrap_or_default(),
                        e.reason.unwrap_or_default(),
                        e.message.unwrap_or_default()
                    );
                }
            }
            Err(e) => {
                let _ = writeln!(out, "(listing events failed: {e})");
            }
        }
        out
    }
}

/// Stdout, stderr and the final status of an exec.
#[derive(Debug, Clone)]
pub struct ExecOutput {
    /// Everything the command wrote to stdout.
    pub stdout: String,
    /// Everything the command wrote to stderr.
    pub stderr: String,
    /// The status the server sent at the end (`Success` or `Failure`).
    pub status: Option<Status>,
}

impl ExecOutput {
    /// The command's exit code: 0 on success, the `ExitCode` cause of a
    /// `NonZeroExitCode` failure, `None` when the status says neither.
    pub fn exit_code(&self) -> Option<i32> {
        let status = self.status.as_ref()?;
        if status.status.as_deref() == Some("Success") {
            return Some(0);
        }
        status
            .details
            .as_ref()?
            .causes
            .as_ref()?
            .iter()
            .find(|c| c.reason.as_deref() == Some("ExitCode"))?
            .message
            .as_ref()?
            .parse()
            .ok()
    }
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A DNS-1123 namespace name unique to this process and call.
fn namespace_name(hint: &str) -> String {
    let mut base: String = hint
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    base.truncate(40);
    let base = base.trim_matches('-');
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("t-{base}-{}-{n}", std::process::id())
}

async fn create_namespace(cp: &'static ControlPlane, hint: &str) -> Result<TestContext> {
    let client = cp.client().await?;
    let namespace = namespace_name(hint);
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(namespace.clone()),
            labels: Some([(NAMESPACE_LABEL.to_string(), hint.to_string())].into()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await?;
    let ctx = TestContext {
        namespace,
        client,
        cp,
    };
    // Pods are refused until the ServiceAccount controller made "default".
    let sa = ctx.api::<ServiceAccount>();
    ctx.eventually("the default ServiceAccount", || async {
        Ok(sa.get_opt("default").await?)
    })
    .await?;
    Ok(ctx)
}

/// Removes every finalizer from the namespace's Roles.
async fn release_roles(ctx: &TestContext) {
    let resource = kube::api::ApiResource {
        group: "tarantool.io".into(),
        version: "v1alpha1".into(),
        api_version: "tarantool.io/v1alpha1".into(),
        kind: "Role".into(),
        plural: "roles".into(),
    };
    let roles: Api<kube::api::DynamicObject> =
        Api::namespaced_with(ctx.client.clone(), &ctx.namespace, &resource);
    // No CRDs installed, no Roles: nothing to release.
    let Ok(list) = roles.list(&kube::api::ListParams::default()).await else {
        return;
    };
    let patch = serde_json::json!({"metadata": {"finalizers": null}});
    for role in list.items {
        let name = role.metadata.name.unwrap_or_default();
        if let Err(e) = roles
            .patch(
                &name,
                &kube::api::PatchParams::default(),
                &kube::api::Patch::Merge(&patch),
            )
            .await
        {
            eprintln!("releasing Role {name}: {e}");
        }
    }
}

/// Runs one test in its own namespace of the shared control plane.
///
/// Starts or reuses the control plane, creates a namespace named after
/// `name`, runs `test`, and deletes the namespace afterwards (set
/// `HARNESS_KEEP_NAMESPACES=1` to keep it). When the test returns an error or
/// panics, it prints the namespace's pods and events and the tail of every
/// component's log, then fails the test with the original error or panic.
pub async fn run<F, Fut, E>(name: &str, test: F)
where
    F: FnOnce(TestContext) -> Fut,
    Fut: Future<Output = std::result::Result<(), E>>,
    E: Display,
{
    let cp = match ControlPlane::get() {
        Ok(cp) => cp,
        Err(e) => panic!("{e}"),
    };
    let ctx = match create_namespace(cp, name).await {
        Ok(ctx) => ctx,
        Err(e) => panic!("creating the test namespace: {e}\n{}", cp.log_tails(40)),
    };
    // On the heap: a test's future can outgrow a test thread's 2 MiB stack.
    let outcome = AssertUnwindSafe(Box::pin(test(ctx.clone())))
        .catch_unwind()
        .await;
    let failure = match &outcome {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(_) => Some("the test panicked".to_string()),
    };
    if let Some(failure) = &failure {
        eprintln!(
            "test {name} failed in namespace {}: {failure}\n--- namespace ---\n{}--- component logs ---\n{}",
            ctx.namespace,
            ctx.describe().await,
            cp.log_tails(40)
        );
    }
    if std::env::var_os("HARNESS_KEEP_NAMESPACES").is_none() {
        // The operator that would drain the Roles is gone by now: their
        // finalizers would hold the namespace forever.
        release_roles(&ctx).await;
        let deleted = Api::<Namespace>::all(ctx.client.clone())
            .delete(&ctx.namespace, &DeleteParams::background())
            .await;
        if let Err(e) = deleted {
            eprintln!("deleting namespace {}: {e}", ctx.namespace);
        }
    }
    match outcome {
        Err(panic) => std::panic::resume_unwind(panic),
        Ok(Err(e)) => panic!("test {name} failed: {e}"),
        Ok(Ok(())) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_names_are_dns_labels() {
        let n = namespace_name("StatefulSet OnDelete/with_a_very_long_name_that_goes_on_and_on");
        assert!(n.len() <= 63, "{n}");
        assert!(
            n.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        );
        assert_ne!(namespace_name("a"), namespace_name("a"));
    }
}
