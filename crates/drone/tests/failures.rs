//! The client against the server's failure answers: 204, 409, 500, dropped
//! connections, slow answers, wrong or missing secrets, and the backoff.
//! Timing is measured on Tokio's paused clock, never on the wall clock.

mod common;

use std::time::Duration;

use common::*;
use runnerkit_core::{Manager, ManagerError, Status};
use runnerkit_drone::testing::{DroneServer, Endpoint, Fault, ServerConfig};
use runnerkit_drone::{DroneManager, RetryPolicy};
use tokio::time::Instant;

#[tokio::test(start_paused = true)]
async fn an_empty_long_poll_returns_none_at_once() {
    let server =
        DroneServer::start(ServerConfig::default().with_long_poll(Duration::from_secs(30)))
            .await
            .unwrap();
    let manager = manager(&server);
    let started = Instant::now();
    assert_eq!(manager.request(&filter()).await.unwrap(), None);
    // One held poll of the server's 30 s, then straight back to the caller:
    // no 10 s pause as in Drone's client.
    assert_eq!(started.elapsed(), Duration::from_secs(30));
    assert_eq!(server.requests().len(), 1);

    server.inject(Endpoint::Request, Fault::Status(204));
    let started = Instant::now();
    assert_eq!(manager.request(&filter()).await.unwrap(), None);
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[tokio::test(start_paused = true)]
async fn a_long_poll_is_answered_when_a_stage_arrives() {
    let server = server().await;
    let manager = manager(&server);
    let filter = filter();
    let poll = manager.request(&filter);
    let schedule = async {
        tokio::time::sleep(Duration::from_secs(5)).await;
        server.enqueue(details())
    };
    let (offered, stage_id) = tokio::join!(poll, schedule);
    assert_eq!(offered.unwrap().map(|s| s.id), Some(stage_id));
}

#[tokio::test]
async fn a_204_where_a_body_is_due_is_retried() {
    let server = server().await;
    let stage_id = server.enqueue(details());
    let manager = manager(&server);
    server.inject(Endpoint::Details, Fault::Status(204));
    let details = manager.details(stage_id).await.unwrap();
    assert_eq!(details.stage.id, stage_id);
    assert_eq!(
        requests_to(&server, "GET", &format!("/rpc/v2/stage/{stage_id}")).len(),
        2
    );
}

#[tokio::test]
async fn a_second_accept_is_a_conflict_and_not_retried() {
    let server = server().await;
    let stage_id = server.enqueue(details());
    let (first, second) = (manager(&server), manager(&server));
    let offered_to_both = (
        first.request(&filter()).await.unwrap().unwrap(),
        second.request(&filter()).await.unwrap().unwrap(),
    );
    assert_eq!(
        offered_to_both.0.id, offered_to_both.1.id,
        "no lease: both are offered it"
    );
    first.accept(stage_id, "runner-1").await.unwrap();
    let lost = second.accept(stage_id, "runner-2").await.unwrap_err();
    assert!(matches!(lost, ManagerError::Conflict), "{lost:?}");
    assert_eq!(server.stage(stage_id).unwrap().machine, "runner-1");
    let accepts = requests_to(&server, "POST", &format!("/rpc/v2/stage/{stage_id}"));
    assert_eq!(accepts.len(), 2);
    assert_eq!(accepts[1].status, Some(409));
}

#[tokio::test]
async fn a_stale_version_is_a_conflict_and_leaves_the_step_unchanged() {
    let server = server().await;
    server.enqueue(details());
    let manager = manager(&server);
    let stage = started(&manager, &["build"]).await;
    let mut step = stage.steps[0].clone();
    step.status = Status::Running;
    step.version = 7;
    let copy = step.clone();
    let err = manager.before(&mut step).await.unwrap_err();
    assert!(matches!(err, ManagerError::Conflict), "{err:?}");
    assert_eq!(step, copy);

    server.inject(Endpoint::UpdateStage, Fault::Status(409));
    let mut stage_copy = stage.clone();
    stage_copy.status = Status::Success;
    let err = manager.after_all(&mut stage_copy).await.unwrap_err();
    assert!(matches!(err, ManagerError::Conflict), "{err:?}");
    assert_eq!(
        stage_copy.version, stage.version,
        "nothing merged from a failed call"
    );
}

#[tokio::test(start_paused = true)]
async fn a_500_that_persists_ends_with_the_servers_message_at_the_deadline() {
    let server = server().await;
    let manager = manager(&server);
    let started = Instant::now();
    // Drone answers 500 "sql: no rows" for a stage it does not have.
    let err = manager.details(4242).await.unwrap_err();
    match err {
        ManagerError::Server { status, message } => {
            assert_eq!(status, 500);
            assert_eq!(message, "sql: no rows in result set");
        }
        other => panic!("expected a server error, got {other:?}"),
    }
    let attempts = server.requests().len();
    assert!(
        attempts > 3,
        "a read is retried on 500: {attempts} attempts"
    );
    let elapsed = started.elapsed();
    assert!(
        elapsed <= quick_retry().max_elapsed.unwrap() + Duration::from_secs(1),
        "bounded by the policy's deadline: {elapsed:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_500_on_a_call_safe_to_repeat_is_retried_until_it_passes() {
    let server = server().await;
    let stage_id = server.enqueue(details());
    let manager = manager(&server);
    let stage = claim(&manager).await;

    // The details: a read.
    server.inject_times(Endpoint::Details, Fault::Status(500), 3);
    assert_eq!(manager.details(stage_id).await.unwrap().stage.id, stage_id);

    // The `running` stage update, by version.
    let mut stage = running(&stage, &["build"]);
    server.inject_times(
        Endpoint::UpdateStage,
        Fault::StatusWithMessage(500, "database is locked".into()),
        2,
    );
    manager.before_all(&mut stage).await.unwrap();
    assert_eq!(server.stage(stage_id).unwrap().status, Status::Running);

    // A step update, by version.
    let path = format!("/rpc/v2/step/{}", stage.steps[0].id);
    let mut step = stage.steps[0].clone();
    step.status = Status::Running;
    server.inject_times(Endpoint::UpdateStep, Fault::Status(503), 1);
    server.inject_times(Endpoint::UpdateStep, Fault::Status(500), 2);
    manager.before(&mut step).await.unwrap();
    assert_eq!(step.version, 2);
    assert_eq!(requests_to(&server, "PUT", &path).len(), 4);

    // The upload: it replaces the stored log, so a repeat stores it once.
    let lines = vec![runnerkit_core::Line {
        number: 0,
        message: "hello".into(),
        timestamp: 0,
    }];
    server.inject_times(Endpoint::Upload, Fault::Status(500), 2);
    manager
        .upload(step.id, runnerkit_core::LogUpload::lines(&lines))
        .await
        .unwrap();
    let log = server.uploaded_log(step.id).expect("uploaded");
    assert_eq!(String::from_utf8_lossy(&log).matches("hello").count(), 1);
}

#[tokio::test]
async fn a_500_on_a_batch_is_not_repeated_by_the_client() {
    // A batch appends: repeating one the server stored would show its lines
    // twice. The runner sends the lines again with its next batch instead.
    let server = server().await;
    server.enqueue(details());
    let manager = manager(&server);
    let stage = started(&manager, &["build"]).await;
    let lines = vec![runnerkit_core::Line {
        number: 0,
        message: "once".into(),
        timestamp: 0,
    }];
    server.inject(Endpoint::Batch, Fault::Status(500));
    let err = manager.write(stage.steps[0].id, &lines).await.unwrap_err();
    assert!(
        matches!(err, ManagerError::Server { status: 500, .. }),
        "{err:?}"
    );
    let batches = server
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/logs/batch"))
        .count();
    assert_eq!(batches, 1);
}

#[tokio::test(start_paused = true)]
async fn a_dropped_connection_is_retried_until_it_recovers() {
    let server = server().await;
    let stage_id = server.enqueue(details());
    let manager = manager(&server);
    server.inject_times(Endpoint::Details, Fault::DropConnection, 2);
    let details = manager.details(stage_id).await.unwrap();
    assert_eq!(details.stage.id, stage_id);
    let statuses: Vec<_> = requests_to(&server, "GET", &format!("/rpc/v2/stage/{stage_id}"))
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [None, None, Some(200)]);
}

#[tokio::test(start_paused = true)]
async fn a_server_gone_and_back_loses_no_report() {
    let server = server().await;
    server.enqueue(details());
    let manager = manager(&server);
    let stage = started(&manager, &["build"]).await;
    let mut step = stage.steps[0].clone();
    step.status = Status::Running;

    server.inject_always(
        runnerkit_drone::testing::Endpoint::Any,
        Fault::DropConnection,
    );
    let report = manager.before(&mut step);
    let outage = async {
        tokio::time::sleep(Duration::from_secs(10)).await;
        server.clear_faults();
    };
    let (reported, ()) = tokio::join!(report, outage);
    reported.unwrap();
    assert_eq!(server.step(step.id).unwrap().status, Status::Running);
    assert_eq!(step.version, 2);
}

#[tokio::test(start_paused = true)]
async fn a_slow_answer_hits_the_timeout_and_is_retried() {
    let server = server().await;
    let stage_id = server.enqueue(details());
    let manager = manager_with(
        server
            .client_config()
            .with_request_timeout(Duration::from_secs(5)),
    );
    server.inject(Endpoint::Details, Fault::Delay(Duration::from_secs(600)));
    let started = Instant::now();
    let details = manager.details(stage_id).await.unwrap();
    assert_eq!(details.stage.id, stage_id);
    assert!(started.elapsed() >= Duration::from_secs(5));
    assert!(
        started.elapsed() < Duration::from_secs(600),
        "did not wait for the slow answer"
    );
    let attempts = requests_to(&server, "GET", &format!("/rpc/v2/stage/{stage_id}"));
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0].status, None, "the slow attempt was abandoned");
}

