//! Each limit of `ParseLimits`: refused past it with a message naming the
//! limit, what was found and where; accepted at it.

use std::time::{Duration, Instant};

use runnerkit_manifest::{
    Error, Limit, LimitError, Manifest, ParseError, ParseLimits, raw_documents,
};

fn limit_error(text: &str, limits: &ParseLimits) -> LimitError {
    match Manifest::parse_with(text, limits) {
        Err(ParseError::Limit(err)) => err,
        other => panic!("expected a limit error, got {other:?}"),
    }
}

/// `n` one-line documents, each after its `---` (so document i is at line 2i).
fn documents(n: usize) -> String {
    "---\nkind: pipeline\n".repeat(n)
}

/// One pipeline of `services` services and `steps` steps, each a line.
fn pipeline(services: usize, steps: usize) -> String {
    let mut text = String::from("kind: pipeline\nname: big\nservices:\n");
    for i in 0..services {
        text.push_str(&format!("- {{name: db{i}, image: postgres}}\n"));
    }
    text.push_str("steps:\n");
    for i in 0..steps {
        text.push_str(&format!("- {{name: s{i}, image: alpine}}\n"));
    }
    text
}

#[test]
fn the_defaults_are_far_above_real_pipelines() {
    let limits = ParseLimits::default();
    assert_eq!(limits.max_file_bytes, 4 * 1024 * 1024);
    assert_eq!(limits.max_documents, 1_000);
    assert_eq!(limits.max_steps, 1_000);
    assert_eq!(limits.max_depth, 64);
    assert_eq!(limits.max_nodes, 250_000);
    // 1,000 pipelines of 1,000 steps would be 1,000 times a large pipeline:
    // at each limit on its own, a file parses.
    assert_eq!(
        Manifest::parse(&documents(1_000)).unwrap().resources.len(),
        1_000
    );
    let big = Manifest::parse(&pipeline(10, 990)).unwrap();
    assert_eq!(big.pipelines().next().unwrap().steps.len(), 990);
}

#[test]
fn a_file_too_large_is_refused_before_it_is_read() {
    let text = format!("kind: pipeline\n#{}\n", "x".repeat(4 * 1024 * 1024));
    let err = limit_error(&text, &ParseLimits::default());
    assert_eq!(err.limit, Limit::FileBytes);
    assert_eq!(
        err.to_string(),
        "the file is 4,194,321 bytes; at most 4,194,304 bytes (4 MiB) are accepted"
    );
    assert_eq!(err.line, 0);
}

#[test]
fn too_many_documents_names_the_first_past_the_limit_and_counts_them_all() {
    let err = limit_error(&documents(1_001), &ParseLimits::default());
    assert_eq!(
        err.to_string(),
        "the file has 1,001 documents; at most 1,000 are accepted (document 1,001 at line 2,001)"
    );
    assert_eq!(
        (err.limit, err.found, err.line),
        (Limit::Documents, 1_001, 2_001)
    );
    let err = limit_error(&documents(5_000), &ParseLimits::default());
    assert_eq!(err.found, 5_000);
    // Blank and comment-only documents do not count.
    let text = format!("{}---\n# nothing\n---\n", documents(1_000));
    assert!(Manifest::parse(&text).is_ok());
    // raw_documents holds the same limits.
    assert!(matches!(
        raw_documents(&documents(1_001)),
        Err(ParseError::Limit(LimitError {
            limit: Limit::Documents,
            ..
        }))
    ));
}

#[test]
fn too_many_steps_counts_services_and_names_the_first_past_the_limit() {
    let limits = ParseLimits::default();
    assert!(Manifest::parse(&pipeline(10, 990)).is_ok());
    let text = format!("kind: pipeline\nname: a\n---\n{}", pipeline(10, 991));
    let err = limit_error(&text, &limits);
    assert_eq!(
        err.to_string(),
        "pipeline \"big\" (document 2) has 1,001 steps and services; at most 1,000 are accepted (the 1,001st at line 1,008, column 3)"
    );
    assert_eq!(err.pipeline.as_deref(), Some("big"));
    assert_eq!((err.document, err.found), (2, 1_001));
    // The line is that of the step: services first, then steps.
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[1_007], "- {name: s990, image: alpine}");
    let fewer = ParseLimits {
        max_steps: 3,
        ..limits
    };
    let err = limit_error(&pipeline(2, 2), &fewer);
    assert_eq!((err.found, err.line), (4, 8));
}

