//! [`DroneManager`]: the [`Manager`] contract over Drone's runner RPC v2.

use async_trait::async_trait;
use reqwest::{Method, StatusCode};
use runnerkit_core::drone::{Details, Filter, Netrc, Stage, Step};
use runnerkit_core::{Line, LineRef, LogUpload, Manager, ManagerError};

use crate::rpc::{Call, Expect, Rpc, decode, json_body};
use crate::{DroneConfig, Error};

/// A [`Manager`] that talks to a Drone server (2.x) over its HTTP runner
/// protocol v2, as `reference/drone-rpc-protocol.md` describes it.
///
/// # Behaviour per answer
///
/// | answer | result |
/// | --- | --- |
/// | 204 on Request / Watch | `Ok(None)` / `Ok(false)` at once: ask again |
/// | 409 | [`ManagerError::Conflict`], never retried |
/// | 401, 403 | [`ManagerError::Unauthorized`], never retried: fix the secret |
/// | 404 | [`ManagerError::NotFound`] |
/// | 500, 505–599 | [`ManagerError::Server`] with the server's message; for the calls safe to repeat (details, the stage and step updates, which carry their version, and the log upload, which replaces the stored log) retried as 502–504 are, then the last error |
/// | 502–504, transport errors, timeouts | retried with capped, jittered exponential backoff ([`RetryPolicy`](crate::RetryPolicy)), bounded by its `max_elapsed`, then the last error |
/// | 3xx | [`ManagerError::Server`]: redirects are never followed |
///
/// A retried update whose first attempt did reach the server (the proxy
/// timed out after forwarding it) meets a 409 on the retry: the protocol
/// cannot tell the two apart, so that is reported as a conflict. A Batch
/// appends, so one whose answer was lost ([`ManagerError::maybe_applied`])
/// is not repeated: its lines may be missing from the live view, never
/// shown twice (the upload has them all).
///
/// # Merge-back
///
/// On success, `before_all`/`after_all` copy the answer's `version` and
/// `updated` into the stage and, matched by `number`, each step's `id`,
/// `step_id`, `version`, `started` and `stopped`; `before`/`after` copy the
/// same five fields of the step. On error nothing is changed.
///
/// # Secrets
///
/// The token is sent only as the `X-Drone-Token` header, marked sensitive,
/// and never logged; bodies (which carry secrets in Detail answers) are
/// never logged either.
pub struct DroneManager {
    rpc: Rpc,
}

impl std::fmt::Debug for DroneManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DroneManager")
            .field("server", &self.rpc.base())
            .finish_non_exhaustive()
    }
}

impl DroneManager {
    /// A client for the server `config` names. Nothing is sent yet; call
    /// [`ping`](Self::ping) to check the server and the secret.
    ///
    /// # Errors
    /// An invalid setting ([`Error::InvalidSetting`], [`Error::MissingSetting`]),
    /// or TLS or the HTTP client could not be set up.
    pub fn new(config: &DroneConfig) -> Result<Self, Error> {
        Ok(Self {
            rpc: Rpc::new(config)?,
        })
    }

    /// A client configured from `DRONE_RPC_*` ([`DroneConfig::from_env`]).
    ///
    /// # Errors
    /// As [`DroneConfig::from_env`] and [`new`](Self::new).
    pub fn from_env() -> Result<Self, Error> {
        Self::new(&DroneConfig::from_env()?)
    }

    /// The server's base URL, `proto://host`.
    pub fn server(&self) -> &str {
        self.rpc.base()
    }

    /// Checks that the server is reachable and accepts the secret
    /// (`POST /rpc/v2/ping`), for `--dry-run`. One attempt, no retry.
    ///
    /// # Errors
    /// [`ManagerError::Unauthorized`] for a wrong secret (401) or a server
    /// without one (403), [`ManagerError::Transport`] when it cannot be
    /// reached, [`ManagerError::Server`] for any other answer.
    pub async fn ping(&self) -> Result<(), ManagerError> {
        let call = Call {
            name: "ping",
            method: Method::POST,
            url: self.rpc.url("/rpc/v2/ping")?,
            body: None,
            expect: Expect::Nothing,
            retry_transient: false,
            idempotent: false,
            appends: false,
        };
        self.rpc.send(&call).await.map(drop)
    }

    fn call(
        &self,
        name: &'static str,
        method: Method,
        path: &str,
        body: Option<bytes::Bytes>,
        expect: Expect,
    ) -> Result<Call, ManagerError> {
        Ok(Call {
            name,
            method,
            url: self.rpc.url(path)?,
            body,
            expect,
            retry_transient: true,
            idempotent: false,
            appends: false,
        })
    }