#[tokio::test(start_paused = true)]
async fn a_server_that_stays_slow_gives_a_transport_error_in_the_end() {
    let server = server().await;
    let stage_id = server.enqueue(details());
    let config = server
        .client_config()
        .with_request_timeout(Duration::from_secs(5))
        .with_retry(RetryPolicy {
            initial_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(4),
            max_elapsed: Some(Duration::from_secs(60)),
        });
    let manager = DroneManager::new(&config).unwrap();
    server.inject_always(Endpoint::Details, Fault::Delay(Duration::from_secs(3600)));
    let started = Instant::now();
    let err = manager.details(stage_id).await.unwrap_err();
    assert!(matches!(err, ManagerError::Transport { .. }), "{err:?}");
    assert!(started.elapsed() <= Duration::from_secs(60 + 5));
}

#[tokio::test]
async fn a_wrong_token_is_401_and_fatal() {
    let server = server().await;
    server.enqueue(details());
    let mut config = server.client_config();
    config.secret = "not-the-secret".into();
    let manager = manager_with(config);
    let err = manager.ping().await.unwrap_err();
    assert!(
        matches!(err, ManagerError::Unauthorized { status: 401 }),
        "{err:?}"
    );
    let err = manager.request(&filter()).await.unwrap_err();
    assert!(
        matches!(err, ManagerError::Unauthorized { status: 401 }),
        "{err:?}"
    );
    assert_eq!(server.requests().len(), 2, "never retried");
    assert!(err.to_string().contains("401"));
    assert!(!err.to_string().contains("not-the-secret"));
}

