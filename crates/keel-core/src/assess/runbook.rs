//! Runbook selection: the steps that become an incident's checklist.

use crate::config::Config;

/// The steps of every `[[runbook]]` that matches a cause, in config order, each step once:
/// runbooks for the `cause` node (whose `failure_kind`, if given, is `failure_kind`), and
/// runbooks giving only a `failure_kind` that is `failure_kind`.
pub fn runbook_steps(config: &Config, cause: &str, failure_kind: &str) -> Vec<String> {
    let mut steps: Vec<String> = Vec::new();
    for rb in &config.runbooks {
        let kind_ok = rb.failure_kind.as_deref().is_none_or(|k| k == failure_kind);
        let node_ok = match rb.component.as_deref() {
            Some(c) => c == cause,
            // A runbook with neither is refused by the parser; never let it match everything.
            None => rb.failure_kind.is_some(),
        };
        if node_ok && kind_ok {
            for s in &rb.steps {
                if !steps.contains(&s.text) {
                    steps.push(s.text.clone());
                }
            }
        }
    }
    steps
}
