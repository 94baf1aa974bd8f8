//! [`StepRepo`](airlock_runtime::store::repo::StepRepo).

use std::sync::Arc;

use airlock_runtime::store::repo::{Database, NewVersion};
use airlock_runtime::store::steps::{CurrentVersion, SetCurrent, StepMeta};

use super::support::ids;

/// A version named `v` of `step`, with component bytes `component`.
fn version<'a>(step: &'a str, v: &'a str, component: &'a [u8]) -> NewVersion<'a> {
    NewVersion {
        project: "alpha",
        step,
        digest: v,
        component_digest: v,
        component,
        manifest: v,
    }
}

pub async fn step_versions_and_current(db: Arc<dyn Database>) {
    let bytes1 = b"\0asm one".to_vec();
    // Every byte value, a megabyte of them.
    let bytes2: Vec<u8> = (0..=255u8).cycle().take(1 << 20).collect();
    let (v1, v2) = (
        version("hello", "v1", &bytes1),
        version("hello", "v2", &bytes2),
    );
    assert!(db.put_version(v1, 100).await.unwrap());
    assert!(!db.put_version(v1, 150).await.unwrap(), "already stored");
    let current = |digest: &str| CurrentVersion {
        digest: digest.into(),
        component_digest: digest.into(),
        manifest: digest.into(),
    };
    assert_eq!(
        db.current_version("alpha", "hello").await.unwrap(),
        Some(current("v1"))
    );
    assert!(db.put_version(v2, 200).await.unwrap());
    let (meta, manifest, versions) = db.get_step("alpha", "hello").await.unwrap().unwrap();
    let step_meta = |digest: &str, updated_at| StepMeta {
        step: "hello".into(),
        current_digest: digest.into(),
        updated_at,
    };
    assert_eq!((meta, manifest.as_str()), (step_meta("v2", 200), "v2"));
    assert_eq!(ids(&versions, |v| &v.digest), ["v2", "v1"]);
    assert_eq!(
        (
            versions[1].component_digest.as_str(),
            versions[1].created_at
        ),
        ("v1", 100),
        "created at its first push"
    );

    // Back to v1: not new, current again, and the step's date moves.
    assert!(!db.put_version(v1, 300).await.unwrap());
    let (meta, manifest, _) = db.get_step("alpha", "hello").await.unwrap().unwrap();
    assert_eq!((meta, manifest.as_str()), (step_meta("v1", 300), "v1"));
    // Pushing the current version again keeps the date.
    assert!(!db.put_version(v1, 400).await.unwrap());
    let (meta, _, _) = db.get_step("alpha", "hello").await.unwrap().unwrap();
    assert_eq!(meta, step_meta("v1", 300));

    let component = |digest: &'static str| {
        let db = db.clone();
        async move { db.component("alpha", "hello", digest).await.unwrap() }
    };
    assert_eq!(component("v1").await, Some(bytes1));
    assert_eq!(component("v2").await, Some(bytes2));
    assert_eq!(component("v9").await, None);

    // Same second: insertion order.
    assert!(
        db.put_version(version("hello", "v4", b"4"), 500)
            .await
            .unwrap()
    );
    assert!(
        db.put_version(version("hello", "v3", b"3"), 500)
            .await
            .unwrap()
    );
    let (_, _, versions) = db.get_step("alpha", "hello").await.unwrap().unwrap();
    assert_eq!(ids(&versions, |v| &v.digest), ["v3", "v4", "v2", "v1"]);

    for step in ["Bye", "abc"] {
        db.put_version(version(step, "v1", b"x"), 600)
            .await
            .unwrap();
    }
    let steps = db.list_steps("alpha").await.unwrap();
    assert_eq!(ids(&steps, |s| &s.step), ["Bye", "abc", "hello"]);
    assert_eq!(steps[2], step_meta("v3", 500));
    assert!(db.list_steps("beta").await.unwrap().is_empty());
    assert_eq!(db.get_step("alpha", "nope").await.unwrap(), None);
    assert_eq!(db.current_version("alpha", "nope").await.unwrap(), None);
    assert_eq!(db.current_version("beta", "hello").await.unwrap(), None);
}

