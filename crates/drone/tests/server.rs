//! The test server's own behaviour (protocol §5): what runners are tested
//! against must itself answer like Drone.

mod common;

use std::time::Duration;

use common::*;
use runnerkit_core::drone::{Details, Filter, Stage};
use runnerkit_core::{Manager, ManagerError, Status};
use runnerkit_drone::testing::{DroneServer, Endpoint, Fault, ServerConfig};

async fn raw(
    server: &DroneServer,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: &str,
) -> (u16, String, reqwest::header::HeaderMap) {
    let mut request = raw_client()
        .request(method, format!("http://{}{path}", server.host()))
        .body(body.to_owned());
    if let Some(token) = token {
        request = request.header("X-Drone-Token", token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, response.text().await.unwrap(), headers)
}

#[tokio::test]
async fn auth_comes_before_routing() {
    let server = server().await;
    let secret = server.secret().to_owned();
    let post = reqwest::Method::POST;
    assert_eq!(
        raw(&server, post.clone(), "/nowhere", None, "").await.0,
        401
    );
    assert_eq!(
        raw(&server, post.clone(), "/rpc/v2/ping", Some("wrong"), "")
            .await
            .0,
        401
    );
    let (status, body, headers) = raw(&server, post.clone(), "/rpc/v2/ping", None, "").await;
    assert_eq!((status, body.as_str()), (401, ""));
    assert_eq!(headers["cache-control"], "no-cache, private, max-age=0");

    let (status, body, _) = raw(&server, post.clone(), "/nowhere", Some(&secret), "").await;
    assert_eq!((status, body.as_str()), (404, "404 page not found\n"));
    let (status, _, _) = raw(
        &server,
        reqwest::Method::DELETE,
        "/rpc/v2/stage/1",
        Some(&secret),
        "",
    )
    .await;
    assert_eq!(status, 405);
    let (status, body, headers) = raw(&server, post, "/rpc/v2/ping", Some(&secret), "").await;
    assert_eq!((status, body.as_str()), (200, ""));
    assert_eq!(headers["pragma"], "no-cache");
    assert_eq!(headers["x-accel-expires"], "0");
    assert_eq!(headers["expires"], "Thu, 01 Jan 1970 00:00:00 UTC");

    let closed = DroneServer::start(ServerConfig::default().with_secret(""))
        .await
        .unwrap();
    let (status, body, _) = raw(&closed, reqwest::Method::GET, "/nowhere", Some(""), "").await;
    assert_eq!((status, body.as_str()), (403, ""));
}

#[tokio::test]
async fn a_put_whose_path_and_body_ids_differ_is_refused() {
    let server = server().await;
    server.enqueue(details());
    let manager = manager(&server);
    let stage = started(&manager, &["build"]).await;
    let secret = server.secret().to_owned();

    let mut body = stage.clone();
    body.status = Status::Success;
    let json = serde_json::to_string(&body).unwrap();
    let (status, text, _) = raw(
        &server,
        reqwest::Method::PUT,
        "/rpc/v2/stage/999",
        Some(&secret),
        &json,
    )
    .await;
    assert_eq!(status, 500);
    assert!(text.contains("does not match"), "{text}");

    let step = serde_json::to_string(&stage.steps[0]).unwrap();
    let (status, _, _) = raw(
        &server,
        reqwest::Method::PUT,
        "/rpc/v2/step/999",
        Some(&secret),
        &step,
    )
    .await;
    assert_eq!(status, 500);
    assert_eq!(
        server.stage(stage.id).unwrap().status,
        Status::Running,
        "nothing applied"
    );
}

#[tokio::test]
async fn a_second_running_update_fails_after_bumping_the_stage() {
    let server = server().await;
    server.enqueue(details());
    let manager = manager(&server);
    let mut stage = started(&manager, &["build"]).await;
    let version = server.stage(stage.id).unwrap().version;
    let mut again = stage.clone();
    for step in &mut again.steps {
        step.id = 0;
    }
    // The first attempt bumps the stage, then fails inserting the steps
    // (500, UNIQUE); the client repeats the update, which the bump has made
    // stale: a conflict, which the runner answers by reading the stage back.
    let err = manager.before_all(&mut again).await.unwrap_err();
    assert!(matches!(err, ManagerError::Conflict), "{err:?}");
    let attempts: Vec<Option<u16>> = server
        .requests()
        .iter()
        .filter(|r| r.method == "PUT" && r.path == format!("/rpc/v2/stage/{}", stage.id))
        .map(|r| r.status)
        .collect();
    assert_eq!(attempts[attempts.len() - 2..], [Some(500), Some(409)]);
    assert_eq!(
        server.stage(stage.id).unwrap().version,
        version + 1,
        "Drone's hazard, reproduced"
    );
    // The runner's copy is now stale: the final report meets a conflict.
    stage.status = Status::Success;
    let err = manager.after_all(&mut stage).await.unwrap_err();
    assert!(matches!(err, ManagerError::Conflict), "{err:?}");
}

#[tokio::test]
async fn a_step_with_the_wrong_step_id_is_refused() {
    let server = server().await;
    server.enqueue(details());
    let manager = manager(&server);
    let stage = claim(&manager).await;
    let mut stage = running(&stage, &["build"]);
    stage.steps[0].step_id = 0;
    // Refused with a 500 after the stage was bumped (Drone's order), so the
    // client's repeat of the update is stale: a conflict.
    let err = manager.before_all(&mut stage).await.unwrap_err();
    assert!(matches!(err, ManagerError::Conflict), "{err:?}");
    let statuses: Vec<Option<u16>> = server
        .requests()
        .iter()
        .filter(|r| r.method == "PUT")
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, [Some(500), Some(409)]);
}

