//! [`TriggerRepo`](airlock_runtime::store::repo::TriggerRepo).

use std::sync::Arc;

use airlock_runtime::store::repo::Database;

use super::support::{ids, trigger};

pub async fn trigger_insert_get_list_delete(db: Arc<dyn Database>) {
    let mut signed = trigger("trg_b", "alpha", "s", 100);
    signed.signature = Some(r#"{"scheme":"hmac-sha256","secret":"HOOK_SECRET"}"#.into());
    signed.nostore = true;
    signed.digest = Some(format!("sha256:{}", "ab".repeat(32)));
    signed.queued = true;
    let plain = trigger("trg_a", "alpha", "s", 100);
    let oldest = trigger("trg_c", "alpha", "s", 50);
    let elsewhere = trigger("trg_d", "alpha", "s2", 10);
    for t in [&signed, &plain, &oldest, &elsewhere] {
        db.insert_trigger(t).await.unwrap();
    }
    assert!(db.insert_trigger(&plain).await.is_err(), "ids are unique");
    assert_eq!(db.get_trigger("trg_b").await.unwrap(), Some(signed.clone()));
    assert_eq!(db.get_trigger("trg_a").await.unwrap(), Some(plain.clone()));
    assert_eq!(db.get_trigger("trg_z").await.unwrap(), None);
    // Creation time, then id.
    let listed = db.list_triggers("alpha", "s").await.unwrap();
    assert_eq!(listed, [oldest.clone(), plain.clone(), signed.clone()]);
    assert_eq!(
        ids(&db.list_triggers("alpha", "s2").await.unwrap(), |t| &t.id),
        ["trg_d"]
    );
    assert!(db.list_triggers("beta", "s").await.unwrap().is_empty());

    // Deleting needs the trigger's own project and step.
    assert!(!db.delete_trigger("alpha", "s2", "trg_a").await.unwrap());
    assert!(!db.delete_trigger("beta", "s", "trg_a").await.unwrap());
    assert!(db.delete_trigger("alpha", "s", "trg_a").await.unwrap());
    assert_eq!(db.get_trigger("trg_a").await.unwrap(), None);
    assert!(!db.delete_trigger("alpha", "s", "trg_a").await.unwrap());

    assert_eq!(db.delete_triggers_of_step("alpha", "s").await.unwrap(), 2);
    assert!(db.list_triggers("alpha", "s").await.unwrap().is_empty());
    assert_eq!(db.get_trigger("trg_d").await.unwrap(), Some(elsewhere));
    assert_eq!(db.delete_triggers_of_step("alpha", "s").await.unwrap(), 0);
}