pub async fn step_delete_removes_versions_and_components(db: Arc<dyn Database>) {
    db.put_version(version("hello", "v1", b"one"), 1)
        .await
        .unwrap();
    db.put_version(version("hello", "v2", b"two"), 2)
        .await
        .unwrap();
    // Another step with a version of the same name is untouched.
    db.put_version(version("keep", "v1", b"kept"), 3)
        .await
        .unwrap();
    assert!(db.delete_step("alpha", "hello").await.unwrap());
    assert_eq!(db.get_step("alpha", "hello").await.unwrap(), None);
    assert_eq!(db.current_version("alpha", "hello").await.unwrap(), None);
    assert_eq!(db.component("alpha", "hello", "v1").await.unwrap(), None);
    assert_eq!(db.component("alpha", "hello", "v2").await.unwrap(), None);
    assert_eq!(
        db.component("alpha", "keep", "v1").await.unwrap(),
        Some(b"kept".to_vec())
    );
    assert_eq!(
        ids(&db.list_steps("alpha").await.unwrap(), |s| &s.step),
        ["keep"]
    );
    assert!(!db.delete_step("alpha", "hello").await.unwrap());
    // Its versions went with it: pushing one again stores it anew.
    assert!(
        db.put_version(version("hello", "v1", b"one"), 9)
            .await
            .unwrap()
    );
    let (_, _, versions) = db.get_step("alpha", "hello").await.unwrap().unwrap();
    assert_eq!((versions.len(), versions[0].created_at), (1, 9));
}

pub async fn step_set_current_rolls_back_and_forward(db: Arc<dyn Database>) {
    db.put_version(version("hello", "v1", b"one"), 100)
        .await
        .unwrap();
    db.put_version(version("hello", "v2", b"two"), 200)
        .await
        .unwrap();
    db.put_version(version("other", "v3", b"three"), 250)
        .await
        .unwrap();
    let current = |step: &'static str| {
        let db = db.clone();
        async move {
            db.current_version("alpha", step)
                .await
                .unwrap()
                .map(|v| v.digest)
        }
    };
    let updated_at = || {
        let db = db.clone();
        async move {
            db.get_step("alpha", "hello")
                .await
                .unwrap()
                .unwrap()
                .0
                .updated_at
        }
    };
    assert_eq!(current("hello").await.as_deref(), Some("v2"));

    // Back to the older version: current at once, the date moves, the
    // versions stay as they were.
    assert_eq!(
        db.set_current_version("alpha", "hello", "v1", 300)
            .await
            .unwrap(),
        SetCurrent::Changed
    );
    assert_eq!(current("hello").await.as_deref(), Some("v1"));
    let (meta, manifest, versions) = db.get_step("alpha", "hello").await.unwrap().unwrap();
    assert_eq!(
        (
            meta.current_digest.as_str(),
            meta.updated_at,
            manifest.as_str()
        ),
        ("v1", 300, "v1")
    );
    assert_eq!(ids(&versions, |v| &v.digest), ["v2", "v1"]);
    // Already current: nothing changes, not even the date.
    assert_eq!(
        db.set_current_version("alpha", "hello", "v1", 400)
            .await
            .unwrap(),
        SetCurrent::Unchanged
    );
    assert_eq!(updated_at().await, 300);

    // A version of another step, an unknown one, another project, no step.
    for (project, step, digest, want) in [
        ("alpha", "hello", "v3", SetCurrent::NoVersion),
        ("alpha", "hello", "v9", SetCurrent::NoVersion),
        ("beta", "hello", "v1", SetCurrent::NoStep),
        ("alpha", "nope", "v1", SetCurrent::NoStep),
    ] {
        assert_eq!(
            db.set_current_version(project, step, digest, 500)
                .await
                .unwrap(),
            want,
            "{project}/{step}@{digest}"
        );
    }
    assert_eq!(current("hello").await.as_deref(), Some("v1"));
    assert_eq!(updated_at().await, 300);
    assert_eq!(current("other").await.as_deref(), Some("v3"));

    // Forward again; then a new upload is current, as always.
    assert_eq!(
        db.set_current_version("alpha", "hello", "v2", 600)
            .await
            .unwrap(),
        SetCurrent::Changed
    );
    assert_eq!(current("hello").await.as_deref(), Some("v2"));
    db.set_current_version("alpha", "hello", "v1", 700)
        .await
        .unwrap();
    assert!(
        db.put_version(version("hello", "v4", b"four"), 800)
            .await
            .unwrap()
    );
    assert_eq!(current("hello").await.as_deref(), Some("v4"));
}

pub async fn step_version_reads_any_stored_version(db: Arc<dyn Database>) {
    db.put_version(version("hello", "v1", b"one"), 1)
        .await
        .unwrap();
    db.put_version(version("hello", "v2", b"two"), 2)
        .await
        .unwrap();
    let v = |step: &'static str, digest: &'static str| {
        let db = db.clone();
        async move { db.version("alpha", step, digest).await.unwrap() }
    };
    let want = |d: &str| CurrentVersion {
        digest: d.into(),
        component_digest: d.into(),
        manifest: d.into(),
    };
    // Not only the current one.
    assert_eq!(v("hello", "v1").await, Some(want("v1")));
    assert_eq!(v("hello", "v2").await, Some(want("v2")));
    assert_eq!(v("hello", "v9").await, None);
    assert_eq!(v("nope", "v1").await, None);
    assert_eq!(db.version("beta", "hello", "v1").await.unwrap(), None);
    db.delete_step("alpha", "hello").await.unwrap();
    assert_eq!(v("hello", "v1").await, None, "gone with its step");
}
