//! Every call of the client against the test server, happy paths, with the
//! bytes on the wire checked where the protocol is strict about them.

mod common;

use common::*;
use runnerkit_core::drone::{Details, Stage};
use runnerkit_core::{Manager, Status};
use runnerkit_drone::testing::{Endpoint, Fault};

#[tokio::test]
async fn one_stage_call_by_call() {
    let server = server().await;
    let stage_id = server.enqueue(details());
    let manager = manager(&server);

    manager.ping().await.unwrap();
    let offered = manager.request(&filter()).await.unwrap().expect("a stage");
    assert_eq!(offered.id, stage_id);
    assert!(offered.steps.is_empty());

    let accepted = manager.accept(stage_id, "runner-1").await.unwrap();
    assert_eq!(accepted.machine, "runner-1");
    assert_eq!(accepted.status, Status::Pending);
    assert!(accepted.version > offered.version);

    let details = manager.details(stage_id).await.unwrap();
    assert_eq!(details.config.data, YAML.as_bytes());
    assert_eq!(details.repository.slug, "octo/hello");
    assert_eq!(details.repository.secret, "repo-key");
    assert_eq!(details.secrets[0].data, "hunter2");
    assert_eq!(details.netrc.as_ref().unwrap().password, "token-123");
    assert_eq!(details.build.stages.len(), 1);
    assert_eq!(details.stage.machine, "runner-1");
    assert_eq!(manager.netrc(details.repository.id).await.unwrap(), None);

    let mut stage = running(&accepted, &["clone", "build"]);
    manager.before_all(&mut stage).await.unwrap();
    assert!(stage.steps.iter().all(|s| s.id > 0 && s.version == 1));
    assert_ne!(stage.steps[0].id, stage.steps[1].id);

    let mut step = stage.steps[0].clone();
    step.status = Status::Running;
    step.started = 1_700_000_001;
    manager.before(&mut step).await.unwrap();
    assert_eq!(step.version, 2);
    assert!(server.is_stream_open(step.id));

    manager
        .write(step.id, &lines(&["+ git init"]))
        .await
        .unwrap();
    manager
        .write(step.id, &lines(&["+ git init", "done"])[1..])
        .await
        .unwrap();
    let all = lines(&["+ git init", "done"]);
    manager
        .upload(step.id, runnerkit_core::LogUpload::lines(&all))
        .await
        .unwrap();

    step.status = Status::Success;
    step.stopped = 1_700_000_004;
    manager.after(&mut step).await.unwrap();
    assert_eq!(step.version, 3);
    assert!(!server.is_stream_open(step.id));

    stage.steps[0] = step.clone();
    stage.steps[1].status = Status::Skipped;
    stage.status = Status::Success;
    stage.stopped = 1_700_000_005;
    let version_before = stage.version;
    manager.after_all(&mut stage).await.unwrap();
    assert_eq!(stage.version, version_before + 1);
    assert_eq!(stage.steps[0].version, 4);

    // The server's view.
    let on_server = server.stage(stage_id).unwrap();
    assert_eq!(on_server.status, Status::Success);
    assert_eq!(on_server.steps[1].status, Status::Skipped);
    assert_eq!(
        server.build(on_server.build_id).unwrap().status,
        Status::Success
    );
    let live: Vec<_> = server
        .live_log(step.id)
        .into_iter()
        .map(|l| l.out)
        .collect();
    assert_eq!(live, ["+ git init\n", "done\n"]);
    assert_eq!(
        &server.uploaded_log(step.id).unwrap()[..],
        br#"[{"pos":0,"out":"+ git init\n","time":0},{"pos":1,"out":"done\n","time":1}]"#
            .iter()
            .chain(b"\n")
            .copied()
            .collect::<Vec<u8>>()
    );
    let statuses: Vec<Status> = server.stage_updates().iter().map(|s| s.status).collect();
    assert_eq!(statuses, [Status::Running, Status::Success]);
    let step_statuses: Vec<Status> = server.step_updates().iter().map(|s| s.status).collect();
    assert_eq!(step_statuses, [Status::Running, Status::Success]);
}