    async fn update_stage(
        &self,
        name: &'static str,
        stage: &mut Stage,
    ) -> Result<(), ManagerError> {
        let call = self
            .call(
                name,
                Method::PUT,
                &format!("/rpc/v2/stage/{}", stage.id),
                Some(json_body(&*stage)?),
                Expect::Json,
            )?
            .idempotent();
        let answer = self.rpc.send(&call).await?;
        let updated: Stage = decode(name, &answer.body)?;
        merge_stage(stage, &updated);
        Ok(())
    }

    async fn update_step(&self, name: &'static str, step: &mut Step) -> Result<(), ManagerError> {
        let call = self
            .call(
                name,
                Method::PUT,
                &format!("/rpc/v2/step/{}", step.id),
                Some(json_body(&*step)?),
                Expect::Json,
            )?
            .idempotent();
        let answer = self.rpc.send(&call).await?;
        let updated: Step = decode(name, &answer.body)?;
        merge_step(step, &updated);
        Ok(())
    }

    /// Posts `lines`; `idempotent` for the upload, which replaces the
    /// stored log, not for a batch, which appends.
    async fn send_lines(
        &self,
        name: &'static str,
        path: String,
        body: bytes::Bytes,
        idempotent: bool,
    ) -> Result<(), ManagerError> {
        let mut call = self.call(name, Method::POST, &path, Some(body), Expect::Nothing)?;
        call.idempotent = idempotent;
        call.appends = !idempotent;
        self.rpc.send(&call).await.map(drop)
    }
}

#[async_trait]
impl Manager for DroneManager {
    /// `POST /rpc/v2/stage` with the filter; a long poll. A stage with id 0
    /// (which Drone's runners ignore) is `Ok(None)` too.
    async fn request(&self, filter: &Filter) -> Result<Option<Stage>, ManagerError> {
        let call = self.call(
            "request",
            Method::POST,
            "/rpc/v2/stage",
            Some(json_body(filter)?),
            Expect::LongPoll,
        )?;
        let answer = self.rpc.send(&call).await?;
        if answer.status == StatusCode::NO_CONTENT {
            return Ok(None);
        }
        let stage: Stage = decode("request", &answer.body)?;
        if stage.id == 0 {
            tracing::debug!("the server offered a stage with id 0; ignored");
            return Ok(None);
        }
        Ok(Some(stage))
    }

    /// `POST /rpc/v2/stage/{id}?machine={machine}`.
    async fn accept(&self, stage_id: i64, machine: &str) -> Result<Stage, ManagerError> {
        let mut call = self.call(
            "accept",
            Method::POST,
            &format!("/rpc/v2/stage/{stage_id}"),
            None,
            Expect::Json,
        )?;
        call.url.query_pairs_mut().append_pair("machine", machine);
        let answer = self.rpc.send(&call).await?;
        decode("accept", &answer.body)
    }

    /// `GET /rpc/v2/stage/{id}`; the config's `Data` arrives base64-decoded.
    async fn details(&self, stage_id: i64) -> Result<Details, ManagerError> {
        let call = self
            .call(
                "details",
                Method::GET,
                &format!("/rpc/v2/stage/{stage_id}"),
                None,
                Expect::Json,
            )?
            .idempotent();
        let answer = self.rpc.send(&call).await?;
        decode("details", &answer.body)
    }

    /// Always `Ok(None)`: protocol v2 carries the netrc inside the details.
    async fn netrc(&self, _repo_id: i64) -> Result<Option<Netrc>, ManagerError> {
        Ok(None)
    }

    /// `POST /rpc/v2/build/{id}/watch`; a long poll. Exactly 200 means
    /// cancelled.
    async fn watch(&self, build_id: i64) -> Result<bool, ManagerError> {
        let call = self.call(
            "watch",
            Method::POST,
            &format!("/rpc/v2/build/{build_id}/watch"),
            None,
            Expect::LongPoll,
        )?;
        let answer = self.rpc.send(&call).await?;
        Ok(answer.status == StatusCode::OK)
    }

    /// `PUT /rpc/v2/stage/{id}` with status `running` and every step.
    /// Retried on 500 as every update by version is: a repeat of one the
    /// server did apply meets a 409, never a second stage.
    async fn before_all(&self, stage: &mut Stage) -> Result<(), ManagerError> {
        self.update_stage("before_all", stage).await
    }

    /// `PUT /rpc/v2/stage/{id}` with the final status and every step.
    async fn after_all(&self, stage: &mut Stage) -> Result<(), ManagerError> {
        self.update_stage("after_all", stage).await
    }

    /// `PUT /rpc/v2/step/{id}` with status `running`.
    async fn before(&self, step: &mut Step) -> Result<(), ManagerError> {
        self.update_step("before", step).await
    }

    /// `PUT /rpc/v2/step/{id}` with the final status.
    async fn after(&self, step: &mut Step) -> Result<(), ManagerError> {
        self.update_step("after", step).await
    }

