//! Finished jobs' folders removed off the slots' path.
//!
//! A process job runs in `<state dir>/jobs/<id>-<attempt>`, removed once the job has ended.
//! Removing a folder is a few filesystem calls, but on a filesystem mounted with `discard` (as
//! the 2-core VM's is) each freed block is trimmed before `rmdir` returns: 11 % of the worker's
//! CPU samples for back-to-back `/bin/true` jobs, on the slot's path between the job's end and
//! its next claim. So a slot hands the folder to one background thread per worker and claims
//! at once (those jobs drained 3–5 % faster). The worker
//! waits for the removals still queued before it exits ([`Tidy::finish`]); a folder left by a
//! worker that was killed first is removed when a later job of the same id and attempt runs
//! there, as before.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::mpsc;
use std::thread::JoinHandle;

/// The worker's folder remover: one thread, fed through a channel.
pub(super) struct Tidy {
    tx: Mutex<Option<mpsc::Sender<PathBuf>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Tidy {
    /// Starts the thread; if it cannot be started, folders are removed where they are handed in.
    pub fn start() -> Tidy {
        let (tx, rx) = mpsc::channel::<PathBuf>();
        let thread = std::thread::Builder::new()
            .name("gaia-tidy".into())
            .spawn(move || {
                for dir in rx {
                    let _ = std::fs::remove_dir_all(&dir);
                }
            })
            .ok();
        Tidy {
            tx: Mutex::new(thread.as_ref().map(|_| tx)),
            thread: Mutex::new(thread),
        }
    }

    /// Removes `dir` and everything in it, soon (now, once [`Tidy::finish`] has run).
    pub fn remove(&self, dir: PathBuf) {
        let queued = match &*self.tx.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(tx) => tx.send(dir).map_err(|e| e.0),
            None => Err(dir),
        };
        if let Err(dir) = queued {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }

    /// Waits for the removals queued so far; later ones are done by the caller's thread.
    pub fn finish(&self) {
        drop(self.tx.lock().unwrap_or_else(|p| p.into_inner()).take());
        if let Some(t) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queued_folders_are_gone_once_finish_returns_and_later_ones_at_once() {
        let root = tempfile::tempdir().unwrap();
        let tidy = Tidy::start();
        let dirs: Vec<PathBuf> = (0..20)
            .map(|i| root.path().join(format!("{i}-1")))
            .collect();
        for d in &dirs {
            std::fs::create_dir_all(d.join("output")).unwrap();
            std::fs::write(d.join("output").join("f.txt"), "x").unwrap();
            tidy.remove(d.clone());
        }
        tidy.finish();
        assert!(dirs.iter().all(|d| !d.exists()), "a queued folder was left");
        let late = root.path().join("late");
        std::fs::create_dir_all(&late).unwrap();
        tidy.remove(late.clone());
        assert!(
            !late.exists(),
            "a folder handed in after finish was not removed at once"
        );
    }
}