#[tokio::test]
async fn every_request_carries_the_token_and_no_content_type() {
    let server = server().await;
    server.enqueue(details());
    let manager = manager(&server);
    let mut stage = started(&manager, &["build"]).await;
    manager
        .upload(stage.steps[0].id, runnerkit_core::LogUpload::lines(&[]))
        .await
        .unwrap();
    stage.status = Status::Success;
    manager.after_all(&mut stage).await.unwrap();

    let requests = server.requests();
    assert!(requests.len() >= 5);
    for request in &requests {
        assert_eq!(
            request.header("x-drone-token"),
            Some(server.secret()),
            "{request:?}"
        );
        assert_eq!(request.header("content-type"), None, "{request:?}");
        if request.body.is_empty() {
            continue;
        }
        assert_eq!(request.body.last(), Some(&b'\n'), "{request:?}");
        let text = std::str::from_utf8(&request.body[..request.body.len() - 1]).unwrap();
        assert!(!text.contains('\n'), "one JSON value on one line: {text}");
    }
}

#[tokio::test]
async fn filter_accept_query_and_stage_update_keys_are_drones() {
    let server = server().await;
    let stage_id = server.enqueue(details());
    let manager = manager(&server);
    let mut filter = filter();
    filter.labels.insert("zone".into(), "eu".into());
    // Labels must match exactly, so this runner gets nothing: answer at once.
    server.inject(Endpoint::Request, Fault::Status(204));
    assert!(manager.request(&filter).await.unwrap().is_none());
    let request = requests_to(&server, "POST", "/rpc/v2/stage").remove(0);
    assert_eq!(
        &request.body[..],
        b"{\"kind\":\"pipeline\",\"type\":\"docker\",\"os\":\"linux\",\"arch\":\"amd64\",\"variant\":\"\",\"kernel\":\"\",\"labels\":{\"zone\":\"eu\"}}\n"
    );

    manager.accept(stage_id, "runner 1/eu").await.unwrap();
    let accept = requests_to(&server, "POST", &format!("/rpc/v2/stage/{stage_id}")).remove(0);
    assert_eq!(accept.query.as_deref(), Some("machine=runner+1%2Feu"));
    assert!(accept.body.is_empty());
    assert_eq!(server.stage(stage_id).unwrap().machine, "runner 1/eu");

    let accepted = server.stage(stage_id).unwrap();
    let mut stage = running(&accepted, &["build"]);
    manager.before_all(&mut stage).await.unwrap();
    let put = requests_to(&server, "PUT", &format!("/rpc/v2/stage/{stage_id}")).remove(0);
    let body: serde_json::Value = serde_json::from_slice(&put.body).unwrap();
    assert_eq!(body["id"], stage_id);
    assert_eq!(body["status"], "running");
    let step = &body["steps"][0];
    assert_eq!(step["step_id"], stage_id, "the stage id travels as step_id");
    assert_eq!(step["number"], 1);
    assert_eq!(step["id"], 0);
    assert_eq!(step["status"], "pending");
}

#[tokio::test]
async fn config_travels_as_capitalised_base64() {
    let server = server().await;
    let stage_id = server.enqueue(details());
    let manager = manager(&server);
    // Read the server's raw answer with a plain client: the keys are Go's.
    let raw = raw_client()
        .get(format!("http://{}/rpc/v2/stage/{stage_id}", server.host()))
        .header("X-Drone-Token", server.secret())
        .send()
        .await
        .unwrap();
    assert_eq!(raw.headers()["content-type"], "text/plain; charset=utf-8");
    let text = raw.text().await.unwrap();
    assert!(text.ends_with("}\n"));
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    use base64::Engine as _;
    let expected = base64::engine::general_purpose::STANDARD.encode(YAML);
    assert_eq!(json["config"]["Data"], expected.as_str());
    assert!(json["config"]["Hash"].is_null());

    let decoded: Details = manager.details(stage_id).await.unwrap();
    assert_eq!(decoded.config.data, YAML.as_bytes());
}

