//! Injected failures: which endpoint, what goes wrong, how often.

use std::collections::VecDeque;
use std::time::Duration;

use axum::http::Method;

/// One endpoint of the runner RPC (protocol §2), to aim a [`Fault`] at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Endpoint {
    /// `POST /rpc/v2/ping`.
    Ping,
    /// `POST /rpc/v2/stage`: the queue's long poll.
    Request,
    /// `POST /rpc/v2/stage/{id}?machine=`.
    Accept,
    /// `GET /rpc/v2/stage/{id}`.
    Details,
    /// `PUT /rpc/v2/stage/{id}`: before-all and after-all.
    UpdateStage,
    /// `PUT /rpc/v2/step/{id}`: before and after.
    UpdateStep,
    /// `POST /rpc/v2/build/{id}/watch`.
    Watch,
    /// `POST /rpc/v2/step/{id}/logs/batch`.
    Batch,
    /// `POST /rpc/v2/step/{id}/logs/upload`.
    Upload,
    /// Every request, whatever its path.
    Any,
}

impl Endpoint {
    /// The endpoint a request goes to, `None` for a path the server does not
    /// route.
    pub(crate) fn classify(method: &Method, path: &str) -> Option<Self> {
        let rest = path.strip_prefix("/rpc/v2/")?;
        let parts: Vec<&str> = rest.split('/').collect();
        let endpoint = match (method.as_str(), parts.as_slice()) {
            ("POST", ["ping"]) => Self::Ping,
            ("POST", ["stage"]) => Self::Request,
            ("POST", ["stage", _]) => Self::Accept,
            ("GET", ["stage", _]) => Self::Details,
            ("PUT", ["stage", _]) => Self::UpdateStage,
            ("PUT", ["step", _]) => Self::UpdateStep,
            ("POST", ["build", _, "watch"]) => Self::Watch,
            ("POST", ["step", _, "logs", "batch"]) => Self::Batch,
            ("POST", ["step", _, "logs", "upload"]) => Self::Upload,
            _ => return None,
        };
        Some(endpoint)
    }
}

/// What goes wrong on an endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Answer with this status instead of handling the call. The body is
    /// Drone's for that status: `Optimistic Lock Error` for 409, a message
    /// for 500, nothing for 204 and the 5xx a proxy would send.
    Status(u16),
    /// Answer with this status and this text.
    StatusWithMessage(u16, String),
    /// Close the connection without answering: what a crashed server or a
    /// network cut looks like to the client.
    DropConnection,
    /// Wait this long, then handle the call normally: a slow server.
    Delay(Duration),
    /// Handle the call (it is applied: stored, versions bumped), then
    /// close the connection without sending the answer: a proxy timing out
    /// after forwarding, a network cut on the way back. The client cannot
    /// tell it from [`DropConnection`](Self::DropConnection).
    LoseAnswer,
}

/// The armed faults: counted ones first (in the order armed), then standing
/// ones; an endpoint's own before [`Endpoint::Any`].
#[derive(Debug, Default)]
pub(crate) struct Faults {
    counted: VecDeque<(Endpoint, Fault, usize)>,
    standing: Vec<(Endpoint, Fault)>,
}

impl Faults {
    pub(crate) fn arm(&mut self, endpoint: Endpoint, fault: Fault, times: usize) {
        if times > 0 {
            self.counted.push_back((endpoint, fault, times));
        }
    }

    pub(crate) fn arm_standing(&mut self, endpoint: Endpoint, fault: Fault) {
        self.standing.push((endpoint, fault));
    }

    pub(crate) fn clear(&mut self) {
        self.counted.clear();
        self.standing.clear();
    }

    /// The fault the next request to `endpoint` meets, using up one count.
    pub(crate) fn take(&mut self, endpoint: Option<Endpoint>) -> Option<Fault> {
        for target in [endpoint, Some(Endpoint::Any)].into_iter().flatten() {
            if let Some(index) = self.counted.iter().position(|(e, _, _)| *e == target) {
                let entry = &mut self.counted[index];
                let fault = entry.1.clone();
                entry.2 -= 1;
                if entry.2 == 0 {
                    self.counted.remove(index);
                }
                return Some(fault);
            }
        }
        for target in [endpoint, Some(Endpoint::Any)].into_iter().flatten() {
            if let Some((_, fault)) = self.standing.iter().find(|(e, _)| *e == target) {
                return Some(fault.clone());
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_every_endpoint() {
        let cases = [
            (Method::POST, "/rpc/v2/ping", Some(Endpoint::Ping)),
            (Method::POST, "/rpc/v2/stage", Some(Endpoint::Request)),
            (Method::POST, "/rpc/v2/stage/4", Some(Endpoint::Accept)),
            (Method::GET, "/rpc/v2/stage/4", Some(Endpoint::Details)),
            (Method::PUT, "/rpc/v2/stage/4", Some(Endpoint::UpdateStage)),
            (Method::PUT, "/rpc/v2/step/9", Some(Endpoint::UpdateStep)),
            (Method::POST, "/rpc/v2/build/7/watch", Some(Endpoint::Watch)),
            (
                Method::POST,
                "/rpc/v2/step/9/logs/batch",
                Some(Endpoint::Batch),
            ),
            (
                Method::POST,
                "/rpc/v2/step/9/logs/upload",
                Some(Endpoint::Upload),
            ),
            (Method::GET, "/rpc/v2/step/9", None),
            (Method::POST, "/rpc/v1/request", None),
        ];
        for (method, path, expected) in cases {
            assert_eq!(
                Endpoint::classify(&method, path),
                expected,
                "{method} {path}"
            );
        }
    }

    #[test]
    fn counted_faults_run_out_and_standing_ones_stay() {
        let mut faults = Faults::default();
        faults.arm(Endpoint::Accept, Fault::Status(502), 2);
        faults.arm_standing(Endpoint::Any, Fault::Status(503));
        assert_eq!(
            faults.take(Some(Endpoint::Accept)),
            Some(Fault::Status(502))
        );
        assert_eq!(
            faults.take(Some(Endpoint::Details)),
            Some(Fault::Status(503))
        );
        assert_eq!(
            faults.take(Some(Endpoint::Accept)),
            Some(Fault::Status(502))
        );
        assert_eq!(
            faults.take(Some(Endpoint::Accept)),
            Some(Fault::Status(503))
        );
        faults.clear();
        assert_eq!(faults.take(Some(Endpoint::Accept)), None);
        assert_eq!(faults.take(None), None);
    }
}
