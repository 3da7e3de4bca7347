//! The spine: server, queue and API through real processes.

use crate::helper::*;

#[test]
fn submit_list_show_cancel_through_the_cli() {
    let server = Server::start();
    let id = server.cli_ok(&["submit", "--method", "cma_es", "--max-evals", "1000"]);
    assert_eq!(id.trim(), "1");
    let listing = server.cli_ok(&["jobs"]);
    assert!(listing.contains("cma_es"), "{listing}");
    let shown = server.cli_ok(&["show", "1"]);
    assert!(shown.contains("queued"), "{shown}");
    let cancelled = server.cli_ok(&["cancel", "1"]);
    assert!(cancelled.contains("cancelled"), "{cancelled}");
}