#[tokio::test]
async fn upload_of_an_empty_log_sends_an_empty_array() {
    let server = server().await;
    server.enqueue(details());
    let manager = manager(&server);
    let stage = started(&manager, &["quiet"]).await;
    let step_id = stage.steps[0].id;
    manager
        .upload(step_id, runnerkit_core::LogUpload::lines(&[]))
        .await
        .unwrap();
    assert_eq!(&server.uploaded_log(step_id).unwrap()[..], b"[]\n");
}

#[tokio::test]
async fn an_empty_batch_is_not_sent() {
    let server = server().await;
    server.enqueue(details());
    let manager = manager(&server);
    let stage = started(&manager, &["quiet"]).await;
    let before = server.requests().len();
    manager.write(stage.steps[0].id, &[]).await.unwrap();
    assert_eq!(server.requests().len(), before);
}

#[tokio::test]
async fn batch_lines_carry_pos_out_and_time() {
    let server = server().await;
    server.enqueue(details());
    let manager = manager(&server);
    let stage = started(&manager, &["build"]).await;
    let mut step = stage.steps[0].clone();
    step.status = Status::Running;
    manager.before(&mut step).await.unwrap();
    manager.write(step.id, &lines(&["a", "b"])).await.unwrap();
    let batch = requests_to(
        &server,
        "POST",
        &format!("/rpc/v2/step/{}/logs/batch", step.id),
    )
    .remove(0);
    assert_eq!(
        &batch.body[..],
        b"[{\"pos\":0,\"out\":\"a\\n\",\"time\":0},{\"pos\":1,\"out\":\"b\\n\",\"time\":1}]\n"
    );
}

#[tokio::test(start_paused = true)]
async fn watch_reports_a_cancel_while_held_and_false_when_the_poll_runs_out() {
    let server = runnerkit_drone::testing::DroneServer::start(
        runnerkit_drone::testing::ServerConfig::default()
            .with_long_poll(std::time::Duration::from_secs(30)),
    )
    .await
    .unwrap();
    let stage_id = server.enqueue(details());
    let manager = manager(&server);
    let build_id = server.stage(stage_id).unwrap().build_id;

    assert!(
        !manager.watch(build_id).await.unwrap(),
        "nothing cancelled: the poll runs out"
    );

    let watching = manager.watch(build_id);
    let cancel = async {
        // Let the watch arrive before cancelling.
        while requests_to(&server, "POST", &format!("/rpc/v2/build/{build_id}/watch")).len() < 2 {
            tokio::task::yield_now().await;
        }
        assert!(server.cancel_build(build_id));
    };
    let (cancelled, ()) = tokio::join!(watching, cancel);
    assert!(cancelled.unwrap());
    let stage: Stage = server.stage(stage_id).unwrap();
    assert_eq!(stage.status, Status::Skipped, "it never started");
    assert_eq!(server.build(build_id).unwrap().status, Status::Killed);

    server.inject(Endpoint::Watch, Fault::Status(204));
    assert!(!manager.watch(build_id).await.unwrap());
}

#[tokio::test]
async fn request_ignores_a_stage_with_id_zero() {
    let server = server().await;
    let manager = manager(&server);
    server.inject(
        Endpoint::Request,
        Fault::StatusWithMessage(200, r#"{"id":0,"name":"ghost"}"#.into()),
    );
    assert_eq!(manager.request(&filter()).await.unwrap(), None);
}

#[tokio::test]
async fn debug_output_hides_the_secret() {
    let server = server().await;
    let manager = manager(&server);
    let shown = format!("{manager:?} {:?}", server.client_config());
    assert!(!shown.contains(server.secret()), "{shown}");
    assert!(shown.contains(&server.host()));
}