#[tokio::test]
async fn a_server_without_a_secret_answers_403() {
    let server = DroneServer::start(ServerConfig::default().with_secret(""))
        .await
        .unwrap();
    let manager = manager_with(runnerkit_drone::DroneConfig::new(
        "http",
        server.host(),
        "anything",
    ));
    let err = manager.request(&filter()).await.unwrap_err();
    assert!(
        matches!(err, ManagerError::Unauthorized { status: 403 }),
        "{err:?}"
    );
    let err = manager.ping().await.unwrap_err();
    assert!(
        matches!(err, ManagerError::Unauthorized { status: 403 }),
        "{err:?}"
    );
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let server = server().await;
    let manager = manager(&server);
    server.inject(Endpoint::Details, Fault::Status(302));
    let err = manager.details(1).await.unwrap_err();
    assert!(
        matches!(err, ManagerError::Server { status: 302, .. }),
        "{err:?}"
    );
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn backoff_grows_is_capped_and_stops_when_the_call_is_dropped() {
    let server = server().await;
    let stage_id = server.enqueue(details());
    let policy = RetryPolicy {
        initial_delay: Duration::from_secs(1),
        max_delay: Duration::from_secs(8),
        max_elapsed: None,
    };
    let manager = DroneManager::new(&server.client_config().with_retry(policy)).unwrap();
    server.inject_always(Endpoint::Accept, Fault::Status(502));

    let gave_up =
        tokio::time::timeout(Duration::from_secs(300), manager.accept(stage_id, "r")).await;
    assert!(gave_up.is_err(), "502 is retried until the caller gives up");

    let attempts = server.requests();
    let gaps: Vec<Duration> = attempts
        .windows(2)
        .map(|w| w[1].received - w[0].received)
        .collect();
    assert!(
        gaps.len() > 20,
        "a cap of 8 s means many tries in 300 s: {gaps:?}"
    );
    for (attempt, gap) in gaps.iter().enumerate() {
        let ceiling = policy.ceiling(u32::try_from(attempt).unwrap());
        assert!(
            *gap >= ceiling / 2,
            "gap {attempt} {gap:?} below half of {ceiling:?}"
        );
        assert!(*gap <= ceiling, "gap {attempt} {gap:?} above {ceiling:?}");
    }
    assert!(gaps[0] <= Duration::from_secs(1));
    assert!(gaps.iter().all(|g| *g <= Duration::from_secs(8)));

    // Dropping the call stopped the retries.
    let count = server.requests().len();
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert_eq!(server.requests().len(), count);
    assert!(server.stage(stage_id).unwrap().machine.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_retry_streak_gives_up_after_max_elapsed_with_the_last_error() {
    let server = server().await;
    let stage_id = server.enqueue(details());
    let policy = RetryPolicy {
        initial_delay: Duration::from_millis(500),
        max_delay: Duration::from_secs(4),
        max_elapsed: Some(Duration::from_secs(20)),
    };
    let manager = DroneManager::new(&server.client_config().with_retry(policy)).unwrap();
    server.inject_always(Endpoint::Accept, Fault::Status(503));
    let started = Instant::now();
    let err = manager.accept(stage_id, "r").await.unwrap_err();
    assert!(
        matches!(err, ManagerError::Server { status: 503, .. }),
        "{err:?}"
    );
    assert!(started.elapsed() <= Duration::from_secs(20));
    assert!(server.requests().len() > 3);
}

#[tokio::test(start_paused = true)]
async fn an_unreachable_server_is_a_transport_error() {
    // A port that was free a moment ago: nothing listens there.
    let address = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let config = runnerkit_drone::DroneConfig::new("http", address.to_string(), "s").with_retry(
        RetryPolicy {
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            max_elapsed: Some(Duration::from_secs(5)),
        },
    );
    let manager = DroneManager::new(&config).unwrap();
    let err = manager.details(1).await.unwrap_err();
    match &err {
        ManagerError::Transport {
            address: called, ..
        } => {
            assert_eq!(called, &format!("http://{address}/rpc/v2/stage/1"));
        }
        other => panic!("expected a transport error, got {other:?}"),
    }
    let err = manager.ping().await.unwrap_err();
    assert!(matches!(err, ManagerError::Transport { .. }), "{err:?}");
}