#[tokio::test]
async fn batch_needs_an_open_stream() {
    let server = server().await;
    server.enqueue(details());
    let manager = manager(&server);
    let stage = started(&manager, &["build"]).await;
    let mut step = stage.steps[0].clone();

    let err = manager
        .write(step.id, &lines(&["early"]))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ManagerError::Server { status: 500, message } if message == "stream: not found"),
        "{err:?}"
    );

    step.status = Status::Running;
    manager.before(&mut step).await.unwrap();
    manager.write(step.id, &lines(&["on time"])).await.unwrap();
    step.status = Status::Success;
    manager.after(&mut step).await.unwrap();
    let err = manager.write(step.id, &lines(&["late"])).await.unwrap_err();
    assert!(
        matches!(err, ManagerError::Server { status: 500, .. }),
        "{err:?}"
    );
    let live: Vec<String> = server
        .live_log(step.id)
        .into_iter()
        .map(|l| l.out)
        .collect();
    assert_eq!(live, ["on time\n"]);
}

#[tokio::test]
async fn upload_is_stored_verbatim_even_null() {
    let server = server().await;
    server.enqueue(details());
    let manager = manager(&server);
    let stage = started(&manager, &["build"]).await;
    let step_id = stage.steps[0].id;
    let secret = server.secret().to_owned();
    let path = format!("/rpc/v2/step/{step_id}/logs/upload");
    let (status, _, _) = raw(&server, reqwest::Method::POST, &path, Some(&secret), "null").await;
    assert_eq!(status, 200);
    assert_eq!(&server.uploaded_log(step_id).unwrap()[..], b"null");
}

#[tokio::test(start_paused = true)]
async fn runners_get_only_the_stages_that_match_them() {
    let server =
        DroneServer::start(ServerConfig::default().with_long_poll(Duration::from_secs(30)))
            .await
            .unwrap();
    let mut arm = details();
    arm.stage.arch = "arm64".into();
    let arm_id = server.enqueue(arm);
    let mut exec = details();
    exec.stage.kind_type = "exec".into();
    let exec_id = server.enqueue(exec);
    let manager = manager(&server);

    assert_eq!(
        manager.request(&filter()).await.unwrap(),
        None,
        "linux/amd64 docker: nothing"
    );
    let exec_filter = Filter {
        kind_type: "exec".into(),
        ..filter()
    };
    assert_eq!(
        manager.request(&exec_filter).await.unwrap().map(|s| s.id),
        Some(exec_id)
    );
    let any_platform = Filter::default();
    assert_eq!(
        manager.request(&any_platform).await.unwrap().map(|s| s.id),
        Some(arm_id)
    );
}

#[tokio::test]
async fn an_accepted_stage_is_no_longer_offered() {
    let server = server().await;
    let first = server.enqueue(details());
    let second = server.enqueue(details());
    let manager = manager(&server);
    assert_eq!(
        manager.request(&filter()).await.unwrap().map(|s| s.id),
        Some(first)
    );
    manager.accept(first, "runner-1").await.unwrap();
    assert_eq!(
        manager.request(&filter()).await.unwrap().map(|s| s.id),
        Some(second)
    );
}

#[tokio::test(start_paused = true)]
async fn a_cancel_nobody_watched_is_not_reported_later() {
    let server = server().await;
    let stage_id = server.enqueue(details());
    let manager = manager(&server);
    let build_id = server.stage(stage_id).unwrap().build_id;
    assert!(server.cancel_build(build_id));
    assert!(!manager.watch(build_id).await.unwrap());
    assert!(!server.cancel_build(9999));
}

