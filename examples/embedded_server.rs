//! Embeds a GAIA server in your own program: the queue, the result store and the API on a port
//! of your choosing, stopped when you say.
//!
//! ```sh
//! cargo run -p gaia-core --example embedded_server -- ./my-gaia-data 7434
//! ```

use std::time::Duration;

use gaia_core::server::{self, ServerConfig, load_or_create_admin_token};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let data_dir = args.next().unwrap_or_else(|| "./gaia-data".into());
    let port: u16 = args.next().map(|p| p.parse()).transpose()?.unwrap_or(7434);

    // The admin token: generated once, kept in the data dir (mode 0600).
    let (token, _) = load_or_create_admin_token(data_dir.as_ref())?;
    let mut config = ServerConfig::new(&data_dir, token.clone());
    config.queue.lease_timeout = Duration::from_secs(60);

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!(
        "serving on http://{} with token {token}",
        listener.local_addr()?
    );
    // Stops on Ctrl-C; pass any future to stop it your way.
    server::run(listener, config, server::shutdown_signal()).await?;
    Ok(())
}