    /// `POST /rpc/v2/step/{id}/logs/batch`. An empty batch sends nothing.
    async fn write(&self, step_id: i64, lines: &[Line]) -> Result<(), ManagerError> {
        if lines.is_empty() {
            return Ok(());
        }
        let body = wire_lines(|each| {
            lines.iter().for_each(|l| each(l.as_ref()));
            Ok(())
        })?;
        self.send_lines(
            "write",
            format!("/rpc/v2/step/{step_id}/logs/batch"),
            body,
            false,
        )
        .await
    }

    /// `POST /rpc/v2/step/{id}/logs/upload`; an empty log is sent as `[]`.
    /// The body is encoded once, read from the log as it goes (a kept log
    /// may live in a file), and sent again as is on a retry.
    async fn upload(&self, step_id: i64, log: LogUpload<'_>) -> Result<(), ManagerError> {
        let body = wire_lines(|each| log.for_each(each))?;
        self.send_lines(
            "upload",
            format!("/rpc/v2/step/{step_id}/logs/upload"),
            body,
            true,
        )
        .await
    }
}

/// A JSON array of Drone's `Line` (protocol §4.11) for the lines `read`
/// gives, encoded straight from the borrowed text. An empty one is `[]`,
/// never `null`: the server stores an upload verbatim and serves it back as
/// an array.
fn wire_lines(
    read: impl FnOnce(&mut dyn FnMut(LineRef<'_>)) -> std::io::Result<()>,
) -> Result<bytes::Bytes, ManagerError> {
    let mut body = Vec::new();
    body.push(b'[');
    let mut failed = None;
    read(&mut |line| {
        if failed.is_some() {
            return;
        }
        if body.len() > 1 {
            body.push(b',');
        }
        let wire = WireLine {
            pos: line.number,
            out: WithNewline(line.message),
            time: line.timestamp,
        };
        if let Err(e) = serde_json::to_writer(&mut body, &wire) {
            failed = Some(e);
        }
    })
    .map_err(|e| ManagerError::Invalid(format!("cannot read the step's kept log: {e}")))?;
    if let Some(e) = failed {
        return Err(ManagerError::Invalid(format!("cannot encode the log: {e}")));
    }
    body.extend_from_slice(b"]\n");
    Ok(bytes::Bytes::from(body))
}

/// Drone's `Line` as sent, borrowing the text.
#[derive(serde::Serialize)]
struct WireLine<'a> {
    pos: u64,
    out: WithNewline<'a>,
    time: u64,
}

/// A line's text with the `\n` Drone's `out` carries.
struct WithNewline<'a>(&'a str);

impl serde::Serialize for WithNewline<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&format_args!("{}\n", self.0))
    }
}

/// Copies the server's answer to a stage update into the runner's copy
/// (protocol §5.8): versions and ids, nothing the runner decides itself.
fn merge_stage(stage: &mut Stage, answer: &Stage) {
    stage.version = answer.version;
    stage.updated = answer.updated;
    for step in &mut stage.steps {
        if let Some(from) = answer.steps.iter().find(|s| s.number == step.number) {
            merge_step(step, from);
        }
    }
}

fn merge_step(step: &mut Step, answer: &Step) {
    step.id = answer.id;
    step.step_id = answer.step_id;
    step.version = answer.version;
    step.started = answer.started;
    step.stopped = answer.stopped;
}

#[cfg(test)]
mod tests {
    use runnerkit_core::Status;

    use super::*;

    #[test]
    fn merge_copies_ids_and_versions_by_step_number() {
        let mut stage = Stage {
            id: 42,
            status: Status::Running,
            version: 3,
            steps: vec![
                Step {
                    number: 1,
                    name: "clone".into(),
                    step_id: 42,
                    ..Step::default()
                },
                Step {
                    number: 2,
                    name: "build".into(),
                    step_id: 42,
                    ..Step::default()
                },
            ],
            ..Stage::default()
        };
        let answer = Stage {
            id: 42,
            status: Status::Success,
            version: 4,
            updated: 99,
            steps: vec![
                Step {
                    id: 902,
                    number: 2,
                    step_id: 42,
                    version: 1,
                    name: "other".into(),
                    ..Step::default()
                },
                Step {
                    id: 901,
                    number: 1,
                    step_id: 42,
                    version: 1,
                    ..Step::default()
                },
            ],
            ..Stage::default()
        };
        merge_stage(&mut stage, &answer);
        assert_eq!(stage.version, 4);
        assert_eq!(stage.updated, 99);
        assert_eq!(stage.status, Status::Running, "status stays the runner's");
        assert_eq!((stage.steps[0].id, stage.steps[0].version), (901, 1));
        assert_eq!((stage.steps[1].id, stage.steps[1].version), (902, 1));
        assert_eq!(stage.steps[1].name, "build");
    }
}