#[tokio::test(start_paused = true)]
async fn a_cancel_kills_running_rows_and_skips_the_rest() {
    let server = server().await;
    server.enqueue(details());
    let manager = manager(&server);
    let stage = started(&manager, &["build", "test"]).await;
    let mut step = stage.steps[0].clone();
    step.status = Status::Running;
    manager.before(&mut step).await.unwrap();

    let watch = manager.watch(stage.build_id);
    let cancel = async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        server.cancel_build(stage.build_id);
    };
    let (cancelled, ()) = tokio::join!(watch, cancel);
    assert!(cancelled.unwrap());

    let on_server = server.stage(stage.id).unwrap();
    assert_eq!(on_server.status, Status::Killed);
    assert_eq!(on_server.steps[0].status, Status::Killed);
    assert_eq!(on_server.steps[1].status, Status::Skipped);
    assert!(on_server.steps.iter().all(|s| s.exit_code == 130));
    // The runner's next report meets the new versions.
    step.status = Status::Killed;
    let err = manager.after(&mut step).await.unwrap_err();
    assert!(matches!(err, ManagerError::Conflict), "{err:?}");
}

#[tokio::test]
async fn finishing_a_stage_schedules_the_ones_that_depend_on_it() {
    let server = server().await;
    let first = server.enqueue(details());
    let build_id = server.stage(first).unwrap().build_id;
    let mut deploy = details();
    deploy.build.id = build_id;
    deploy.stage = Stage {
        name: "deploy".into(),
        depends_on: vec!["default".into()],
        ..Stage::default()
    };
    let second = server.enqueue(deploy);
    let mut notify = details();
    notify.build.id = build_id;
    notify.stage = Stage {
        name: "notify".into(),
        depends_on: vec!["default".into()],
        on_failure: true,
        ..Stage::default()
    };
    let third = server.enqueue(notify);
    assert_eq!(
        server.stage(second).unwrap().status,
        Status::WaitingOnDependencies
    );
    let details_of_first: Details = server_details(&server, first).await;
    assert_eq!(details_of_first.build.stages.len(), 3);

    let manager = manager(&server);
    let mut stage = started(&manager, &["build"]).await;
    assert_eq!(stage.id, first);
    assert_eq!(server.build(build_id).unwrap().status, Status::Running);
    stage.status = Status::Success;
    manager.after_all(&mut stage).await.unwrap();

    assert_eq!(server.stage(second).unwrap().status, Status::Pending);
    assert_eq!(
        server.stage(third).unwrap().status,
        Status::Skipped,
        "on_failure only"
    );
    assert_eq!(server.build(build_id).unwrap().status, Status::Running);

    let mut deploy = started(&manager, &["ship"]).await;
    assert_eq!(deploy.id, second);
    deploy.status = Status::Failure;
    manager.after_all(&mut deploy).await.unwrap();
    assert_eq!(server.build(build_id).unwrap().status, Status::Failure);
}

async fn server_details(server: &DroneServer, stage_id: i64) -> Details {
    manager(server).details(stage_id).await.unwrap()
}

#[tokio::test]
async fn injected_faults_hit_only_their_endpoint_and_run_out() {
    let server = server().await;
    let stage_id = server.enqueue(details());
    let manager = manager(&server);
    server.inject(Endpoint::Accept, Fault::Status(409));
    manager.details(stage_id).await.unwrap();
    assert!(matches!(
        manager.accept(stage_id, "r").await,
        Err(ManagerError::Conflict)
    ));
    manager.accept(stage_id, "r").await.unwrap();
}

#[tokio::test]
async fn enqueue_yaml_serves_the_pipeline_file() {
    let server = server().await;
    let yaml = "kind: pipeline\nname: lint\nsteps: []\n";
    let stage_id = server.enqueue_yaml(yaml, Some("lint"));
    let manager = manager(&server);
    let details = manager.details(stage_id).await.unwrap();
    assert_eq!(details.config.data, yaml.as_bytes());
    assert_eq!(details.stage.name, "lint");
    assert_eq!(details.repository.slug, "runnerkit/test");
    assert_eq!(details.repository.timeout, 60);
    assert_eq!(details.build.event, "push");
    assert_eq!(details.system.host, server.host());
    let next = server.enqueue_yaml(yaml, None);
    assert_ne!(
        server.stage(next).unwrap().build_id,
        server.stage(stage_id).unwrap().build_id,
        "each call is a new build"
    );
}
