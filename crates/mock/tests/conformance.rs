//! The mock engine passes the conformance suite it ships.

use runnerkit_mock::MockEngine;
use runnerkit_mock::conformance::{self, MockFixture};

#[tokio::test(start_paused = true)]
async fn mock_engine_conforms() {
    let engine = MockEngine::new();
    let fixture = MockFixture::new(engine.clone());
    conformance::run_all(&engine, &fixture).await;
    assert!(engine.violations().is_empty(), "{:?}", engine.violations());
}
