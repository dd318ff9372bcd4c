//! The mock engine polices its caller and plays its scripts.

use std::time::Duration;

use futures_util::StreamExt;
use runnerkit_core::{CancellationToken, Engine, EngineErrorKind, Spec, Step};
use runnerkit_mock::{CallKind, MockEngine, StepScript};

fn spec(steps: &[&str]) -> Spec {
    Spec {
        id: "s".into(),
        steps: steps.iter().map(|n| Step::named(*n)).collect(),
        ..Spec::default()
    }
}

#[tokio::test(start_paused = true)]
async fn out_of_order_calls_are_refused_and_recorded() {
    let engine = MockEngine::new();
    let spec = spec(&["a"]);
    let step = &spec.steps[0];
    let c = CancellationToken::new();
    let err = engine.create(&spec, step, &c).await.unwrap_err();
    assert_eq!(err.kind(), EngineErrorKind::Misuse);
    engine.setup(&spec, &c).await.unwrap();
    assert!(
        engine.start(&spec, step, &c).await.is_err(),
        "start before create"
    );
    engine.create(&spec, step, &c).await.unwrap();
    assert!(
        engine.create(&spec, step, &c).await.is_err(),
        "create twice"
    );
    engine.destroy(&spec, &c).await.unwrap();
    assert!(
        engine.start(&spec, step, &c).await.is_err(),
        "after destroy"
    );
    assert_eq!(engine.violations().len(), 4, "{:?}", engine.violations());
}

#[tokio::test(start_paused = true)]
async fn scripted_chunks_arrive_on_time_and_wait_follows_them() {
    let engine = MockEngine::new().with_step(
        "a",
        StepScript::exit(3)
            .with_chunk(Duration::from_secs(1), "one\n")
            .with_chunk(Duration::from_secs(2), "two\n")
            .running_for(Duration::from_secs(5)),
    );
    let spec = spec(&["a"]);
    let step = &spec.steps[0];
    let c = CancellationToken::new();
    engine.setup(&spec, &c).await.unwrap();
    engine.create(&spec, step, &c).await.unwrap();
    engine.start(&spec, step, &c).await.unwrap();
    let t0 = tokio::time::Instant::now();
    let mut stream = engine.tail(&spec, step, &c).await.unwrap();
    assert_eq!(&stream.next().await.unwrap().unwrap()[..], b"one\n");
    assert_eq!(t0.elapsed(), Duration::from_secs(1));
    assert_eq!(&stream.next().await.unwrap().unwrap()[..], b"two\n");
    assert!(stream.next().await.is_none());
    let exit = engine.wait(&spec, step, &c).await.unwrap();
    assert_eq!(exit.exit_code, 3);
    assert_eq!(t0.elapsed(), Duration::from_secs(8));
    engine.destroy(&spec, &c).await.unwrap();
    engine.assert_protocol();
    assert_eq!(
        engine.calls_for("a"),
        [
            CallKind::Create,
            CallKind::Start,
            CallKind::Tail,
            CallKind::Wait
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn hung_steps_end_on_cancel_and_oom_is_reported() {
    let engine = MockEngine::new()
        .with_step("hang", StepScript::exit(0).hang())
        .with_step("oom", StepScript::exit(0).oom());
    let spec = spec(&["hang", "oom"]);
    let c = CancellationToken::new();
    engine.setup(&spec, &c).await.unwrap();
    for step in &spec.steps {
        engine.create(&spec, step, &c).await.unwrap();
        engine.start(&spec, step, &c).await.unwrap();
    }
    let oom = engine.wait(&spec, &spec.steps[1], &c).await.unwrap();
    assert!(oom.oom_killed);
    let canceller = async {
        tokio::time::sleep(Duration::from_secs(10)).await;
        c.cancel();
    };
    let (_, hung) = tokio::join!(canceller, engine.wait(&spec, &spec.steps[0], &c));
    assert_eq!(hung.unwrap().exit_code, 137);
}
