//! Finding the server's address without a thread per request.
//!
//! ureq looks the server's name up before every request, even one that goes out on a pooled
//! connection, and because every request of ours has a timeout, its default resolver does each
//! lookup on a new thread so that it can give up on time. A worker sends a claim per job: at a
//! thousand short jobs a second that was a thousand threads started (and, for a name rather than
//! an address, a thousand lookups) for connections that were already open. This resolver
//! answers an address (`http://10.0.0.5:7434`, `http://[::1]:7434`) at once and keeps a name's
//! addresses for [`NAME_TTL`]; a name it does not hold it looks up as ureq would, on a thread,
//! within the timeout.
//!
//! ureq's resolver trait is in its `unversioned` module (outside its semver promise): a ureq
//! release that changes it fails to build here, it cannot change behaviour silently.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

/// How long a name's addresses are kept. A server that moves is reached at its new address
/// within this, once its old connections are gone.
const NAME_TTL: Duration = Duration::from_secs(30);
/// Names kept at most (a client talks to its server and, rarely, a release host).
const MAX_NAMES: usize = 16;

#[derive(Debug)]
pub(super) struct Resolve {
    lookup: DefaultResolver,
    ttl: Duration,
    names: Mutex<HashMap<String, (Instant, ResolvedSocketAddrs)>>,
    #[cfg(test)]
    lookups: std::sync::atomic::AtomicUsize,
}

impl Default for Resolve {
    fn default() -> Self {
        Resolve::with_ttl(NAME_TTL)
    }
}

impl Resolve {
    fn with_ttl(ttl: Duration) -> Resolve {
        Resolve {
            lookup: DefaultResolver::default(),
            ttl,
            names: Mutex::new(HashMap::new()),
            #[cfg(test)]
            lookups: Default::default(),
        }
    }
}

impl Resolver for Resolve {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let key = match (uri.scheme(), uri.authority()) {
            (Some(scheme), Some(authority)) => DefaultResolver::host_and_port(scheme, authority),
            _ => None,
        };
        // Anything unusual (no port, a bad URI) goes to ureq's resolver for its own error.
        let Some(key) = key else {
            return self.lookup.resolve(uri, config, timeout);
        };
        if let Ok(addr) = key.parse::<SocketAddr>()
            && config.ip_family().keep_wanted([addr].into_iter()).count() == 1
        {
            let mut one = self.empty();
            one.push(addr);
            return Ok(one);
        }
        let now = Instant::now();
        if let Some((at, addrs)) = self
            .names
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            && now.duration_since(*at) < self.ttl
        {
            return Ok(addrs.clone());
        }
        #[cfg(test)]
        self.lookups
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let addrs = self.lookup.resolve(uri, config, timeout)?;
        // Kept from when the answer came (a slow lookup does not shorten its stay).
        let now = Instant::now();
        let mut names = self.names.lock().unwrap_or_else(|p| p.into_inner());
        if names.len() >= MAX_NAMES {
            names.retain(|_, (at, _)| now.duration_since(*at) < self.ttl);
            if names.len() >= MAX_NAMES {
                names.clear();
            }
        }
        names.insert(key, (now, addrs.clone()));
        Ok(addrs)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;

    fn resolve(r: &Resolve, url: &str) -> Vec<SocketAddr> {
        let uri: Uri = url.parse().unwrap();
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(10)))
            .build();
        let timeout = NextTimeout {
            after: Duration::from_secs(10).into(),
            reason: ureq::Timeout::Global,
            per_read: None,
            per_write: None,
        };
        r.resolve(&uri, &config, timeout).unwrap().to_vec()
    }

    #[test]
    fn an_address_is_answered_without_a_lookup() {
        let r = Resolve::default();
        assert_eq!(
            resolve(&r, "http://127.0.0.1:7434/api/v1/claim"),
            ["127.0.0.1:7434".parse::<SocketAddr>().unwrap()]
        );
        assert_eq!(
            resolve(&r, "https://[::1]/healthz"),
            ["[::1]:443".parse::<SocketAddr>().unwrap()]
        );
        assert_eq!(r.lookups.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn a_name_is_looked_up_once_within_its_ttl_and_again_after() {
        let r = Resolve::with_ttl(Duration::from_millis(300));
        let first = resolve(&r, "http://localhost:7434/a");
        assert!(
            first
                .iter()
                .all(|a| a.port() == 7434 && a.ip().is_loopback())
        );
        assert_eq!(resolve(&r, "http://localhost:7434/b"), first);
        assert_eq!(r.lookups.load(Ordering::Relaxed), 1);
        // Another port is another entry.
        resolve(&r, "http://localhost:7435/");
        assert_eq!(r.lookups.load(Ordering::Relaxed), 2);
        std::thread::sleep(Duration::from_millis(350));
        resolve(&r, "http://localhost:7434/c");
        assert_eq!(r.lookups.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn a_name_that_does_not_resolve_is_an_error_and_is_not_kept() {
        let r = Resolve::default();
        let uri: Uri = "http://no-such-host.invalid:7434/".parse().unwrap();
        let config = ureq::Agent::config_builder().build();
        let timeout = NextTimeout {
            after: Duration::from_secs(10).into(),
            reason: ureq::Timeout::Global,
            per_read: None,
            per_write: None,
        };
        assert!(r.resolve(&uri, &config, timeout).is_err());
        assert!(r.names.lock().unwrap().is_empty());
    }
}