#[test]
fn nesting_past_the_limit_is_refused_with_its_line() {
    let limits = ParseLimits::default();
    // The document's map is level 1, `x`'s list level 2: 64 in all.
    let at_limit = format!("kind: pipeline\nx: {}{}\n", "[".repeat(63), "]".repeat(63));
    assert!(Manifest::parse(&at_limit).is_ok());
    let past = format!(
        "kind: pipeline\n---\nkind: pipeline\nx: {}{}\n",
        "[".repeat(64),
        "]".repeat(64)
    );
    let err = limit_error(&past, &limits);
    assert_eq!((err.limit, err.document, err.line), (Limit::Depth, 2, 4));
    assert_eq!(
        err.to_string(),
        format!(
            "document 2: the YAML nests more than 64 levels deep at line 4, column {}; at most 64 levels of maps and lists are accepted",
            err.column
        )
    );
    // Block nesting too.
    let mut block = String::from("kind: pipeline\n");
    for level in 0..70 {
        block.push_str(&format!("{}k{level}:\n", "  ".repeat(level)));
    }
    let err = limit_error(&block, &limits);
    assert_eq!((err.limit, err.line), (Limit::Depth, 66));
}

#[test]
fn a_hostile_nesting_is_refused_quickly_without_overflowing_the_stack() {
    for (head, open) in [
        ("kind: pipeline\nx: ", "["),
        ("kind: pipeline\nx: ", "{a: "),
        ("kind: pipeline\nx:\n", "- "),
    ] {
        let text = format!("{head}{}", open.repeat(100_000));
        let start = Instant::now();
        let err = limit_error(&text, &ParseLimits::default());
        assert_eq!(err.limit, Limit::Depth, "{open}");
        // Generous: the refusal reads 64 levels, not 100,000.
        assert!(start.elapsed() < Duration::from_secs(5), "{open}");
    }
}

#[test]
fn too_many_nodes_names_the_limit_not_the_yaml_readers_budget() {
    let limits = ParseLimits {
        max_nodes: 1_000,
        ..ParseLimits::default()
    };
    let text = format!("kind: pipeline\nx: [{}]\n", vec!["a"; 2_000].join(", "));
    let err = limit_error(&text, &limits);
    assert_eq!((err.limit, err.found, err.line), (Limit::Nodes, 1_001, 2));
    let message = err.to_string();
    assert!(
        message.starts_with(
            "document 1: the document has more than 1,000 YAML nodes (keys, values and list items, aliases expanded)"
        ),
        "{message}"
    );
    assert!(message.ends_with("at most 1,000 are accepted"), "{message}");
    assert!(!message.contains("budget"), "{message}");
    // 50,000 one-line steps are 250,000 nodes: that limit answers first, in words.
    let err = limit_error(&pipeline(0, 50_000), &ParseLimits::default());
    assert_eq!(err.limit, Limit::Nodes, "{err}");
    assert!(!err.to_string().contains("budget"), "{err}");
}

#[test]
fn other_yaml_reader_caps_read_as_words() {
    // More merge keys than the YAML reader's cap (10,000).
    let mut text = String::from("kind: pipeline\nd: &d {a: 1}\nsteps:\n");
    for i in 0..10_001 {
        text.push_str(&format!("- {{<<: *d, name: s{i}}}\n"));
    }
    let limits = ParseLimits {
        max_steps: 20_000,
        ..ParseLimits::default()
    };
    let err = Manifest::parse_with(&text, &limits).unwrap_err();
    let message = err.to_string();
    assert!(message.contains("more than 10,000 merge keys"), "{message}");
    assert!(!message.contains("budget"), "{message}");
}

#[test]
fn assemble_refuses_a_file_past_a_limit_before_substituting() {
    use runnerkit_manifest::{
        CompileContext, Compiler, PipelineType, StageInput, TypeRegistry, assemble,
    };
    let text = documents(1_001);
    let types = TypeRegistry::new().with(PipelineType::exec());
    let ctx = CompileContext::default();
    let result = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(assemble(StageInput {
            text: &text,
            pipeline: None,
            trusted: false,
            types: &types,
            compiler: &Compiler::default(),
            context: &ctx,
            parsed: None,
        }));
    match result {
        Err(Error::Parse(ParseError::Limit(err))) => assert_eq!(err.limit, Limit::Documents),
        other => panic!("{other:?}"),
    }
}
